"""``client.doctor()``: the doctor's checks, the last two (handshake, live link) run through a client.

A connected client is checked as it is. Otherwise a short-lived probe client (the caller makes
it: same identity and TLS settings, no reconnects) is connected for those two checks and closed
afterwards. Everything else is :func:`thalovant.shell.doctor.run_doctor`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

from thalovant.core.client.health import ThalovantHealth
from thalovant.core.doctor import ThalovantDoctorReport
from thalovant.core.errors import ThalovantConnectionError
from thalovant.shell.doctor import run_doctor
from thalovant.shell.identity_io import ThalovantIdentity

__all__ = ["DoctorClient", "doctor_through"]


class DoctorClient(Protocol):
    """What the doctor needs of a client (``AsyncThalovantClient`` is one)."""

    @property
    def protocol(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def healthcheck(self) -> ThalovantHealth: ...


async def doctor_through(
    client: DoctorClient,
    make_probe: Callable[[], DoctorClient],
    *,
    identity: ThalovantIdentity,
    link_words: str,
    timeout: float,
    ca_file: str | None,
    insecure: bool,
    useragent: str,
    auth_encoding: Literal["raw", "percent"],
) -> ThalovantDoctorReport:
    """Run the doctor for ``client``'s identity and protocol (the arguments are ``run_doctor``'s).

    Args:
        client: the client checked; when it is not connected, ``make_probe()`` gives the one used instead.
        link_words: how the live link is described (the plan's ``link_words``).
    """
    probe = client if client.connected else make_probe()
    owned = probe is not client

    async def handshake() -> str:
        if owned:
            await probe.connect()
        if not probe.connected:  # closed meanwhile: never reconnect it from here
            raise ThalovantConnectionError("the client was closed during the check")
        generation = (await probe.healthcheck()).generation
        return f"handshake complete over {probe.protocol} (protocol v{generation})"

    async def link() -> str:
        health = await probe.healthcheck()
        if not health.ok:
            raise ThalovantConnectionError(health.last_error or "the link is not alive")
        return f"{probe.protocol} link alive ({link_words})"

    try:
        return await run_doctor(
            identity,
            protocol=client.protocol,
            timeout=timeout,
            ca_file=ca_file,
            insecure=insecure,
            handshake_probe=handshake,
            link_probe=link,
            useragent=useragent,
            auth_encoding=auth_encoding,
        )
    finally:
        if owned:
            await probe.close()
