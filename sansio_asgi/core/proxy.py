"""Proxy headers: the client address and scheme a request had before it reached a trusted proxy.

Theory of operation. A proxy in front of the server connects to us itself, so the TCP peer is the
proxy, not the client. Proxies report what they saw in request headers: ``Forwarded`` (RFC 7239)
or the older ``X-Forwarded-For`` / ``X-Forwarded-Proto``. Anyone can write those headers, so they
are read only when the TCP peer is in ``--forwarded-allow-ips`` (``TrustedHosts``). RFC 7239
§8.1: "The "Forwarded" HTTP header field cannot be relied upon to be correct, as it may be
modified, whether mistakenly or for malicious reasons, by every node on the way to the server,
including the client making the request."

Each proxy appends one *hop* on the right: who connected to it (``for=`` / an X-Forwarded-For
entry) and over what (``proto=`` / an X-Forwarded-Proto entry). So a hop is only as good as the
proxy that wrote it, and the proxy that wrote a hop is the hop just to its right (the TCP peer,
for the rightmost one). ``client_and_scheme`` walks the hops from the right and stops at:

* an untrusted address: it was written by a trusted proxy and names a host we do not trust,
  so it is the client. Everything to its left was written by that host or by its clients and is
  never read: this is what defeats a client that sends its own ``X-Forwarded-For: 1.2.3.4``.
* an ``unknown`` or obfuscated (``_hidden``) identifier, or an element without ``for=``
  (RFC 7239 §6.2, §6.3): a trusted proxy forwarded the request but would not or could not say
  from whom. No address can come from it, and nothing to its left can be vouched for, so the
  client is the last address the walk reached: the nearest trusted hop, or the TCP peer. Its
  ``proto=`` was still written by a trusted proxy, and is used.
* a malformed hop (an X-Forwarded-For entry that is not an IP address, a Forwarded element that
  does not parse): the same, except that nothing at all is taken from it. No part of the result
  is ever read from a malformed value.

If every hop is trusted, the walk ends at the leftmost one, which is then the client.

The scheme is the proto of the last hop read that carries a usable one: normally the hop that
named the client. With X-Forwarded-*, the two lists are aligned hop by hop only when they have
as many entries; otherwise the lists cannot be matched and the rightmost X-Forwarded-Proto entry
(written by the TCP peer) is the scheme.

Other decisions:

* A peer without an address (``client is None``: a Unix domain socket) is trusted, as uvicorn
  does for UDS: only processes on this host that may open the socket file can connect.
* When a ``Forwarded`` field is present, X-Forwarded-* are ignored, even if ``Forwarded`` turns
  out to be unusable: a proxy that writes the standard field is the one to believe.
* Both fields are lists split at every comma, quoted or not, and Forwarded elements at every
  semicolon. No value read here (an address, a port, a scheme) can contain either, and splitting
  first means that a quote left open by one sender cannot swallow the hops that trusted proxies
  append after it. A quoted value that does contain one breaks into pieces that do not parse.
* Tolerated from trusted writers, because the value is still checked strictly afterwards: an
  IPv6 address or a port without the quotes RFC 7239 §6 asks for, whitespace around ``;``,
  brackets and a port in X-Forwarded-For (``[2001:db8::1]:8080``; X-Forwarded-For has no syntax
  for ports, so the port is dropped: only Forwarded gives one).
* Client addresses are returned in their canonical text form (``2001:db8::1``, lowercase,
  compressed; ``::ffff:192.0.2.1`` for IPv4-mapped ones, RFC 5952 §5).

Plain functions of their arguments: no I/O, no logging, no clock.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

_IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

# uvicorn's default for --forwarded-allow-ips: a proxy on this host.
DEFAULT_TRUSTED = "127.0.0.1,::1"

# ::ffff:0:0/96, RFC 4291 §2.5.5.2. A dual-stack socket reports IPv4 peers in it.
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


class TrustedHosts:
    """Which direct peers may set the client address and scheme through proxy headers.

    ``spec`` is a comma-separated string (``"127.0.0.1,::1"``) or an iterable of such strings.
    Entries are IP addresses, CIDR networks (``10.0.0.0/8``, ``fd00::/8``) or ``*`` (trust every
    peer). Whitespace around entries and empty entries are ignored. An IPv4-mapped IPv6 entry
    (``::ffff:10.0.0.1``) means its IPv4 address, and IPv4 peers match either spelling.
    """

    __slots__ = ("_addresses", "_networks_v4", "_networks_v6", "always")

    def __init__(self, spec: str | Iterable[str]) -> None:
        self.always = False
        addresses: set[str] = set()
        networks_v4: list[ipaddress.IPv4Network] = []
        networks_v6: list[ipaddress.IPv6Network] = []
        for entry in _entries(spec):
            if entry == "*":
                self.always = True
                continue
            try:
                if "/" in entry:
                    network = _unmapped_network(ipaddress.ip_network(entry))
                    if isinstance(network, ipaddress.IPv4Network):
                        networks_v4.append(network)
                    else:
                        networks_v6.append(network)
                else:
                    addresses.add(_canonical(_unmapped(ipaddress.ip_address(entry))))
            except ValueError as exc:
                reason = str(exc) if "/" in entry else "not an IP address, a CIDR network or '*'"
                raise ValueError(
                    f"invalid --forwarded-allow-ips entry {entry!r}: {reason}"
                ) from None
        self._addresses = frozenset(addresses)
        self._networks_v4 = tuple(networks_v4)
        self._networks_v6 = tuple(networks_v6)

    def __contains__(self, host: object) -> bool:
        if self.always:
            return True
        if not isinstance(host, str):
            return False
        if host in self._addresses:
            return True
        # Valid IPv4 text has one spelling (ipaddress refuses leading zeros), so an IPv4 peer
        # that missed the set can only still match a network.
        if ":" not in host and not self._networks_v4:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return self._trusts(address)

    def _trusts(self, address: _IPAddress) -> bool:
        """Whether ``address`` (already parsed) is trusted."""
        if self.always:
            return True
        address = _unmapped(address)
        if _canonical(address) in self._addresses:
            return True
        if isinstance(address, ipaddress.IPv4Address):
            return any(address in network for network in self._networks_v4)
        return any(address in network for network in self._networks_v6)

    def __repr__(self) -> str:
        entries = [*(["*"] if self.always else []), *sorted(self._addresses)]
        entries += [str(n) for n in (*self._networks_v4, *self._networks_v6)]
        return f"TrustedHosts({','.join(entries)!r})"


# The request headers that can change the client or scheme; a request with none of them is
# left as it is without a second look at its headers.
PROXY_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-proto"})


def client_and_scheme(
    headers: Sequence[tuple[bytes, bytes]],
    client: tuple[str, int] | None,
    scheme: str,
    trusted: TrustedHosts,
) -> tuple[tuple[str, int] | None, str]:
    """The client address and scheme the app should see.

    ``headers`` are the request's, with lowercased names; ``client`` is the TCP peer (None for a
    Unix socket, which is trusted); ``scheme`` is the connection's: ``http``/``https``, or
    ``ws``/``wss`` for a WebSocket, and a proxied scheme is mapped to the same family. Unless the
    peer is trusted, ``client`` and ``scheme`` come back unchanged.
    """
    if client is not None and client[0] not in trusted:
        return client, scheme
    forwarded: list[bytes] = []
    x_forwarded_for: list[bytes] = []
    x_forwarded_proto: list[bytes] = []
    for name, value in headers:
        if name == b"forwarded":
            forwarded.append(value)
        elif name == b"x-forwarded-for":
            x_forwarded_for.append(value)
        elif name == b"x-forwarded-proto":
            x_forwarded_proto.append(value)

    proto: str | None = None
    if forwarded:
        hops = [_forwarded_hop(element) for element in _list_elements(forwarded)]
    elif x_forwarded_for or x_forwarded_proto:
        addresses = _list_elements(x_forwarded_for)
        protos = [_proto(entry) for entry in _list_elements(x_forwarded_proto)]
        if len(protos) == len(addresses):
            hops = [_x_forwarded_hop(a, p) for a, p in zip(addresses, protos, strict=True)]
        else:
            hops = [_x_forwarded_hop(a, None) for a in addresses]
            proto = protos[-1] if protos else None
    else:
        return client, scheme

    for hop in reversed(hops):
        if hop is None:  # malformed: nothing from it, nothing beyond it
            break
        if hop.proto is not None:
            proto = hop.proto
        if hop.address is None:  # unknown or obfuscated: the walk cannot go past it
            break
        client = (_canonical(hop.address), hop.port)
        if not trusted._trusts(hop.address):
            break

    if proto is not None:
        scheme = _in_family(proto, scheme)
    return client, scheme


@dataclass(frozen=True, slots=True)
class _Hop:
    """One proxy's account of the connection it received.

    ``address`` is None when the proxy did not say who connected (``unknown``, an obfuscated
    identifier, no ``for=``); ``port`` is 0 when it gave none; ``proto`` is None when it gave no
    scheme this module accepts.
    """

    address: _IPAddress | None
    port: int
    proto: str | None


def _entries(spec: str | Iterable[str]) -> Iterable[str]:
    for item in [spec] if isinstance(spec, str) else spec:
        for entry in item.split(","):
            entry = entry.strip()
            if entry:
                yield entry


def _unmapped(address: _IPAddress) -> _IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unmapped_network(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        base = int(network.network_address) & 0xFFFF_FFFF
        return ipaddress.IPv4Network((base, network.prefixlen - 96))
    return network


def _canonical(address: _IPAddress) -> str:
    # Python before 3.13 prints ::ffff:192.0.2.1 as ::ffff:c000:201.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _list_elements(lines: list[bytes]) -> list[str]:
    """The non-empty elements of a comma-separated list field, over all its field lines.

    RFC 9110 §5.3: "A recipient MAY combine multiple field lines within a field section that
    have the same field name into one field line, without changing the semantics of the
    message, by appending each subsequent field line value to the initial field line value in
    order, separated by a comma". §5.6.1.2: "A recipient MUST parse and ignore a reasonable
    number of empty list elements".
    """
    joined = b",".join(lines).decode("latin-1")
    return [element for element in (e.strip(" \t") for e in joined.split(",")) if element]


# RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
# "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"

# RFC 7239 §4: forwarded-pair = token "=" value; value = token / quoted-string. The unquoted
# form is widened to any run without whitespace or quotes: the value is checked afterwards.
_FORWARDED_PAIR = re.compile(rf'({_TOKEN})=(?:"((?:[^"\\]|\\.)*)"|([^\s"\\]+))')
_QUOTED_PAIR = re.compile(r"\\(.)")

# RFC 7239 §6: node = nodename [ ":" node-port ]; nodename = IPv4address / "[" IPv6address "]"
# / "unknown" / obfnode; obfnode = "_" 1*( ALPHA / DIGIT / "." / "_" / "-");
# node-port = port / obfport; port = 1*5DIGIT; obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")
_NODE = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<ipv4>[0-9.]+)|(?P<opaque>(?i:unknown)|_[A-Za-z0-9._-]+))"
    r"(?::(?:(?P<port>[0-9]{1,5})|_[A-Za-z0-9._-]+))?"
)

# X-Forwarded-For has no specification. RFC 7239 §7.4: "Note that IPv6 addresses may not be
# quoted in X-Forwarded-For and may not be enclosed by square brackets". Brackets, and a port
# after brackets or an IPv4 address, are tolerated since some proxies write them.
_X_FORWARDED_FOR = re.compile(
    r"\[(?P<bracketed>[0-9A-Fa-f:.]+)\](?::(?P<bracketed_port>[0-9]{1,5}))?"
    r"|(?P<ipv4>[0-9.]+)(?::(?P<ipv4_port>[0-9]{1,5}))?"
    r"|(?P<ipv6>[0-9A-Fa-f:.]+)"
)

# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")

_ACCEPTED_PROTOS = frozenset({"http", "https", "ws", "wss"})
_SECURE_PROTOS = frozenset({"https", "wss"})
_WEBSOCKET_SCHEMES = frozenset({"ws", "wss"})


def _forwarded_hop(element: str) -> _Hop | None:
    """One Forwarded element as a hop; None if it does not parse."""
    params: dict[str, str] = {}
    for pair in element.split(";"):
        # RFC 7239 §4: forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
        pair = pair.strip(" \t")
        if not pair:
            continue
        match = _FORWARDED_PAIR.fullmatch(pair)
        if match is None:
            return None
        name, quoted, bare = match.groups()
        # RFC 7239 §4: "Each parameter MUST NOT occur more than once per field-value.  The
        # parameter names are case-insensitive."
        name = name.lower()
        if name in params:
            return None
        params[name] = bare if quoted is None else _QUOTED_PAIR.sub(r"\1", quoted)

    proto: str | None = None
    if "proto" in params:
        # RFC 7239 §5.4: "The syntax of a "proto" value, after potential quoted-string
        # unescaping, MUST conform to the URI scheme name as defined in Section 3.1 in
        # [RFC3986]". A well-formed scheme other than the accepted four is ignored.
        if _SCHEME.fullmatch(params["proto"]) is None:
            return None
        proto = _proto(params["proto"])

    if "for" not in params:
        return _Hop(address=None, port=0, proto=proto)
    # RFC 7239 §5.2: "The syntax of a "for" value, after potential quoted-string unescaping,
    # conforms to the "node" ABNF described in Section 6."
    node = _NODE.fullmatch(params["for"])
    if node is None:
        return None
    port = 0
    if node["port"] is not None:
        port = int(node["port"])
        if port > 65535:
            return None
    if node["opaque"] is not None:
        return _Hop(address=None, port=0, proto=proto)
    try:
        if node["ipv6"] is not None:
            address: _IPAddress = ipaddress.IPv6Address(node["ipv6"])
        else:
            address = ipaddress.IPv4Address(node["ipv4"])
    except ValueError:
        return None
    return _Hop(address=address, port=port, proto=proto)


def _x_forwarded_hop(entry: str, proto: str | None) -> _Hop | None:
    """One X-Forwarded-For entry (and its X-Forwarded-Proto) as a hop; None if not an address."""
    match = _X_FORWARDED_FOR.fullmatch(entry)
    if match is None:
        return None
    port = match["bracketed_port"] or match["ipv4_port"]
    if port is not None and int(port) > 65535:
        return None
    try:
        if match["ipv4"] is not None:
            address: _IPAddress = ipaddress.IPv4Address(match["ipv4"])
        else:
            address = ipaddress.IPv6Address(match["bracketed"] or match["ipv6"])
    except ValueError:
        return None
    return _Hop(address=address, port=0, proto=proto)


def _proto(value: str) -> str | None:
    # RFC 3986 §3.1: "Although schemes are case-insensitive, the canonical form is lowercase"
    value = value.lower()
    return value if value in _ACCEPTED_PROTOS else None


def _in_family(proto: str, scheme: str) -> str:
    """``proto`` as a scheme of the same kind as ``scheme``: ws/wss for a WebSocket."""
    secure = proto in _SECURE_PROTOS
    if scheme in _WEBSOCKET_SCHEMES:
        return "wss" if secure else "ws"
    return "https" if secure else "http"
