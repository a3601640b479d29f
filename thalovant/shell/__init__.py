"""IO drivers that bind the pure core to the world (anyio, h11, wsproto, paho).

No compatibility promise: use the names exported by ``thalovant``.
"""
