"""The wrapper fast path and the shared JSON encoder/decoder give exactly the old bytes/results."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.handshake.v1_crypto import Cipher, Encoding, open_wrapper, seal_wrapper
from thalovant.core.wire.codec import decode_json, encode_json, parse_json_object
from thalovant.core.wire.message import HiveMessage, MsgType

KEYS = {Cipher.AES_GCM: b"k" * 16, Cipher.CHACHA20_POLY1305: b"c" * 32}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    plaintext=st.text(max_size=300),
    encoding=st.sampled_from(list(Encoding)),
    cipher=st.sampled_from(list(Cipher)),
    nonce_seed=st.binary(min_size=16, max_size=16),
)
def test_seal_wrapper_text_is_what_json_dumps_writes(
    plaintext: str, encoding: Encoding, cipher: Cipher, nonce_seed: bytes
) -> None:
    nonce = nonce_seed[: cipher.nonce_len]
    text = seal_wrapper(plaintext, key=KEYS[cipher], cipher=cipher, encoding=encoding, nonce=nonce)
    fields = json.loads(text)
    assert list(fields) == ["ciphertext", "tag", "nonce"]
    assert text == json.dumps(fields)  # byte-identical to the reference encoder's output
    assert open_wrapper(text, key=KEYS[cipher], cipher=cipher, encoding=encoding).unwrap() == plaintext


@settings(max_examples=200, deadline=None)
@given(
    payload=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    metadata=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
)
def test_encode_json_matches_json_dumps_and_round_trips(
    payload: dict[str, object], metadata: dict[str, object]
) -> None:
    message = HiveMessage(msg_type=MsgType.BUS, payload=payload, metadata=metadata)
    text = encode_json(message)
    expected = {
        "msg_type": "bus",
        "payload": payload,
        "metadata": metadata,
        "route": [],
        "node": None,
        "target_site_id": None,
        "target_pubkey": None,
        "source_peer": None,
    }
    assert text == json.dumps(expected, ensure_ascii=False, allow_nan=False)
    assert decode_json(text).unwrap() == message


def test_the_shared_decoder_still_refuses_nan_infinity_and_non_objects() -> None:
    for raw in ('{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', "[1]", "\ufeff{}", "", b"\xff"):
        assert not isinstance(parse_json_object(raw).value_or(None), dict), raw
    assert parse_json_object('{"a": 1.5}').unwrap() == {"a": 1.5}
    assert math.isclose(parse_json_object(b'{"x": 1e300}').unwrap()["x"], 1e300)
