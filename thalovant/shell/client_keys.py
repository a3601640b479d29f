"""Hub key pinning and the alternative constructors of :class:`~thalovant.shell.client.AsyncThalovantClient`.

:class:`ClientKeys` is mixed into the client. On hub 5.x the client pins the hub's Noise static key on
first contact (trust on first use, :mod:`thalovant.shell.hub_keys`) and checks every later handshake
against it: a changed key stops the client with :class:`~thalovant.ThalovantHubKeyChangedError` (never
a reconnect loop). :meth:`ClientKeys.forget_hub_key` is the one explicit way to accept a rotated key.

It also holds the constructors that build the identity first (``from_identity_file``, ``from_env``,
``from_config``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import anyio

from thalovant.core.client.connection import ConnectionState
from thalovant.core.client.hub_keys import (
    REFUSAL_WINDOW,
    kk_refused,
    learned_hub_key,
    refusal_possible,
    repinned,
    without_kk,
)
from thalovant.core.client.plan import ClientPlan, MqttPlan
from thalovant.core.errors import ThalovantError
from thalovant.core.handshake.pins import PinDecision, decide, fingerprint
from thalovant.shell.constructors import FromIdentity
from thalovant.shell.hub_keys import HubKeyStore, hub_key_store
from thalovant.shell.identity_io import ThalovantIdentity
from thalovant.shell.keys import NoiseKeyFile
from thalovant.shell.outcomes import ConnectEnded

if TYPE_CHECKING:
    from thalovant.shell.engine import ClientEngine

__all__ = ["ClientKeys", "plan_endpoint"]


def plan_endpoint(plan: ClientPlan) -> str:
    """The endpoint a plan talks to, as a URL (an MQTT plan: its broker)."""
    if isinstance(plan, MqttPlan):
        return f"{'mqtts' if plan.tls else 'mqtt'}://{plan.host}:{plan.port}"
    return plan.url


class ClientKeys(FromIdentity):
    """Mixin: the hub's pinned Noise key (hub 5.x), and the identity-loading constructors (:class:`FromIdentity`)."""

    _engine: ClientEngine
    _plan: ClientPlan
    connect_timeout: float
    _hub_keys: HubKeyStore
    identity: ThalovantIdentity

    # ---- the hub's pinned key -------------------------------------------------------------------

    def _pinned_plan(self, plan: ClientPlan, key_file: NoiseKeyFile) -> ClientPlan:
        """``plan`` checking the hub's key against the stored pin (the store is kept for later pins).

        Raises:
            ThalovantArgumentError: (argument ``noise_key_file``) the pin file is unreadable or malformed.
        """
        try:  # the identity's name for the endpoint (with transport= the plan holds a stand-in)
            endpoint = self.identity.endpoint_for(plan.protocol) or plan_endpoint(plan)
        except ThalovantError:
            endpoint = plan_endpoint(plan)
        store = hub_key_store(endpoint=endpoint, access_key=self.identity.access_key, key_file=key_file)
        self._hub_keys = store
        return replace(plan, config=repinned(plan.config, store.load()))

    @property
    def hub_key_fingerprint(self) -> str | None:
        """The fingerprint (``SHA256:...``) of the hub key pinned for this endpoint, or None (nothing pinned)."""
        key = self._hub_keys.load()
        return fingerprint(key) if key is not None else None

    def forget_hub_key(self) -> bool:
        """Forget the hub's pinned Noise key (hub 5.x): the next ``connect()`` pins whatever key the hub presents.

        This is how a rotated hub key is accepted after :class:`~thalovant.ThalovantHubKeyChangedError`: check
        with the hub's operator that the new fingerprint is the hub's, then forget the old pin and connect
        again. Takes effect at the next ``connect()`` (a running connection keeps checking its pin).

        Returns:
            Whether a pin was forgotten.

        Raises:
            ThalovantArgumentError: (argument ``noise_key_file``) the pin file cannot be removed.
        """
        forgotten = self._hub_keys.forget()
        self._engine.config = repinned(self._engine.config, None)
        self._plan = replace(self._plan, config=repinned(self._plan.config, None))
        return forgotten

    async def _settled_within(self, wait: float) -> ConnectEnded | None:
        """Start the engine and settle within ``wait`` seconds, key pins included (why not ready, or None)."""
        deadline = anyio.current_time() + wait  # the XXpsk2 retry and the refusal wait end by it too
        if self._engine.runtime is not None and self._engine.status is ConnectionState.READY:
            return None  # connected: a no-op (the keys were settled when this session became ready)
        await self._engine.start()
        try:
            self._engine.retries_kk = True  # a refused KKpsk0 is retried below: its give-up fails no listener
            try:
                settled = await self._engine.settle(wait)
            finally:
                self._engine.retries_kk = False
            failed = await self._keys_settled(settled, deadline)
        except Exception:  # e.g. the pin cannot be read or written: the connect leaves nothing open
            await self._engine.stop("the hub's key could not be pinned")
            raise
        return replace(failed, timeout=wait) if failed is not None and failed.gave_up is None else failed

    async def _keys_settled(self, failed: ConnectEnded | None, deadline: float) -> ConnectEnded | None:
        """After ``connect()`` settled: wait out a possible refusal of our key, then pin the hub's (first use).

        Hub 5.x refuses a client key it did not pin by closing the link right after an XXpsk2 handshake, when
        the session already looks ready. Only when the hub offered KKpsk0 (it knows a key for this access key)
        and this client ran XXpsk2 does ``connect()`` wait for that, at most ``REFUSAL_WINDOW`` seconds.
        The retry and that wait both end by ``deadline`` (``connect()``'s own).
        """
        if failed is not None and kk_refused(self._engine.machine):  # a single attempt ended on KKpsk0
            failed = await self._retry_with_xx(deadline)
        if failed is None and refusal_possible(self._engine.machine):
            with anyio.move_on_after(min(REFUSAL_WINDOW, max(0.0, deadline - anyio.current_time()))):
                while self._engine.status is ConnectionState.READY:  # noqa: ASYNC110 (bounded: no event for it)
                    await anyio.sleep(0.01)
            if self._engine.status is ConnectionState.GAVE_UP:
                failed = self._engine.not_connected(0.0)
        self._keep_hub_key(failed)
        return failed

    async def _retry_with_xx(self, deadline: float) -> ConnectEnded | None:
        """Connect once more with ``XXpsk2``: it tells a changed hub key (or a wrong password) from a glitch."""
        config = self._engine.config
        await self._engine.stop("retrying the Noise handshake with XXpsk2", keep_waits=True)  # listeners live on
        self._engine.config = without_kk(config)
        try:
            await self._engine.start()
            return await self._engine.settle(max(0.0, deadline - anyio.current_time()))
        finally:
            self._engine.config = config

    def _keep_hub_key(self, failed: ConnectEnded | None) -> None:
        """Pin the key a first v3 session authenticated (trust on first use)."""
        if failed is not None:
            return
        learned = learned_hub_key(self._engine.machine)
        if learned is None:
            return
        decision = decide(self._hub_keys.load(), learned)
        if decision is PinDecision.PIN:
            self._hub_keys.save(learned)
        if decision is not PinDecision.MISMATCH:  # (pinned meanwhile by another client: the file wins)
            self._engine.config = repinned(self._engine.config, learned)
