"""How :mod:`~thalovant.shell.links.ws` names its peer and turns transport exceptions into typed errors."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from thalovant.errors import ThalovantConnectionError, ThalovantError, ThalovantTimeoutError

__all__ = ["host_header", "mapped_errors"]


def host_header(host: str, port: int) -> str:
    """The ``Host`` header for ``host`` and ``port`` (an IPv6 literal in brackets)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{shown}:{port}"


@contextmanager
def mapped_errors(action: str) -> Iterator[None]:
    """Turn transport exceptions into thalovant's connection errors (no secrets)."""
    try:
        yield
    except ThalovantError:
        raise  # already typed (ThalovantConnectionError is an OSError: keep it out of the OSError arm)
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        raise ThalovantConnectionError(f"websocket {action} failed: connection lost") from exc
    except ssl.SSLCertVerificationError as exc:
        raise ThalovantConnectionError(
            f"websocket {action} failed: TLS certificate verification failed ({exc.verify_message}); "
            "pass ca_file= with the hub's CA",
            retryable=False,
        ) from None
    except ssl.SSLError as exc:
        raise ThalovantConnectionError(f"websocket {action} failed: TLS error ({exc.reason})") from None
    except TimeoutError:
        raise ThalovantTimeoutError(f"websocket {action} timed out") from None
    except OSError as exc:
        raise ThalovantConnectionError(f"websocket {action} failed: {exc.strerror or type(exc).__name__}") from None
    except (WsLocalProtocolError, WsRemoteProtocolError) as exc:
        raise ThalovantConnectionError(f"websocket {action} failed: protocol error ({type(exc).__name__})") from None
