"""A conformance suite that grades any ASGI server against the ASGI spec and the RFCs.

Run ``asgi-conformance --server 'COMMAND with {app} and {port}'`` (or ``python -m
sansio_asgi.conformance``; ``python -m conformance`` from a checkout); see README.md.

The server under test imports this package as ``conformance`` on its way to the probe apps,
with only the standard library at hand: it imports nothing.
"""
