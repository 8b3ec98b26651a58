"""Trusted proxies: which peers are believed, and what X-Forwarded-* and Forwarded make of it."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_asgi.core.proxy import DEFAULT_TRUSTED, TrustedHosts, client_and_scheme

PROXY = ("127.0.0.1", 40000)
# A proxy on this host, and a tier of proxies in 10.0.0.0/8 in front of it.
TRUSTED = TrustedHosts("127.0.0.1,::1,10.0.0.0/8")
HeaderList = list[tuple[str, str]]


def resolve(
    headers: HeaderList,
    client: tuple[str, int] | None = PROXY,
    scheme: str = "http",
    trusted: TrustedHosts = TRUSTED,
) -> tuple[tuple[str, int] | None, str]:
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return client_and_scheme(raw, client, scheme, trusted)


def xff(value: str) -> HeaderList:
    return [("x-forwarded-for", value)]


def fwd(*values: str) -> HeaderList:
    return [("forwarded", value) for value in values]


# TrustedHosts


@pytest.mark.parametrize(
    ("spec", "host", "trusted"),
    [
        (DEFAULT_TRUSTED, "127.0.0.1", True),
        (DEFAULT_TRUSTED, "::1", True),
        (DEFAULT_TRUSTED, "0:0:0:0:0:0:0:1", True),
        (DEFAULT_TRUSTED, "::ffff:127.0.0.1", True),
        (DEFAULT_TRUSTED, "127.0.0.2", False),
        (DEFAULT_TRUSTED, "::2", False),
        (DEFAULT_TRUSTED, "127.000.0.1", False),
        (DEFAULT_TRUSTED, "localhost", False),
        (DEFAULT_TRUSTED, "", False),
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.0.0.0/8", "::ffff:10.1.2.3", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("10.0.0.0/8", "nonsense", False),
        ("fd00::/8", "fd12::1", True),
        ("fd00::/8", "FD12:0::1", True),
        ("fd00::/8", "fe80::1", False),
        ("fd00::/8", "10.0.0.1", False),
        ("::ffff:10.0.0.1", "10.0.0.1", True),
        ("::ffff:10.0.0.0/104", "10.1.2.3", True),
        ("::ffff:10.0.0.0/104", "11.1.2.3", False),
        (" 127.0.0.1 , ,10.0.0.1 ,", "10.0.0.1", True),
        (["10.0.0.1", " 10.0.0.2 "], "10.0.0.2", True),
        (["10.0.0.1,10.0.0.3"], "10.0.0.3", True),
        ("", "127.0.0.1", False),
        ([], "127.0.0.1", False),
        ("*", "203.0.113.9", True),
        ("*", "2001:db8::1", True),
        ("*", "not-an-ip", True),
        ("10.0.0.1, *", "203.0.113.9", True),
    ],
)
def test_trusted_hosts_membership(spec: str | list[str], host: str, trusted: bool) -> None:
    assert (host in TrustedHosts(spec)) is trusted


def test_only_strings_are_members() -> None:
    assert None not in TrustedHosts(DEFAULT_TRUSTED)
    assert 127 not in TrustedHosts(DEFAULT_TRUSTED)
    assert None in TrustedHosts("*")


@pytest.mark.parametrize(("spec", "always"), [("*", True), (" * ", True), (DEFAULT_TRUSTED, False)])
def test_always(spec: str, always: bool) -> None:
    assert TrustedHosts(spec).always is always


@pytest.mark.parametrize(
    ("spec", "entry"),
    [
        ("nonsense", "nonsense"),
        ("127.0.0.1, nonsense ,::1", "nonsense"),
        ("10.0.0.1/8", "10.0.0.1/8"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("127.0.0.1:80", "127.0.0.1:80"),
        ("[::1]", "[::1]"),
        ("localhost", "localhost"),
        ("127.0.0.01", "127.0.0.01"),
        (["10.0.0.1", "*.example"], "*.example"),
    ],
)
def test_a_bad_entry_is_named_in_one_line(spec: str | list[str], entry: str) -> None:
    with pytest.raises(ValueError, match="invalid --forwarded-allow-ips entry") as info:
        TrustedHosts(spec)
    message = str(info.value)
    assert f"{entry!r}" in message
    assert "\n" not in message


def test_repr_lists_the_entries() -> None:
    assert (
        repr(TrustedHosts("10.0.0.0/8, ::1, 127.0.0.1"))
        == "TrustedHosts('127.0.0.1,::1,10.0.0.0/8')"
    )


# The trust gate


def test_an_untrusted_peer_changes_nothing() -> None:
    peer = ("203.0.113.9", 5000)
    headers = [*xff("1.2.3.4"), ("x-forwarded-proto", "https"), *fwd("for=1.2.3.4;proto=https")]
    assert resolve(headers, client=peer) == (peer, "http")
    assert resolve(headers, client=peer, scheme="ws") == (peer, "ws")


def test_a_trusted_peer_without_proxy_headers_changes_nothing() -> None:
    assert resolve([("host", "example.com")]) == (PROXY, "http")
    assert resolve([], scheme="https") == (PROXY, "https")


@pytest.mark.parametrize("peer", [("127.0.0.1", 1), ("::1", 1), ("::ffff:127.0.0.1", 1)])
def test_trusted_peers_ipv4_ipv6_and_ipv4_mapped(peer: tuple[str, int]) -> None:
    assert resolve(xff("203.0.113.7"), client=peer) == (("203.0.113.7", 0), "http")


def test_a_unix_socket_peer_is_trusted() -> None:
    headers = [*xff("203.0.113.7"), ("x-forwarded-proto", "https")]
    assert resolve(headers, client=None) == (("203.0.113.7", 0), "https")
    assert resolve([], client=None) == (None, "http")
    assert resolve([("x-forwarded-proto", "https")], client=None) == (None, "https")


def test_star_trusts_every_peer_and_hop() -> None:
    everyone = TrustedHosts("*")
    got = resolve(xff("192.0.2.1, 203.0.113.7"), client=("198.51.100.1", 1), trusted=everyone)
    assert got == (("192.0.2.1", 0), "http")


def test_star_still_never_takes_a_client_from_a_malformed_hop() -> None:
    everyone = TrustedHosts("*")
    assert resolve(xff("nonsense, 203.0.113.7"), trusted=everyone) == (("203.0.113.7", 0), "http")
    assert resolve(fwd("for=unknown, for=192.0.2.1"), trusted=everyone) == (
        ("192.0.2.1", 0),
        "http",
    )


# X-Forwarded-For

UNCHANGED = PROXY


@pytest.mark.parametrize(
    ("value", "client"),
    [
        # one proxy
        ("203.0.113.7", ("203.0.113.7", 0)),
        # a trusted proxy tier: the rightmost untrusted hop
        ("203.0.113.7, 10.0.0.2", ("203.0.113.7", 0)),
        ("203.0.113.7, 10.0.0.2, 10.0.0.3", ("203.0.113.7", 0)),
        # spoofed: the client wrote 1.2.3.4 itself, our proxy appended the real address
        ("1.2.3.4, 203.0.113.7", ("203.0.113.7", 0)),
        ("1.2.3.4, 10.0.0.9, 203.0.113.7, 10.0.0.2", ("203.0.113.7", 0)),
        # every hop trusted: the leftmost
        ("10.0.0.3, 10.0.0.2", ("10.0.0.3", 0)),
        ("::1", ("::1", 0)),
        # whitespace and empty list elements (RFC 9110 §5.6.1.2)
        ("  203.0.113.7 ,10.0.0.2\t", ("203.0.113.7", 0)),
        (",203.0.113.7,,10.0.0.2,", ("203.0.113.7", 0)),
        ("", UNCHANGED),
        (" , ", UNCHANGED),
        # IPv6, bare or bracketed, with a port that is dropped
        ("2001:db8::1", ("2001:db8::1", 0)),
        ("[2001:db8::1]", ("2001:db8::1", 0)),
        ("[2001:db8::1]:8080", ("2001:db8::1", 0)),
        ("2001:DB8:0:0::1", ("2001:db8::1", 0)),
        ("::ffff:203.0.113.7", ("::ffff:203.0.113.7", 0)),
        ("203.0.113.7:8080", ("203.0.113.7", 0)),
        # an IPv4-mapped trusted hop is trusted
        ("203.0.113.7, ::ffff:10.0.0.2", ("203.0.113.7", 0)),
        # malformed entries end the walk: the last address reached, or the peer
        ("nonsense", UNCHANGED),
        ("203.0.113.7, nonsense", UNCHANGED),
        ("203.0.113.7, garbage, 10.0.0.2", ("10.0.0.2", 0)),
        ("203.0.113.7, unknown", UNCHANGED),
        ("203.0.113.7, _hidden", UNCHANGED),
        ("203.0.113.7 10.0.0.2", UNCHANGED),
        ("203.0.113.07", UNCHANGED),
        ("203.0.113.300", UNCHANGED),
        ("203.0.113.7:70000", UNCHANGED),
        ("203.0.113.7:", UNCHANGED),
        ("[2001:db8::1]:", UNCHANGED),
        ("[2001:db8::1", UNCHANGED),
        ("fe80::1%eth0", UNCHANGED),
        ('"203.0.113.7"', UNCHANGED),
        ("203.0.113.\xb2", UNCHANGED),
        ("example.com", UNCHANGED),
        # beyond the client, malformed entries are never read
        ("garbage, 203.0.113.7", ("203.0.113.7", 0)),
    ],
)
def test_x_forwarded_for(value: str, client: tuple[str, int]) -> None:
    assert resolve(xff(value)) == (client, "http")


@pytest.mark.parametrize(
    ("lines", "client"),
    [
        (["1.2.3.4", "203.0.113.7, 10.0.0.2"], ("203.0.113.7", 0)),
        (["203.0.113.7", "198.51.100.1"], ("198.51.100.1", 0)),
        (["198.51.100.1", "203.0.113.7"], ("203.0.113.7", 0)),
        (["203.0.113.7", "10.0.0.2", ""], ("203.0.113.7", 0)),
    ],
)
def test_x_forwarded_for_lines_join_in_order(lines: list[str], client: tuple[str, int]) -> None:
    headers = [("accept", "*/*")]
    for line in lines:
        headers += [*xff(line), ("x-other", "1")]
    assert resolve(headers) == (client, "http")


# X-Forwarded-Proto


@pytest.mark.parametrize(
    ("for_", "proto", "scheme", "expected"),
    [
        # without X-Forwarded-For
        (None, "https", "http", (UNCHANGED, "https")),
        (None, "HTTPS", "http", (UNCHANGED, "https")),
        (None, " https ", "http", (UNCHANGED, "https")),
        (None, "http", "https", (UNCHANGED, "http")),
        # WebSocket scopes get ws/wss, HTTP scopes http/https
        (None, "https", "ws", (UNCHANGED, "wss")),
        (None, "http", "wss", (UNCHANGED, "ws")),
        (None, "wss", "ws", (UNCHANGED, "wss")),
        (None, "wss", "http", (UNCHANGED, "https")),
        (None, "ws", "https", (UNCHANGED, "http")),
        # not a scheme this server accepts: ignored
        (None, "ftp", "http", (UNCHANGED, "http")),
        (None, "javascript:", "https", (UNCHANGED, "https")),
        (None, "https x", "http", (UNCHANGED, "http")),
        (None, "", "http", (UNCHANGED, "http")),
        (None, "http,,", "https", (UNCHANGED, "http")),
        # with one X-Forwarded-For entry
        ("203.0.113.7", "https", "http", (("203.0.113.7", 0), "https")),
        ("203.0.113.7", "https", "ws", (("203.0.113.7", 0), "wss")),
        # aligned lists: the entry of the hop that named the client
        ("203.0.113.7, 10.0.0.2", "https, http", "http", (("203.0.113.7", 0), "https")),
        ("203.0.113.7, 10.0.0.2", "http, https", "https", (("203.0.113.7", 0), "http")),
        ("10.0.0.3, 10.0.0.2", "https, http", "http", (("10.0.0.3", 0), "https")),
        # spoofed: the client's own "https" is left of the client and never read
        ("1.2.3.4, 203.0.113.7", "https, http", "http", (("203.0.113.7", 0), "http")),
        # empty elements do not count towards the alignment
        ("203.0.113.7, , 10.0.0.2", ",https,, http", "http", (("203.0.113.7", 0), "https")),
        # the client hop's proto is unusable: the nearer hop's stands
        ("203.0.113.7, 10.0.0.2", "bogus, https", "http", (("203.0.113.7", 0), "https")),
        # counts differ: the lists cannot be aligned, the rightmost entry counts
        ("203.0.113.7, 10.0.0.2", "http", "https", (("203.0.113.7", 0), "http")),
        ("203.0.113.7", "https, http", "http", (("203.0.113.7", 0), "http")),
        ("203.0.113.7", "http, https, bogus", "http", (("203.0.113.7", 0), "http")),
        # nothing is taken from a malformed hop, its proto included
        ("nonsense", "https", "http", (UNCHANGED, "http")),
        ("203.0.113.7, nonsense", "http, https", "http", (UNCHANGED, "http")),
        (
            "203.0.113.7, garbage, 10.0.0.2",
            "https, https, http",
            "https",
            (("10.0.0.2", 0), "http"),
        ),
    ],
)
def test_x_forwarded_proto(
    for_: str | None, proto: str, scheme: str, expected: tuple[tuple[str, int], str]
) -> None:
    headers = [("x-forwarded-proto", proto)] + ([] if for_ is None else xff(for_))
    assert resolve(headers, scheme=scheme) == expected


def test_x_forwarded_proto_lines_join_in_order() -> None:
    headers = [
        *xff("203.0.113.7"),
        ("x-forwarded-proto", "https"),
        *xff("10.0.0.2"),
        ("x-forwarded-proto", "http"),
    ]
    assert resolve(headers) == (("203.0.113.7", 0), "https")


# Forwarded (RFC 7239)


@pytest.mark.parametrize(
    ("values", "scheme", "expected"),
    [
        # §4 examples
        (['for="_gazonk"'], "http", (UNCHANGED, "http")),
        (['For="[2001:db8:cafe::17]:4711"'], "http", (("2001:db8:cafe::17", 4711), "http")),
        (["for=192.0.2.60;proto=http;by=203.0.113.43"], "https", (("192.0.2.60", 0), "http")),
        (["for=192.0.2.43, for=198.51.100.17"], "http", (("198.51.100.17", 0), "http")),
        # §6 examples: a port, quoted as §6 asks or not
        (['for="192.0.2.43:47011"'], "http", (("192.0.2.43", 47011), "http")),
        (['for="[2001:db8:cafe::17]:47011"'], "http", (("2001:db8:cafe::17", 47011), "http")),
        (["for=192.0.2.43:47011"], "http", (("192.0.2.43", 47011), "http")),
        (["for=[2001:db8:cafe::17]"], "http", (("2001:db8:cafe::17", 0), "http")),
        (['for="[2001:DB8:CAFE:0::17]"'], "http", (("2001:db8:cafe::17", 0), "http")),
        (['for="192.0.2.43:_obfport"'], "http", (("192.0.2.43", 0), "http")),
        # §6.2, §6.3: unknown and obfuscated identifiers end the walk
        (["for=_hidden, for=_SEVKISEK"], "http", (UNCHANGED, "http")),
        (["for=unknown"], "http", (UNCHANGED, "http")),
        (["for=UNKNOWN"], "http", (UNCHANGED, "http")),
        (['for="unknown:80"'], "http", (UNCHANGED, "http")),
        (["for=192.0.2.43, for=_hidden"], "http", (UNCHANGED, "http")),
        (["for=192.0.2.43, for=_hidden, for=10.0.0.2"], "http", (("10.0.0.2", 0), "http")),
        # ...but a trusted proxy's proto beside one is used
        (["for=_hidden;proto=https"], "http", (UNCHANGED, "https")),
        (
            ["for=1.2.3.4;proto=http, for=_x;proto=https, for=10.0.0.2"],
            "http",
            (("10.0.0.2", 0), "https"),
        ),
        # an element without for=: the same
        (["proto=https"], "http", (UNCHANGED, "https")),
        (["by=203.0.113.43;host=example.com"], "https", (UNCHANGED, "https")),
        (["for=192.0.2.43, proto=https"], "http", (UNCHANGED, "https")),
        # §7.5 example, with the second proxy trusted
        (
            ["for=192.0.2.43, for=10.0.0.2;by=203.0.113.60;proto=http;host=example.com"],
            "https",
            (("192.0.2.43", 0), "http"),
        ),
        # chains, spoofing, all trusted
        (
            ["for=192.0.2.43;proto=https, for=10.0.0.2;proto=http"],
            "http",
            (("192.0.2.43", 0), "https"),
        ),
        (
            ["for=1.2.3.4;proto=https, for=198.51.100.17;proto=http"],
            "https",
            (("198.51.100.17", 0), "http"),
        ),
        (["for=10.0.0.3;proto=https, for=10.0.0.2"], "http", (("10.0.0.3", 0), "https")),
        (["for=192.0.2.43, for=10.0.0.2;proto=https"], "http", (("192.0.2.43", 0), "https")),
        # parameter names are case-insensitive; schemes too
        (["FOR=192.0.2.43;Proto=HTTPS"], "http", (("192.0.2.43", 0), "https")),
        # quoted values and quoted-pairs
        (['for="192.0.2.43";proto="https"'], "http", (("192.0.2.43", 0), "https")),
        (['for="192.0.2.\\43"'], "http", (("192.0.2.43", 0), "http")),
        # whitespace, empty pairs, empty elements
        (["for=192.0.2.43 ; proto=https"], "http", (("192.0.2.43", 0), "https")),
        (["for=192.0.2.43;;proto=https;"], "http", (("192.0.2.43", 0), "https")),
        ([", for=192.0.2.43 ,, "], "http", (("192.0.2.43", 0), "http")),
        # WebSocket scopes
        (["for=192.0.2.43;proto=https"], "ws", (("192.0.2.43", 0), "wss")),
        (["for=192.0.2.43;proto=http"], "wss", (("192.0.2.43", 0), "ws")),
        (["for=192.0.2.43;proto=wss"], "http", (("192.0.2.43", 0), "https")),
        # a well-formed scheme this server does not serve is ignored, the hop kept
        (["for=192.0.2.43;proto=ftp"], "http", (("192.0.2.43", 0), "http")),
        # lines join in order
        (["for=1.2.3.4", "for=192.0.2.43;proto=https"], "http", (("192.0.2.43", 0), "https")),
        (["for=192.0.2.43", "for=10.0.0.2"], "http", (("192.0.2.43", 0), "http")),
    ],
)
def test_forwarded(values: list[str], scheme: str, expected: tuple[tuple[str, int], str]) -> None:
    assert resolve(fwd(*values), scheme=scheme) == expected


@pytest.mark.parametrize(
    "values",
    [
        ['for=192.0.2.43,for="[2001:db8:cafe::17]",for=unknown'],
        ['for=192.0.2.43, for="[2001:db8:cafe::17]", for=unknown'],
        ["for=192.0.2.43", 'for="[2001:db8:cafe::17]", for=unknown'],
    ],
)
def test_rfc7239_7_1_equivalent_lists(values: list[str]) -> None:
    # The example ends in "unknown": the walk stops there.
    assert resolve(fwd(*values)) == (UNCHANGED, "http")
    # Without it, and with 2001:db8:cafe::17 a trusted proxy, the first hop is the client.
    trusted = TrustedHosts("127.0.0.1, 2001:db8:cafe::17")
    values = [v.replace(", for=unknown", "").replace(",for=unknown", "") for v in values]
    assert resolve(fwd(*values), trusted=trusted) == (("192.0.2.43", 0), "http")


@pytest.mark.parametrize(
    "element",
    [
        "for=",
        'for=""',
        'for="192.0.2.43',
        "for=192.0.2.43;for=192.0.2.44",
        "For=192.0.2.43;fOR=192.0.2.44",
        "for=192.0.2.43 proto=https",
        "for = 192.0.2.43",
        "for=2001:db8::1",
        'for="[2001:db8::1"',
        'for="[192.0.2.43]"',
        "for=192.0.2.300",
        "for=192.0.2.043",
        'for="192.0.2.43:99999"',
        'for="192.0.2.43:"',
        'for="192.0.2.43:80:80"',
        'for="[2001:db8::1]:x"',
        "for=example.com",
        "for=_",
        'for="_hid den"',
        'for="[fe80::1%eth0]"',
        "for=192.0.2.43;proto=1http",
        'for=192.0.2.43;proto="https://"',
        "for=192.0.2.43;proto=",
        "for=192.0.2.43;pro\xe9to=https",
        "garbage",
        "=192.0.2.43",
        "for=192.0.2.\xb2",
    ],
)
def test_a_malformed_forwarded_element_ends_the_walk(element: str) -> None:
    # Rightmost: nothing changes, not even the scheme.
    assert resolve(fwd(f"{element};proto=https" if "proto" not in element else element)) == (
        UNCHANGED,
        "http",
    )
    # Behind a trusted hop: that hop is the client.
    assert resolve(fwd(f"for=192.0.2.1, {element}, for=10.0.0.2")) == (("10.0.0.2", 0), "http")
    # Beyond the client: never read.
    assert resolve(fwd(f"{element}, for=192.0.2.1")) == (("192.0.2.1", 0), "http")


@pytest.mark.parametrize(
    "values",
    [
        ['for="1.2.3.4, for=198.51.100.17'],
        ['for="1.2.3.4, for="[2001:db8::17]"', "for=198.51.100.17"],
        ['for="1.2.3.4', "for=198.51.100.17"],
        ['for="1.2.3.4;proto=https", for=198.51.100.17'],
    ],
)
def test_an_open_quote_cannot_swallow_the_hops_appended_after_it(values: list[str]) -> None:
    assert resolve(fwd(*values)) == (("198.51.100.17", 0), "http")


# Precedence


def test_forwarded_wins_over_x_forwarded() -> None:
    headers = [
        *xff("203.0.113.7"),
        ("x-forwarded-proto", "http"),
        *fwd("for=192.0.2.43;proto=https"),
    ]
    assert resolve(headers) == (("192.0.2.43", 0), "https")


def test_an_unusable_forwarded_still_silences_x_forwarded() -> None:
    headers = [*fwd("for=unknown"), *xff("203.0.113.7"), ("x-forwarded-proto", "https")]
    assert resolve(headers) == (UNCHANGED, "http")
    headers = [*fwd("nonsense"), *xff("203.0.113.7"), ("x-forwarded-proto", "https")]
    assert resolve(headers) == (UNCHANGED, "http")
    headers = [*fwd("for=192.0.2.43"), ("x-forwarded-proto", "https")]
    assert resolve(headers) == (("192.0.2.43", 0), "http")


# Properties


_header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["forwarded", "x-forwarded-for", "x-forwarded-proto"]), _header_text
        ),
        max_size=4,
    ),
    st.sampled_from(["http", "https", "ws", "wss"]),
)
def test_any_header_values_give_a_valid_client_and_a_same_family_scheme(
    headers: HeaderList, scheme: str
) -> None:
    client, got = resolve(headers, scheme=scheme, trusted=TrustedHosts("*"))
    assert client is not None
    ipaddress.ip_address(client[0])
    assert 0 <= client[1] <= 65535
    family = {"http", "https"} if scheme in {"http", "https"} else {"ws", "wss"}
    assert got in family


@given(st.lists(_header_text, max_size=3))
def test_nothing_left_of_an_untrusted_hop_is_read(spoofed: list[str]) -> None:
    # Whatever a client writes, once our proxy appends its address, that address is the client.
    headers = [*xff(", ".join(spoofed)), *xff("203.0.113.7")]
    assert resolve(headers)[0] == ("203.0.113.7", 0)
    headers = [*fwd(*spoofed), *fwd("for=203.0.113.7;proto=http")]
    assert resolve(headers, scheme="https") == (("203.0.113.7", 0), "http")
