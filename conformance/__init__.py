"""A conformance suite that grades any ASGI server against the ASGI spec and the RFCs.

Run ``python -m conformance --server 'COMMAND with {app} and {port}'``; see README.md.
"""
