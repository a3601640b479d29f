"""Session hand-over to the v3 Noise handshake when the hub's offer speaks Noise (spec §0.2)."""

from __future__ import annotations

import hashlib

from tests.core.handshake.test_v3 import FakeNoiseHub
from tests.core.session.test_session_pair import tape
from thalovant.core.machine import Output
from thalovant.core.session.machine import (
    CloseLink,
    Deliver,
    FrameReceived,
    LinkOpened,
    SendFrame,
    Session,
    SessionFailed,
    SessionReady,
    SessionState,
    UserSend,
)
from thalovant.core.wire.codec import decode_json, encode_json
from thalovant.core.wire.message import BusMessage, HiveMessage, MsgType


def test_noise_offer_runs_xx_sends_hello_as_first_noise_frame_then_the_queue() -> None:
    psk = hashlib.sha256(b"pretend-argon2").digest()
    hub = FakeNoiseHub(password_psk=psk, seed=b"session-v3")
    offered = hub.offer()
    s = Session(
        session_id="sess-v3",
        site_id="kitchen",
        useragent="UA/1",
        entropy=tape(5),
        password="correct horse battery staple",
        v3_options={"static_key": hashlib.sha256(b"client").digest(), "psk": psk},
    )
    s.handle(LinkOpened(), now=0.0)
    s.handle(UserSend(message=BusMessage(type="recognizer_loop:utterance"), ref=1), now=0.0)
    assert s.handle(FrameReceived(data=encode_json(hub.hello)), now=0.1) == []
    outs: list[Output] = s.handle(FrameReceived(data=encode_json(offered)), now=0.2)
    (msg1,) = [o for o in outs if isinstance(o, SendFrame)]
    assert isinstance(msg1.data, str)  # Noise handshake frames are cleartext JSON text
    msg2 = hub.on_shake(decode_json(msg1.data).unwrap(), offered)
    assert msg2 is not None
    outs = s.handle(FrameReceived(data=encode_json(msg2)), now=0.3)
    frames = [o for o in outs if isinstance(o, SendFrame)]
    assert s.state is SessionState.READY
    assert [o for o in outs if isinstance(o, SessionReady)] == [SessionReady(generation=3, hub_peer="ua::1::sat::s1")]
    msg3 = frames[0]
    assert isinstance(msg3.data, str)
    assert hub.on_shake(decode_json(msg3.data).unwrap(), offered) is None
    assert hub.channel is not None
    opened = [hub.channel.open(f.data) for f in frames[1:]]
    messages = [r.unwrap() for r in opened]
    assert [m.msg_type for m in messages if m is not None] == [MsgType.HELLO, MsgType.BUS]
    hello = messages[0]
    assert hello is not None and isinstance(hello.payload, dict)
    assert hello.payload["session"]["session_id"] == "sess-v3"
    assert frames[-1].refs == (1,)
    reply = HiveMessage(msg_type=MsgType.BUS, payload={"type": "speak", "data": {"utterance": "hi"}, "context": {}})
    delivered = [o for f in hub.channel.seal(reply) for o in s.handle(FrameReceived(data=f), now=1.0)]
    assert delivered == [Deliver(message=reply)]
    # a message chunked into several Noise frames is delivered once, after the last chunk
    big = HiveMessage(
        msg_type=MsgType.BUS, payload={"type": "speak", "data": {"utterance": "x" * 150_000}, "context": {}}
    )
    chunks = hub.channel.seal(big)
    assert len(chunks) == 3
    per_chunk = [s.handle(FrameReceived(data=f), now=1.0) for f in chunks]
    assert per_chunk == [[], [], [Deliver(message=big)]]
    # after Noise, a cleartext text frame is fatal (spec §7.7)
    outs = s.handle(FrameReceived(data=encode_json(reply)), now=1.1)
    assert any(isinstance(o, SessionFailed) and o.code == "downgrade" for o in outs)
    assert any(isinstance(o, CloseLink) for o in outs)
