"""MqttConnection against a real mosquitto on 127.0.0.1 (password file + ACL), on asyncio and trio."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from thalovant.errors import (
    LocalProtocolError,
    ThalovantAuthenticationError,
    ThalovantConnectionError,
    ThalovantTimeoutError,
)
from thalovant.shell.links.mqtt import MqttConnection

pytestmark = pytest.mark.anyio

MOSQUITTO = "/usr/sbin/mosquitto"
PASSWD = "/usr/bin/mosquitto_passwd"
ALICE_PW = "alice-Secret-pw-77"
BOB_PW = "bob-Secret-pw-88"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _ensure_mosquitto() -> None:
    if os.path.exists(MOSQUITTO) and os.path.exists(PASSWD):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "mosquitto"], capture_output=True, timeout=300, check=False)
    if not (os.path.exists(MOSQUITTO) and os.path.exists(PASSWD)):
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto, as root)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)


def start_broker(tmp: Path, *, tls: tuple[Path, Path] | None = None) -> Broker:
    _ensure_mosquitto()
    passwd = tmp / "passwd"
    for user, pw in (("alice", ALICE_PW), ("bob", BOB_PW)):
        flags = ["-b", "-c"] if user == "alice" else ["-b"]
        subprocess.run([PASSWD, *flags, str(passwd), user, pw], check=True, capture_output=True, timeout=20)
    os.chmod(passwd, 0o600)
    acl = tmp / "acl"
    acl.write_text("user alice\ntopic readwrite test/#\n\nuser bob\ntopic readwrite test/#\ntopic read private/#\n")
    port = _free_port()
    log = tmp / "mosquitto.log"
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        + (f"certfile {tls[0]}\nkeyfile {tls[1]}\n" if tls else "")
        + f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
        f"persistence false\nlog_dest file {log}\nuser {getpass.getuser()}\n"
    )
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):  # bounded: about 5 s
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Broker(port, proc, log)
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"mosquitto did not start: {log.read_text() if log.exists() else 'no log'}")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_broker(tmp_path_factory.mktemp("mosq"))
    yield b
    b.kill()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path)
    yield b
    if b.proc.poll() is None:
        b.kill()


_ids = iter(range(1_000_000))


def cid(name: str) -> str:
    return f"t-{name}-{os.getpid()}-{next(_ids)}"


async def connect(mqtt: MqttConnection, broker: Broker, user: str = "alice", pw: str = ALICE_PW, **kw: object) -> None:
    await mqtt.connect(
        "127.0.0.1",
        broker.port,
        client_id=cid(user),
        username=user,
        password=pw,
        timeout=5,
        **kw,  # type: ignore[arg-type]
    )


async def test_bad_password_is_authentication_error_without_the_password(broker: Broker) -> None:
    async with MqttConnection() as mqtt:
        with pytest.raises(ThalovantAuthenticationError) as info:
            await connect(mqtt, broker, pw="wrong-password-123")
        assert "wrong-password-123" not in str(info.value) and "wrong-password-123" not in repr(mqtt)
        assert info.value.retryable is False
        assert not mqtt.connected
        with pytest.raises(ThalovantConnectionError):
            await mqtt.publish("test/x", b"nope")


async def test_pub_sub_round_trip_qos0_and_qos1(broker: Broker) -> None:
    threads_before = {t.name for t in threading.enumerate()}
    async with MqttConnection() as mqtt:
        with anyio.fail_after(10):
            await connect(mqtt, broker)
            assert mqtt.connected and ALICE_PW not in repr(mqtt)
            assert await mqtt.subscribe("test/rt/#", 1) == 1
            await mqtt.publish("test/rt/a", b"zero", 0, False)
            await mqtt.publish("test/rt/b", b"\x00one\xff", 1, False)  # returns after PUBACK
            big = bytes(range(256)) * 40  # 10 kB, several socket writes
            await mqtt.publish("test/rt/c", big, 1, False)
            got = [await mqtt.receive() for _ in range(3)]
            assert got == [("test/rt/a", b"zero", 0), ("test/rt/b", b"\x00one\xff", 1), ("test/rt/c", big, 1)]
            await mqtt.disconnect()
            assert not mqtt.connected
            with pytest.raises(ThalovantConnectionError):
                await mqtt.receive()
    new_threads = {t.name for t in threading.enumerate()} - threads_before
    assert not any(name.startswith("paho") for name in new_threads)  # paho's own thread never ran


async def test_messages_between_two_clients(broker: Broker) -> None:
    async with MqttConnection() as alice, MqttConnection() as bob:
        with anyio.fail_after(10):
            await connect(alice, broker)
            await connect(bob, broker, "bob", BOB_PW)
            await bob.subscribe("test/ab/in", 1)
            for i in range(20):
                await alice.publish("test/ab/in", f"m{i}".encode(), 1, False)
            assert [(await bob.receive())[1] for _ in range(20)] == [f"m{i}".encode() for i in range(20)]
            await alice.disconnect()
            await bob.disconnect()


async def test_will_is_delivered_on_abrupt_drop_but_not_on_disconnect(broker: Broker) -> None:
    async with MqttConnection() as watcher:
        with anyio.fail_after(15):
            await connect(watcher, broker, "bob", BOB_PW)
            await watcher.subscribe("test/status/#", 1)

            async with MqttConnection() as polite:
                await connect(polite, broker, will=("test/status/polite", b"offline", 1, False))
                await polite.disconnect()

            async with MqttConnection() as crasher:
                await connect(crasher, broker, will=("test/status/crasher", b"offline", 1, False))
                await crasher.publish("test/status/crasher", b"online", 1, False)
                await crasher.abort()  # TCP closed, no DISCONNECT

            assert await watcher.receive() == ("test/status/crasher", b"online", 1)
            assert await watcher.receive() == ("test/status/crasher", b"offline", 1)
            with anyio.move_on_after(0.3):
                extra = await watcher.receive()
                raise AssertionError(f"unexpected message {extra}")  # the polite client left no will
            await watcher.disconnect()


async def test_invalid_topics_are_caller_misuse_and_leave_the_link_up(broker: Broker) -> None:
    async with MqttConnection() as mqtt:
        with anyio.fail_after(10):
            await connect(mqtt, broker)
            with pytest.raises(LocalProtocolError):
                await mqtt.subscribe("", 1)
            with pytest.raises(LocalProtocolError):
                await mqtt.publish("test/#", b"wildcards are not publishable", 0, False)
            assert await mqtt.subscribe("test/ok", 0) == 0  # the connection is still fine
            await mqtt.publish("test/ok", b"fine", 0, False)
            assert await mqtt.receive() == ("test/ok", b"fine", 0)
            await mqtt.disconnect()


async def test_broker_killed_makes_receive_raise_promptly(own_broker: Broker) -> None:
    async with MqttConnection() as mqtt:
        with anyio.fail_after(10):
            await connect(mqtt, own_broker)
            await mqtt.subscribe("test/k/#", 1)
            await mqtt.publish("test/k/1", b"before", 1, False)

            async def kill_soon() -> None:
                await anyio.sleep(0.2)
                own_broker.kill()

            start = anyio.current_time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_soon)
                assert await mqtt.receive() == ("test/k/1", b"before", 1)
                with pytest.raises(ThalovantConnectionError) as info:
                    await mqtt.receive()
            assert anyio.current_time() - start < 3.0
            assert info.value.retryable is True
            assert not mqtt.connected
            with pytest.raises(ThalovantConnectionError):
                await mqtt.publish("test/k/2", b"after", 1, False)


async def test_connect_refused_and_connack_timeout(tmp_path: Path) -> None:
    _ensure_mosquitto()
    port = _free_port()
    async with MqttConnection() as mqtt:
        with pytest.raises(ThalovantConnectionError) as refused:
            await mqtt.connect("127.0.0.1", port, client_id=cid("x"), username="alice", password=ALICE_PW, timeout=2)
        assert not isinstance(refused.value, ThalovantTimeoutError)
        assert ALICE_PW not in str(refused.value)
    with socket.socket() as silent:  # accepts TCP (kernel backlog) but never sends CONNACK
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        async with MqttConnection() as mqtt:
            start = anyio.current_time()
            with pytest.raises(ThalovantTimeoutError):
                await mqtt.connect("127.0.0.1", silent.getsockname()[1], client_id=cid("y"), password=None, timeout=0.5)
            assert anyio.current_time() - start < 3.0


async def test_thread_guard_refuses_anyio_use_off_the_loop_thread(broker: Broker) -> None:
    async with MqttConnection() as mqtt:
        await connect(mqtt, broker)
        with pytest.raises(RuntimeError, match="off the event-loop thread"):
            await anyio.to_thread.run_sync(mqtt._notify)
        await mqtt.disconnect()


async def test_misuse_is_reported() -> None:
    mqtt = MqttConnection()
    with pytest.raises(RuntimeError, match="async with"):
        await mqtt.connect("127.0.0.1", 1, client_id="x")
    with pytest.raises(ThalovantConnectionError):
        await mqtt.publish("test/x", b"", 0, False)


@pytest.mark.slow
async def test_keepalive_pings_keep_an_idle_connection_up(broker: Broker) -> None:
    """keepalive=1: mosquitto drops a silent client within ~6 s (checked), so surviving proves loop_misc pings."""
    async with MqttConnection() as mqtt:
        with anyio.fail_after(15):
            await connect(mqtt, broker, keepalive=1)
            await mqtt.subscribe("test/ka", 1)
            await anyio.sleep(6.0)
            assert mqtt.connected
            await mqtt.publish("test/ka", b"still here", 1, False)
            assert await mqtt.receive() == ("test/ka", b"still here", 1)
            await mqtt.disconnect()


async def test_body_exception_propagates_unwrapped_and_link_is_dropped(broker: Broker) -> None:
    class Boom(Exception):
        pass

    holder: list[MqttConnection] = []
    with pytest.raises(Boom):
        async with MqttConnection() as mqtt:
            holder.append(mqtt)
            await connect(mqtt, broker)
            raise Boom
    assert not holder[0].connected


async def test_cancellation_leaves_no_tasks_and_closes_the_socket(broker: Broker) -> None:
    before = len(anyio.get_running_tasks())
    holder: list[MqttConnection] = []
    with anyio.move_on_after(0.5) as scope:
        async with MqttConnection() as mqtt:
            holder.append(mqtt)
            await connect(mqtt, broker)
            await mqtt.subscribe("test/never", 0)
            await mqtt.receive()  # nothing ever arrives: cancelled here
    assert scope.cancelled_caught
    assert len(anyio.get_running_tasks()) == before
    assert not holder[0].connected and holder[0]._sock is None


async def test_slow_consumer_pauses_reading_but_loses_nothing(broker: Broker) -> None:
    async with MqttConnection() as alice, MqttConnection(max_pending=4) as bob:
        with anyio.fail_after(15):
            await connect(alice, broker)
            await connect(bob, broker, "bob", BOB_PW)
            await bob.subscribe("test/slow", 1)
            for i in range(40):
                await alice.publish("test/slow", b"%d" % i, 1, False)
            await anyio.sleep(0.3)
            assert len(bob._inbound) <= 10  # the reader stopped reading the socket
            got = [(await bob.receive())[1] for _ in range(40)]
            assert got == [b"%d" % i for i in range(40)]
            await alice.disconnect()
            await bob.disconnect()


async def test_refused_subscription_is_a_non_retryable_connection_error(broker: Broker) -> None:
    async with MqttConnection() as mqtt:
        with anyio.fail_after(10):
            await connect(mqtt, broker)
            # mosquitto 2.0.11 grants ACL-denied subscriptions (it just never delivers), so the
            # SUBACK failure code 0x80 is injected at paho's callback boundary.
            real = mqtt._cb_subscribe
            assert mqtt._client is not None
            mqtt._client.on_subscribe = lambda c, u, mid, reasons, props: real(c, u, mid, [0x80], props)
            with pytest.raises(ThalovantConnectionError, match="refused the subscription") as info:
                await mqtt.subscribe("test/denied", 1)
            assert info.value.retryable is False
            await mqtt.disconnect()


async def test_broker_dropping_us_for_a_malformed_topic_is_a_prompt_typed_error(broker: Broker) -> None:
    """mosquitto 2.0.11 disconnects ("malformed packet") on a control character in a topic."""
    async with MqttConnection() as mqtt:
        with anyio.fail_after(5):
            await connect(mqtt, broker)
            with pytest.raises(ThalovantConnectionError, match="connection lost"):
                await mqtt.publish("test/bad/\x01", b"x", 1, False)
            assert not mqtt.connected
