// The inspector page: forms that send requests, a WebSocket panel, the history, and the
// timeline of one exchange, read from the JSON API documented in sansio_asgi/inspector/app.py.
// Everything the server traced is client-controlled text: it only ever reaches the page as
// textContent, never as HTML.
"use strict";

const API = "/_inspector/api";
const SPEC = "/_inspector/spec";
const POLL_MS = 250;
const SETTLE_MS = 3000; // how long a timeline is polled for the end of its exchange

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJSON(url, options) {
  const response = await fetch(url, { cache: "no-store", ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// The server shows its history only to a browser on its own machine that names it by a local
// address: anything else gets 403, said plainly at the top of the page.
function refused(error) {
  if (error.status !== 403) return false;
  const notice = $("#notice");
  const port = location.port ? `:${location.port}` : "";
  notice.replaceChildren(
    el("strong", { text: "The server refused to show its history (403 Forbidden). " }),
    "The inspector answers only a browser on the server's own machine that opens it at a "
    + `local address, such as ${location.protocol}//127.0.0.1${port}/ or `
    + `${location.protocol}//localhost${port}/: requests and their headers (cookies, tokens) `
    + "are not shown to other machines or sites.",
    error.message && !/^403 /.test(error.message)
      ? el("span", { class: "why", text: ` The server said: ${error.message}` }) : null);
  notice.hidden = false;
  return true;
}

// -- bytes ----------------------------------------------------------------------------------

// Bytes arrive as latin-1 text (one char per byte). Shown as ASCII with escapes, CR and LF
// visible, each line break kept.
function escapeBytes(text) {
  let out = "";
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (ch === "\r") out += "\\r";
    else if (ch === "\n") out += "\\n\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\\") out += "\\\\";
    else if (code < 0x20 || code >= 0x7f) out += "\\x" + code.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out;
}

function bytesRepr(text, limit = 400) {
  const shown = text.length > limit ? text.slice(0, limit) : text;
  let out = "b'";
  for (const ch of shown) {
    const code = ch.charCodeAt(0);
    if (ch === "'") out += "\\'";
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code >= 0x7f) out += "\\x" + code.toString(16).padStart(2, "0");
    else out += ch;
  }
  out += "'";
  if (text.length > limit) out += `… (${text.length} bytes)`;
  return out;
}

function latin1Utf8(text) {
  const bytes = Uint8Array.from(text, (ch) => ch.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

function utf8Latin1(text) {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) out += String.fromCharCode(byte);
  return out;
}

// The fields of an HTTP/1.1 head, lower-cased names: {name: [value, ...]}.
function headFields(head) {
  const fields = {};
  for (const line of head.split(/\r?\n/).slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    (fields[name] = fields[name] || []).push(line.slice(colon + 1).trim());
  }
  return fields;
}

// Where a chunked body that begins at `at` ends (RFC 9112 §7.1: chunk-size, chunk-data, CRLF,
// ..., the last-chunk "0", trailer fields, CRLF); stream.length while it is still arriving,
// null when a chunk size is not hex (the page cannot tell).
function chunkedEnd(stream, at) {
  const lineEnd = (from) => {
    const match = /\r?\n/.exec(stream.slice(from));
    return match ? [from + match.index, from + match.index + match[0].length] : null;
  };
  for (;;) {
    const size = lineEnd(at);
    if (!size) return stream.length;
    const hex = /^[0-9a-fA-F]+/.exec(stream.slice(at, size[0]));
    if (!hex) return null;
    const length = parseInt(hex[0], 16);
    at = size[1];
    if (length === 0) {
      for (;;) { // trailer fields, then the empty line
        const line = lineEnd(at);
        if (!line) return stream.length;
        if (line[0] === at) return line[1];
        at = line[1];
      }
    }
    at += length;
    const crlf = lineEnd(at);
    if (!crlf) return stream.length;
    at = crlf[1];
  }
}

// How long the body after `head` is (RFC 9112 §6.3): Transfer-Encoding chunked, else
// Content-Length, else none for a request; a response without either runs to the close.
// Returns the end offset, or null when the page cannot tell.
function bodyEnd(stream, head, at, isRequest) {
  const fields = headFields(head);
  const status = isRequest ? 0 : Number(/^HTTP\/\S+ (\d{3})/.exec(head)?.[1] || 0);
  if (!isRequest && (status === 204 || status === 304)) return at;
  if (fields["transfer-encoding"]) {
    const codings = fields["transfer-encoding"].join(",").split(",").map((c) => c.trim());
    if (codings[codings.length - 1].toLowerCase() === "chunked") return chunkedEnd(stream, at);
    return isRequest ? null : stream.length;
  }
  if (fields["content-length"]) {
    const values = new Set(fields["content-length"].join(",").split(",").map((v) => v.trim()));
    if (values.size !== 1) return null;
    const [value] = values;
    if (!/^\d+$/.test(value)) return null;
    return Math.min(at + Number(value), stream.length);
  }
  return isRequest ? at : stream.length;
}

// Where an HTTP/1.1 message's parts begin and end in the bytes of one direction:
// [[start, end, part], ...] with part "line", "head", "body", or "next" for the bytes after
// the message (one read may hold several pipelined requests: only the first is this
// exchange's). Interim 1xx responses are heads of their own. `after` names the part given to
// the bytes after the message ("next", or "frames" after a WebSocket handshake).
function httpParts(stream, { isRequest = true, after = "next" } = {}) {
  const parts = [];
  let at = 0;
  for (;;) {
    if (at >= stream.length) return parts;
    const line = /\r?\n/.exec(stream.slice(at));
    if (!line) { parts.push([at, stream.length, "line"]); return parts; }
    const lineEnd = at + line.index + line[0].length;
    parts.push([at, lineEnd, "line"]);
    const blank = /\r?\n\r?\n/.exec(stream.slice(lineEnd - line[0].length));
    if (!blank) { parts.push([lineEnd, stream.length, "head"]); return parts; }
    const headEnd = lineEnd - line[0].length + blank.index + blank[0].length;
    if (headEnd > lineEnd) parts.push([lineEnd, headEnd, "head"]);
    const head = stream.slice(at, headEnd);
    at = headEnd;
    if (!isRequest && /^HTTP\/1\.[01] 1\d\d/.test(head)) {
      if (/^HTTP\/1\.[01] 101/.test(head)) break; // the connection speaks another protocol
      continue;
    }
    const end = after === "frames" ? at : bodyEnd(stream, head, at, isRequest);
    if (end === null) break; // the framing is not clear: the rest is not called a body
    if (end > at) parts.push([at, end, "body"]);
    at = end;
    break;
  }
  if (at < stream.length) parts.push([at, stream.length, after]);
  return parts;
}

const PART_NOTES = {
  "<": "bytes of the next pipelined request(s), read together with this one",
  ">": "bytes written after this response",
};

function markedBytes(text, offset, parts, direction) {
  const pre = el("pre", { class: "bytes" });
  if (!parts) { pre.textContent = escapeBytes(text); return pre; }
  const end = offset + text.length;
  for (const [start, stop, part] of parts) {
    const from = Math.max(start, offset), to = Math.min(stop, end);
    if (from >= to) continue;
    const title = part === "next" ? PART_NOTES[direction] : undefined;
    const bytes = escapeBytes(text.slice(from - offset, to - offset));
    pre.append(el("span", { class: `mark m-${part}`, title, text: bytes }));
  }
  return pre;
}

// WebSocket frames (RFC 6455 §5.2), one reader per direction: its state is carried from one
// read to the next, so a frame longer than a read is one frame, several frames in one read
// are several, and a header split between reads is put back together. A read the trace kept
// only the start of is followed while the rest can only be payload of the frame under way;
// past that the reader has lost the frame boundaries and says so.
const OPCODES = { 0: "CONTINUATION", 1: "TEXT", 2: "BINARY", 8: "CLOSE", 9: "PING", 10: "PONG" };
const FRAME_PREVIEW = 4096; // payload bytes kept per frame, for display

class FrameReader {
  constructor() {
    this.head = ""; // the header bytes of a frame not yet complete
    this.headRead = null; // the read where that header began
    this.frame = null; // the frame whose payload is under way
    this.lost = false;
    this.deflating = false; // the message under way is compressed
  }

  // One read: `text` the bytes kept (latin-1), `size` how many were read. Returns
  // {frames: [frames that begin here], continued: frame | null, continuedBytes, lost}.
  feed(text, size) {
    const read = { frames: [], continued: null, continuedBytes: 0, lost: this.lost };
    if (this.lost) return read;
    let at = 0;
    while (at < text.length) {
      if (this.frame) {
        const frame = this.frame;
        const n = Math.min(frame.length - frame.got, text.length - at);
        this.payload(frame, text.slice(at, at + n));
        if (!read.frames.includes(frame)) {
          read.continued = frame;
          read.continuedBytes += n;
        }
        at += n;
        if (frame.got === frame.length) this.frame = null;
        continue;
      }
      if (!this.head) this.headRead = read;
      else if (this.headRead !== read) read.continued = "header";
      this.head += text[at++];
      const frame = this.header();
      if (frame) {
        // RSV1 on a message's first frame: the whole message is compressed (RFC 7692 §6.1).
        if (frame.opcode === "TEXT" || frame.opcode === "BINARY") this.deflating = frame.deflated;
        frame.compressed = frame.deflated || (frame.opcode === "CONTINUATION" && this.deflating);
        this.headRead.frames.push(frame);
        if (this.headRead !== read) { read.continued = frame; frame.split = true; }
        this.head = "";
        this.frame = frame.length > 0 ? frame : null;
      }
    }
    const unseen = size - text.length;
    if (unseen > 0) {
      const frame = this.frame;
      if (frame && frame.length - frame.got >= unseen) {
        frame.got += unseen;
        frame.gap = true;
        if (!read.frames.includes(frame)) {
          read.continued = frame;
          read.continuedBytes += unseen;
        }
        if (frame.got === frame.length) this.frame = null;
      } else {
        this.lost = read.lost = true;
      }
    }
    return read;
  }

  // The frame whose header is complete in this.head, else null.
  header() {
    const head = this.head, byte = (i) => head.charCodeAt(i);
    if (head.length < 2) return null;
    const code = byte(1) & 0x7f, masked = (byte(1) & 0x80) !== 0;
    const extra = code === 126 ? 2 : code === 127 ? 8 : 0;
    if (head.length < 2 + extra + (masked ? 4 : 0)) return null;
    let length = code;
    if (extra) { length = 0; for (let i = 2; i < 2 + extra; i++) length = length * 256 + byte(i); }
    const key = masked ? [0, 1, 2, 3].map((i) => byte(2 + extra + i)) : null;
    const opcode = byte(0) & 0x0f;
    return {
      fin: (byte(0) & 0x80) !== 0,
      deflated: (byte(0) & 0x40) !== 0, // RSV1: permessage-deflate (RFC 7692 §6)
      opcode: OPCODES[opcode] || `0x${opcode.toString(16)}`,
      masked, key, length, got: 0, plain: "", gap: false, split: false,
    };
  }

  payload(frame, chunk) {
    const keep = frame.gap ? 0 : Math.min(chunk.length, FRAME_PREVIEW - frame.plain.length);
    let plain = "";
    for (let i = 0; i < keep; i++) {
      const mask = frame.key ? frame.key[(frame.got + i) % 4] : 0;
      plain += String.fromCharCode(chunk.charCodeAt(i) ^ mask);
    }
    frame.plain += plain;
    if (keep < chunk.length) frame.gap = true;
    frame.got += chunk.length;
  }
}

function wsFrameText(frame) {
  let payload = frame.plain;
  const cut = frame.plain.length < frame.length;
  if (frame.compressed) {
    payload = `compressed ${bytesRepr(payload, 60)}`;
  } else if (frame.opcode === "CLOSE" && payload.length >= 2) {
    const code = (payload.charCodeAt(0) << 8) | payload.charCodeAt(1);
    payload = `code ${code} ${bytesRepr(payload.slice(2))}`;
  } else if (frame.opcode === "TEXT") {
    try {
      const text = cut ? utf8Prefix(payload) : latin1Utf8(payload);
      payload = JSON.stringify(text.length > 400 ? text.slice(0, 400) : text);
      if (cut || text.length > 400) payload += "…";
    } catch { payload = bytesRepr(payload); }
  } else payload = bytesRepr(payload, 120);
  const flags = [frame.fin ? "FIN" : "more", frame.masked ? "masked" : "unmasked",
    frame.deflated ? "RSV1" : null].filter(Boolean).join(" ");
  const sofar = frame.got < frame.length ? ` (${frame.got} read so far)` : "";
  return `${frame.opcode} ${flags} ${frame.length} bytes${sofar}  ${payload}`;
}

// The UTF-8 text of the start of a payload cut anywhere, a split character left out.
function utf8Prefix(text) {
  for (let cut = 0; cut < 4 && cut <= text.length; cut++) {
    try { return latin1Utf8(text.slice(0, text.length - cut)); } catch { /* shorter */ }
  }
  throw new TypeError("not UTF-8"); // the caller shows bytes
}

// The frames of every WebSocket read of an exchange, by the read's index (items in order).
function framesOf(items) {
  const readers = { "<": new FrameReader(), ">": new FrameReader() };
  const reads = {};
  items.forEach((item, index) => {
    if (item.kind !== "data" || item.protocol !== "websocket") return;
    const data = item.data || "";
    const size = Math.max(item.size || 0, item.data_size || 0, data.length);
    let rest = data;
    if (/^HTTP\/1\.1 /.test(data)) {
      const end = /\r?\n\r?\n/.exec(data);
      rest = end ? data.slice(end.index + end[0].length) : "";
    }
    reads[index] = readers[item.direction]?.feed(rest, size - (data.length - rest.length));
  });
  return reads;
}

// -- the spec's anchors ---------------------------------------------------------------------

let anchors = {};

function specLink(anchor, key, text) {
  const known = anchors[anchor];
  if (!known || (key && !known.includes(key))) return el("span", { class: "key", text });
  const href = `${SPEC}#${anchor}${key ? "-" + key : ""}`;
  return el("a", { class: "key", href, target: "spec", title: `the spec: ${key || anchor}`, text });
}

function valueText(value) {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 400 ? value.slice(0, 400) + "…" : value);
  }
  return JSON.stringify(value);
}

// -- the timeline ---------------------------------------------------------------------------

const view = { id: null, items: [], summary: null, timer: null, until: 0, live: false };

function renderScope(detail) {
  const scopeType = detail.type || "http";
  const anchor = `scope-${scopeType}`;
  const table = el("div", { class: "kv" });
  for (const [key, value] of Object.entries(detail)) {
    if (key.endsWith("_size") && key.slice(0, -5) in detail) continue;
    const cell = el("div", { class: "v" });
    if (key === "headers" && Array.isArray(value)) {
      for (const [name, field] of value) cell.append(headerPair(name, field));
      if (!value.length) cell.textContent = "[]";
    } else if ((key === "raw_path" || key === "query_string") && typeof value === "string") {
      cell.textContent = bytesRepr(value);
    } else if (key === "asgi" && value && typeof value === "object") {
      for (const [inner, v] of Object.entries(value)) {
        const link = specLink(anchor, `asgi.${inner}`, `${inner}`);
        cell.append(el("div", { class: "pair" }, link, ` = ${valueText(v)}`));
      }
    } else {
      cell.textContent = valueText(value);
    }
    table.append(el("div", { class: "k" }, specLink(anchor, key, key)), cell);
  }
  const what = el("div", { class: "what" }, "scope of the app call: ",
    specLink(anchor, null, `the ${scopeType} scope`));
  return el("div", {}, what, table);
}

function renderMessage(detail) {
  const type = String(detail.type);
  const anchor = `message-${type}`;
  const box = el("div", { class: "msg" });
  box.append(el("div", { class: "what" }, specLink(anchor, null, type)));
  const list = el("div", { class: "kv" });
  for (const [key, value] of Object.entries(detail)) {
    if (key === "type" || (key.endsWith("_size") && key.slice(0, -5) in detail)) continue;
    let shown;
    if (key === "headers" && Array.isArray(value)) {
      shown = el("div", { class: "v" });
      for (const [name, field] of value) shown.append(headerPair(name, field));
      if (!value.length) shown.textContent = "[]";
    } else if ((key === "body" || key === "bytes") && typeof value === "string") {
      const size = detail[`${key}_size`];
      shown = el("div", { class: "v", text: bytesRepr(value) + (size ? ` (${size} bytes)` : "") });
    } else {
      const size = typeof value === "string" ? detail[`${key}_size`] : undefined;
      const text = valueText(value) + (size ? ` (${size} characters)` : "");
      shown = el("div", { class: "v", text });
    }
    list.append(el("div", { class: "k" }, specLink(anchor, key, key)), shown);
  }
  if (list.childNodes.length) box.append(list);
  return box;
}

function renderEvent(detail) {
  // The scope and the request's headers are on the scope's line already.
  const { event, scope, request_headers: _, ...fields } = detail;
  const box = el("div", {}, el("strong", { text: event || "event" }));
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${valueText(v)}`);
  if (parts.length) box.append(el("span", { class: "fields", text: " " + parts.join(" ") }));
  return box;
}

function renderData(item, index, context, body) {
  const data = item.data || "";
  const dir = item.direction === "<" ? "in" : "out";
  const size = Math.max(item.size || 0, item.data_size || 0, data.length);
  const kept = size > data.length ? ` (first ${data.length} shown)` : "";
  const what = `${size} bytes ${dir === "in" ? "read" : "written"}${kept}`;
  body.append(el("div", { class: "what", text: what }));
  if (item.protocol !== "websocket") {
    const stream = context.streams[item.direction];
    const start = stream.offsets[index];
    body.append(markedBytes(data, start, stream.parts, item.direction));
    let next = 0; // bytes of this read past the exchange's own message
    for (const [from, to, part] of stream.parts || []) {
      if (part !== "next") continue;
      next += Math.max(0, Math.min(to, start + data.length) - Math.max(from, start));
    }
    const note = `${next} ${PART_NOTES[item.direction]}`;
    if (next) body.append(el("div", { class: "note", text: note }));
    return;
  }
  // The 101 that ends the handshake is written once the connection speaks WebSocket.
  let rest = data;
  if (/^HTTP\/1\.1 /.test(data)) {
    const end = /\r?\n\r?\n/.exec(data);
    const head = end ? data.slice(0, end.index + end[0].length) : data;
    rest = data.slice(head.length);
    body.append(markedBytes(head, 0, httpParts(head, { isRequest: false })));
  }
  const read = context.frames[index];
  if (read && (read.frames.length || read.continued || read.lost)) {
    const list = el("div", { class: "frames" });
    if (read.continued === "header") {
      list.append(frameNote("the rest of a frame header begun in an earlier read"));
    } else if (read.continued) {
      const frame = read.continued;
      const what = frame.split ? "the rest of the header and " : "";
      list.append(frameNote(`… ${what}${read.continuedBytes} more bytes of the ${frame.opcode} `
        + `frame begun in an earlier read (${frame.length} bytes)`));
    }
    for (const frame of read.frames) {
      list.append(el("div", { class: "pair", text: wsFrameText(frame) }));
    }
    if (read.lost) {
      list.append(frameNote("(rest not parsed: part of a read was not kept, so the frame "
        + "boundaries after it are unknown)"));
    }
    body.append(list);
  }
  if (rest) body.append(rawBytes("raw bytes", rest));
}

function headerPair(name, value) {
  return el("div", { class: "pair", text: `(${bytesRepr(name)}, ${bytesRepr(value)})` });
}

function frameNote(text) {
  return el("div", { class: "pair cont", text });
}

function rawBytes(title, text) {
  return el("details", {}, el("summary", { text: title }),
    el("pre", { class: "bytes", text: escapeBytes(text) }));
}

function renderItem(item, index, context) {
  const dir = item.direction === "<" ? "in" : item.direction === ">" ? "out" : "none";
  const arrow = { in: "→ server", out: "← server", none: "" }[dir];
  const offset = ((item.time - context.t0) * 1000).toFixed(3);
  const row = el("li", { class: `rec k-${item.kind} d-${dir}`, "data-kind": item.kind });
  row.append(el("div", { class: "when", text: `+${offset} ms` }));
  const label = item.kind === "data" ? "bytes" : item.kind;
  row.append(el("div", { class: "tag" }, el("span", { class: `k k-${item.kind}`, text: label }),
    arrow ? el("span", { class: "dir", text: arrow }) : null));
  const body = el("div", { class: "body" });
  const detail = item.detail || {};
  if (item.kind === "scope") body.append(renderScope(detail));
  else if (item.kind === "message") body.append(renderMessage(detail));
  else if (item.kind === "event") body.append(renderEvent(detail));
  else if (item.kind === "data") renderData(item, index, context, body);
  else if (item.kind === "frame") {
    body.append(el("div", { class: "mono", text: item.summary }));
    if (item.data && (detail.type === "DATA")) {
      body.append(rawBytes("frame bytes", item.data));
    }
  } else {
    body.append(el("div", { class: "mono", text: item.summary }));
  }
  row.append(body);
  return row;
}

// The HTTP/1.1 bytes of each direction, joined, so request line, headers and body are marked
// across reads.
function streamsOf(items, summary) {
  const streams = {};
  const h2 = items.some((item) => item.protocol === "h2");
  for (const direction of ["<", ">"]) {
    let joined = "";
    const offsets = {};
    items.forEach((item, index) => {
      if (item.kind === "data" && item.direction === direction && item.protocol !== "websocket") {
        offsets[index] = joined.length;
        joined += item.data || "";
      }
    });
    const isRequest = direction === "<";
    const after = isRequest && summary.type === "websocket" ? "frames" : "next";
    const parts = h2 ? null : httpParts(joined, { isRequest, after });
    streams[direction] = { offsets, parts };
  }
  return streams;
}

// What an exchange was, for its title and its history row. A request the server rejected
// before any app call has no scope: its method and path may be unknown (null).
function exchangeWhat(summary, short = false) {
  const path = summary.path ?? "";
  const query = summary.query && !short ? "?" + summary.query : "";
  if (summary.type === "websocket") return `${short ? "WS" : "WebSocket"} ${path}`;
  if (summary.type === "rejected" || !summary.method) {
    return ["rejected", summary.method, path].filter(Boolean).join(" ") + query;
  }
  return `${summary.method} ${path}${query}`;
}

function describe(summary) {
  const status = summary.status ? ` → ${summary.status}` : "";
  return `#${summary.id} ${exchangeWhat(summary)}${status}`;
}

function protocolName(summary) {
  if (summary.protocol === "h2") return "HTTP/2";
  if (summary.protocol === "websocket") return "WebSocket";
  return "HTTP/1.1";
}

function renderTimeline() {
  const list = $("#timeline");
  const summary = view.summary;
  if (!summary) return;
  $("#timeline-title").textContent = describe(summary);
  const bits = [protocolName(summary), `connection ${summary.connection ?? "?"}`,
    `${view.items.length} records`];
  if (summary.dropped) bits.push(`${summary.dropped} not kept (limits)`);
  bits.push(summary.complete ? "complete" : view.live ? "live" : "in progress");
  $("#timeline-meta").textContent = bits.join(" · ");
  const rejected = summary.type === "rejected" || !summary.method;
  $("#timeline-note").hidden = !rejected;
  $("#timeline-note").textContent = rejected ? "The server rejected this request before any "
    + "app call: no scope, no ASGI messages; the bytes and the events are what it saw." : "";
  // In the order traced.
  const items = [...view.items].sort((a, b) => a.time - b.time);
  const context = { t0: items.length ? items[0].time : 0, streams: streamsOf(items, summary) };
  context.frames = items.some((item) => item.kind === "frame" && item.protocol === "websocket")
    ? {} : framesOf(items); // frames the trace gives need no reading here
  list.replaceChildren(...items.map((item, index) => renderItem(item, index, context)));
  const card = $("#timeline-card");
  card.dataset.exchange = String(summary.id);
  card.dataset.complete = String(Boolean(summary.complete));
  card.dataset.records = String(view.items.length);
  for (const row of document.querySelectorAll("#history li")) {
    row.classList.toggle("selected", row.dataset.id === String(summary.id));
  }
}

async function refreshTimeline() {
  if (view.id === null) return;
  const id = view.id;
  try {
    const url = `${API}/exchanges/${encodeURIComponent(id)}?after=${view.items.length}`;
    const data = await getJSON(url);
    if (id !== view.id) return;
    const { items, after, ...summary } = data;
    if (after === view.items.length) view.items.push(...items);
    view.summary = summary;
    renderTimeline();
  } catch (error) {
    if (id === view.id) $("#timeline-meta").textContent = `#${id}: ${error.message}`;
    refused(error);
    stopPolling();
    return;
  }
  const settled = view.summary.complete && !view.live;
  if (settled || (!view.live && Date.now() > view.until)) {
    if (settled && !view.finalRead) { view.finalRead = true; schedule(POLL_MS); return; }
    stopPolling();
    return;
  }
  schedule(POLL_MS);
}

function schedule(ms) {
  clearTimeout(view.timer);
  view.timer = setTimeout(refreshTimeline, ms);
}

function stopPolling() {
  clearTimeout(view.timer);
  view.timer = null;
}

// Exchange ids are opaque strings ("12", or "4121-7" with a worker's pid): never numbers.
function show(id, { live = false } = {}) {
  if (id === null || id === undefined) return;
  id = String(id);
  if (id !== view.id) {
    view.id = id;
    view.items = [];
    view.summary = null;
    $("#timeline").replaceChildren();
  }
  view.live = live;
  view.finalRead = false;
  view.until = Date.now() + SETTLE_MS;
  schedule(0);
}

// -- history --------------------------------------------------------------------------------

function formatBytes(n) {
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

async function refreshHistory() {
  let data;
  try { data = await getJSON(`${API}/exchanges`); } catch (error) { refused(error); return; }
  const { exchanges, stats } = data;
  let limits = `The last ${stats.max_exchanges} exchanges, at most `
    + `${formatBytes(stats.max_history_bytes)} in all, are kept in memory: now `
    + `${stats.exchanges}, ${formatBytes(stats.history_bytes)}.`;
  const worker = stats.worker ?? stats.pid;
  if (worker !== undefined && worker !== null) {
    limits += ` This is the history of worker ${worker}: with --workers, each keeps its own.`;
  }
  $("#history-limits").textContent = limits;
  const rows = exchanges.map((summary) => {
    const id = String(summary.id);
    const rejected = summary.type === "rejected" || !summary.method;
    const proto = summary.protocol === "h2" ? "h2" : summary.type === "websocket" ? "ws" : "h1";
    const status = String(summary.status || "");
    const row = el("li", { "data-id": id, class: rejected ? "rejected" : null },
      el("button", { type: "button", class: "pick" },
        el("span", { class: "id", text: `#${id}` }),
        el("span", { class: "what", text: exchangeWhat(summary, true) }),
        el("span", { class: `status s${status.charAt(0)}`, text: status || "…" }),
        el("span", { class: "proto", text: proto })));
    row.querySelector("button").addEventListener("click", () => show(id));
    if (id === view.id) row.classList.add("selected");
    return row;
  });
  $("#history").replaceChildren(...rows);
  if (!rows.length) $("#history").append(el("li", { class: "empty", text: "Nothing yet." }));
}

// -- forms ----------------------------------------------------------------------------------

function setStatus(text, error = false) {
  const status = $("#send-status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

async function sendFetch(target, options) {
  setStatus("sending…");
  try {
    const answer = await getJSON(target, options);
    const read = `answered: ${answer.body_bytes} body bytes read by the app`;
    if (answer.exchange === null || answer.exchange === undefined) {
      setStatus(`${read}; the server kept no exchange for it (see the history)`);
    } else {
      setStatus(`${read}; exchange #${answer.exchange}`);
      show(answer.exchange);
    }
  } catch (error) {
    if (!refused(error)) setStatus(`failed: ${error.message}`, true);
  }
  refreshHistory();
}

async function sendRaw(parts, wait) {
  setStatus("the server is sending it to itself…");
  try {
    const answer = await getJSON(`${API}/raw`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ parts, wait }),
    });
    const ids = (answer.exchanges || []).map(String);
    const first = (answer.received || "").split(/\r?\n/)[0];
    let status = `${answer.sent.length} bytes sent over ${answer.connection}; answer: `
      + `${first || "nothing"} (${answer.elapsed_ms} ms)`;
    if (ids.length > 1) status += `; exchanges ${ids.map((i) => "#" + i).join(" ")}`;
    if (!ids.length) {
      status += "; the server kept no exchange for this connection"
        + (answer.note ? ` (${answer.note})`
          : " (with --workers, another worker may have served it)");
    }
    setStatus(status);
    if (ids.length) show(ids[0]);
  } catch (error) {
    if (!refused(error)) setStatus(`failed: ${error.message}`, true);
  }
  refreshHistory();
}

function chunkedParts(form) {
  const target = form.target.value || "/";
  const chunks = form.chunks.value.split("\n").filter((line) => line.length);
  const parts = [`POST ${target} HTTP/1.1\r\nHost: ${location.host}\r\n`
    + "Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"];
  for (const chunk of chunks) {
    const bytes = utf8Latin1(chunk);
    parts.push(`${bytes.length.toString(16)}\r\n${bytes}\r\n`);
  }
  parts.push("0\r\n\r\n");
  return parts;
}

function expectParts(form) {
  const target = form.target.value || "/";
  const body = utf8Latin1(form.body.value);
  const head = `POST ${target} HTTP/1.1\r\nHost: ${location.host}\r\n`
    + `Content-Length: ${body.length}\r\nContent-Type: text/plain\r\n`
    + "Expect: 100-continue\r\nConnection: close\r\n\r\n";
  return [head, body];
}

function updatePreviews() {
  for (const [id, make] of [["#form-chunked", chunkedParts], ["#form-expect", expectParts]]) {
    const form = $(id);
    const parts = make(form);
    const pre = $("[data-preview]", form);
    pre.replaceChildren(...parts.map((part, i) => el("span",
      { class: "part", "data-part": `part ${i + 1}`, text: escapeBytes(part) })));
  }
}

function setupForms() {
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll("[data-tab]")) {
        other.setAttribute("aria-selected", String(other === tab));
      }
      for (const form of document.querySelectorAll("form[data-panel]")) {
        form.hidden = form.dataset.panel !== tab.dataset.tab;
      }
    });
  }
  $("#form-get").addEventListener("submit", (event) => {
    event.preventDefault();
    sendFetch(event.target.target.value || "/");
  });
  $("#form-post").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const headers = { "content-type": form.type.value };
    sendFetch(form.target.value || "/", { method: "POST", headers, body: form.body.value });
  });
  $("#form-chunked").addEventListener("submit", (event) => {
    event.preventDefault();
    sendRaw(chunkedParts(event.target), "pause");
  });
  $("#form-expect").addEventListener("submit", (event) => {
    event.preventDefault();
    sendRaw(expectParts(event.target), "interim");
  });
  const raw = $("#form-raw");
  raw.raw.value = `GET /raw?from=the+raw+form HTTP/1.1\nHost: ${location.host}\n`
    + "User-Agent: typed by hand\nConnection: close\n\n";
  raw.addEventListener("submit", (event) => {
    event.preventDefault();
    let text = raw.raw.value;
    if (raw.crlf.checked) text = text.replace(/\r?\n/g, "\r\n");
    sendRaw([utf8Latin1(text)], "pause");
  });
  for (const form of [$("#form-chunked"), $("#form-expect")]) {
    form.addEventListener("input", updatePreviews);
  }
  updatePreviews();
}

// -- WebSocket ------------------------------------------------------------------------------

let socket = null;

// A message's text for the log, a long one cut.
function quoted(text, limit = 300) {
  if (text.length <= limit) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, limit))}… (${text.length} characters)`;
}

function bytesText(bytes, limit = 300) {
  const shown = bytesRepr(String.fromCharCode(...bytes.subarray(0, limit)));
  return bytes.length > limit ? `${shown}… (${bytes.length} bytes)` : shown;
}

function wsLog(direction, text) {
  const log = $("#ws-log");
  const dir = direction === "out" ? "sent" : direction === "in" ? "received" : "";
  log.append(el("li", { class: `d-${direction}` },
    el("span", { class: "dir", text: dir }), " ", el("span", { text })));
  while (log.childNodes.length > 50) log.firstChild.remove();
  log.scrollTop = log.scrollHeight;
}

function wsButtons(open) {
  $("#ws-open").disabled = open;
  $("#ws-send-text").disabled = !open;
  $("#ws-send-bytes").disabled = !open;
  $("#ws-close").disabled = !open;
}

function setupWebSocket() {
  $("#ws-open").addEventListener("click", () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}${$("#ws-path").value || "/"}`;
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    $("#ws-status").textContent = "connecting…";
    $("#ws-open").disabled = true;
    let exchange = null;
    socket.addEventListener("open", () => {
      $("#ws-status").textContent = `open: ${url}`;
      wsButtons(true);
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data === "string") {
        if (exchange === null && event.data.startsWith("{\"exchange\"")) {
          const id = JSON.parse(event.data).exchange;
          exchange = id === null || id === undefined ? null : String(id);
          $("#ws-status").textContent = exchange === null
            ? `open: ${url} · the server kept no exchange for it`
            : `open: ${url} · exchange #${exchange}, live on the timeline`;
          show(exchange, { live: true });
          refreshHistory();
        }
        wsLog("in", `text ${quoted(event.data)}`);
      } else {
        wsLog("in", `bytes ${bytesText(new Uint8Array(event.data))}`);
      }
    });
    socket.addEventListener("close", (event) => {
      const reason = event.reason ? " " + JSON.stringify(event.reason) : "";
      $("#ws-status").textContent = `closed: code ${event.code}${reason}`;
      wsButtons(false);
      if (exchange !== null && view.id === exchange) show(exchange);
      socket = null;
      refreshHistory();
    });
    socket.addEventListener("error", () => wsLog("none", "error (see the timeline)"));
  });
  $("#ws-send-text").addEventListener("click", () => {
    const text = $("#ws-text").value;
    socket.send(text);
    wsLog("out", `text ${quoted(text)}`);
  });
  $("#ws-send-bytes").addEventListener("click", () => {
    const bytes = new TextEncoder().encode($("#ws-text").value);
    socket.send(bytes);
    wsLog("out", `bytes ${bytesText(bytes)}`);
  });
  $("#ws-close").addEventListener("click", () => {
    const code = Number($("#ws-code").value);
    const valid = code === 1000 || (code >= 3000 && code <= 4999);
    if (!valid) {
      $("#ws-status").textContent = "a browser may close with 1000 or 3000-4999";
      return;
    }
    socket.close(code, $("#ws-reason").value);
    wsLog("out", `close ${code}`);
  });
}

// -- start ----------------------------------------------------------------------------------

async function start() {
  setupForms();
  setupWebSocket();
  $("#history-refresh").addEventListener("click", refreshHistory);
  try { anchors = await getJSON(`${API}/anchors`); } catch (error) { refused(error); anchors = {}; }
  await refreshHistory();
  // The page's own load is the first exchange worth a look.
  const first = $("#history li[data-id]");
  if (first && view.id === null) show(first.dataset.id);
  setInterval(() => { if (!document.hidden) refreshHistory(); }, 3000);
  document.body.dataset.ready = "true";
}

start();
