"""The ``authorization`` token a client presents to the hub (spec §3.1).

WebSocket and HTTP clients pass it as the ``authorization`` query value. It is built from the
user agent and the access key, so it is a secret: never log it or put it in an output's repr.
"""

from __future__ import annotations

import base64

from thalovant.core.errors import LocalProtocolError

__all__ = ["authorization_token"]


def authorization_token(useragent: str, access_key: str) -> str:
    """The ``authorization`` query value: base64(useragent + ":" + access_key) (spec §3.1).

    Raises:
        LocalProtocolError: either part contains ``:`` (hub 4.x would abort the connection).
    """
    if ":" in useragent or ":" in access_key:
        raise LocalProtocolError("neither the user agent nor the access key may contain ':'")
    return base64.b64encode(f"{useragent}:{access_key}".encode()).decode("ascii")
