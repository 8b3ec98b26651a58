"""WebSocket frames (RFC 6455 §5.2) read and written without wsproto, for the common case.

Most WebSocket traffic is small whole messages: one masked frame from the client with FIN set,
no extension bits, a text or binary opcode, a payload of a few bytes to a few KiB. wsproto
parses each one through a general state machine (buffers, rollbacks, generators, per-frame
objects); here such a frame costs a few slices and one XOR.

``FrameSplitter`` finds where each frame the client sends ends; this needs only its header
(RFC 6455 §5.2), which every frame has, well formed or not. A frame that is whole in the bytes
at hand and fully understood here (``feed`` returns it as ``TEXT`` or ``BINARY``) is delivered
by the handler itself. Every other byte is returned as ``RAW``, in order, for wsproto, which
decides on it exactly as it would without this module: control frames, fragments, frames with
RSV bits, unmasked frames, lengths not in the fewest bytes, 64-bit lengths, text that is not
UTF-8, a frame not yet whole (streamed to wsproto as it arrives; nothing is held here), and
anything while wsproto is inside a fragmented message. Frames are taken here only where
wsproto holds nothing (between frames, outside a fragmented message), so its state is what it
would be had it read every byte.

The splitter may only *defer*, never *decide differently*: ``ProtocolSettings.ws_parser =
"wsproto"`` (``--ws wsproto``, or ``SANSIO_ASGI_WS=wsproto`` for a whole test run) gives every
byte to wsproto, and tests/properties/test_ws_frame_oracle.py checks that both ways yield the
same messages, the same close and the same bytes for generated streams split at random.

``message_frame`` writes what a server sends (unmasked, one frame per message) the way wsproto
does when no extension is in use; the same property file holds it to wsproto's bytes.
"""

from __future__ import annotations

from typing import Final

RAW: Final = 0  # bytes for wsproto
TEXT: Final = 1  # a whole text message: (TEXT, str, UTF-8 size)
BINARY: Final = 2  # a whole binary message: (BINARY, bytes, size)

Item = tuple[int, "bytes | str", int]


class FrameSplitter:
    """Splits the client's bytes at frame boundaries; see the module docstring.

    Between frames, and outside a fragmented message, wsproto holds nothing: a frame that is
    whole in the bytes at hand and fully understood here is taken. Anything else is given to
    wsproto at once, and followed: ``_header`` holds a header wsproto has begun (at most 14
    bytes, a copy), ``_passthrough`` counts the bytes still to come of the frame it reads.
    """

    __slots__ = ("_fragmented", "_header", "_passthrough")

    def __init__(self) -> None:
        self._header = b""
        self._passthrough = 0
        self._fragmented = False  # wsproto is in a fragmented message (continuations follow)

    def feed(self, data: bytes) -> list[Item]:
        items: list[Item] = []
        end = len(data)
        pos = 0
        raw_from = 0  # where the bytes for wsproto not yet handed over start
        while pos < end:
            if self._passthrough:
                step = min(self._passthrough, end - pos)
                self._passthrough -= step
                pos += step
                continue
            if self._header:
                header = self._header + data[pos : pos + _LONGEST_HEADER]
                frame = _frame_size(header, 0)
                if frame is None:
                    self._header = header
                    pos = end
                else:
                    self._follow(header[0], frame - len(self._header))
                    self._header = b""
                continue
            frame = _frame_size(data, pos)
            if frame is None:
                self._header = data[pos:]  # wsproto holds it too
                pos = end
                continue
            first, second = data[pos], data[pos + 1]
            frame_end = pos + frame
            opcode = first & 0x0F
            size = frame - (6 if second & 0x7F < 126 else 8)
            # FIN, no RSV bit, text or binary, masked (RFC 6455 §5.1: "a client MUST mask all
            # frames"), the length in the fewest bytes (§5.2: "the minimal number of bytes
            # MUST be used to encode the length"), whole, not inside a fragmented message.
            if (
                first & 0xF0 == 0x80
                and (opcode == 1 or opcode == 2)
                and second & 0x80
                and second & 0x7F != 127
                and (size > 125 or second & 0x7F < 126)
                and frame_end <= end
                and not self._fragmented
            ):
                item = _message(opcode, data, frame_end - size - 4, frame_end)
                if item is not None:
                    if raw_from < pos:
                        items.append((RAW, data[raw_from:pos], 0))
                    items.append(item)
                    pos = raw_from = frame_end
                    continue
            self._follow(first, frame)
        if raw_from < end:
            items.append((RAW, data[raw_from:] if raw_from else data, 0))
        return items

    def _follow(self, first: int, remaining: int) -> None:
        """wsproto reads a frame whose first byte is ``first``; ``remaining`` of its bytes are
        still to be handed over. A data frame without FIN starts a fragmented message; the
        continuation frame with FIN ends it (RFC 6455 §5.4)."""
        opcode = first & 0x0F
        if opcode == 1 or opcode == 2:
            self._fragmented = not first & 0x80
        elif opcode == 0 and first & 0x80:
            self._fragmented = False
        self._passthrough = remaining


# A header is 2 bytes, then 2 or 8 of extended length, then the 4-byte masking key.
_LONGEST_HEADER = 14


def _frame_size(data: bytes, pos: int) -> int | None:
    """The size of the frame starting at ``pos`` (header and payload), or None while its
    header is incomplete (RFC 6455 §5.2)."""
    available = len(data) - pos
    if available < 2:
        return None
    second = data[pos + 1]
    length = second & 0x7F
    head = 6 if second & 0x80 else 2
    if length == 126:
        head += 2
        if available < 4:
            return None
        length = (data[pos + 2] << 8) | data[pos + 3]
    elif length == 127:
        head += 8
        if available < 10:
            return None
        length = int.from_bytes(data[pos + 2 : pos + 10], "big")
    if available < head:
        return None
    return head + length


def _message(opcode: int, data: bytes, key_at: int, end: int) -> Item | None:
    """The unmasked payload of a whole frame as a message; None for text that is not UTF-8
    (wsproto then fails the connection with 1007)."""
    start = key_at + 4
    size = end - start
    payload = data[start:end]
    if size:
        key = data[key_at:start] * (size // 4 + 1)
        # RFC 6455 §5.3: octet i of the payload is XORed with octet i % 4 of the masking key.
        masked = int.from_bytes(payload, "little") ^ int.from_bytes(key[:size], "little")
        payload = masked.to_bytes(size, "little")
    if opcode == 2:
        return (BINARY, payload, size)
    try:
        return (TEXT, payload.decode("utf-8"), size)
    except UnicodeDecodeError:
        return None


def message_frame(text: str | None, data: bytes | None) -> list[bytes]:
    """A server's frame for a whole message: header and payload, unmasked (RFC 6455 §5.1: "A
    server MUST NOT mask any frames"), FIN set, the length in the fewest bytes."""
    if text is not None:
        payload = text.encode("utf-8")
        first = 0x81
    else:
        assert data is not None
        payload = bytes(data)
        first = 0x82
    size = len(payload)
    if size < 126:
        return [bytes((first, size)) + payload]
    if size < 0x10000:
        return [bytes((first, 126, size >> 8, size & 0xFF)), payload]
    return [bytes((first, 127)) + size.to_bytes(8, "big"), payload]
