"""``thalovant identity forget-hub-key``: accept a rotated hub 5.x key by forgetting the pinned one.

The client pins the hub's Noise static key on first contact (``thalovant.shell.hub_keys``) and stops with
``ThalovantHubKeyChangedError`` when the hub presents another one. After checking with the hub's operator
that the new key is the hub's, this command drops the pin of (the identity's endpoint for ``--protocol``,
its access key); the next connection pins the key the hub presents. Nothing connects.
"""

from __future__ import annotations

from typing import Any

from thalovant.core import render
from thalovant.core.client.plan import choose_protocol
from thalovant.core.errors import ThalovantArgumentError
from thalovant.core.handshake.pins import fingerprint
from thalovant.core.render import EXIT_OK
from thalovant.shell.hub_keys import hub_key_store

__all__ = ["cmd_forget_hub_key"]


def cmd_forget_hub_key(ctx: Any) -> int:
    """Forget the pinned hub key of the identity's endpoint; print what was forgotten (a public key)."""
    identity = ctx.identity
    protocol = choose_protocol(identity, ctx.args.protocol)
    endpoint, key_file = identity.require_protocol(protocol), ctx.args.noise_key_file
    store = hub_key_store(endpoint=endpoint, access_key=identity.access_key, key_file=key_file)
    try:
        key = store.load()
        shown = fingerprint(key) if key is not None else None
    except ThalovantArgumentError:  # a malformed pin file: forget it all the same
        shown = "unreadable"
    forgotten = store.forget()
    if ctx.args.json:
        ctx.out(render.json_text({"endpoint": store.endpoint, "forgotten": forgotten, "fingerprint": shown}))
    elif forgotten:
        ctx.out(f"forgot the hub key {shown} pinned for {store.endpoint}; the next connection pins the hub's key")
    else:
        ctx.out(f"no hub key was pinned for {store.endpoint}")
    return EXIT_OK
