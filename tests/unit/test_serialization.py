# SPDX-License-Identifier: BSD-3-Clause
"""Signed envelopes and pickled bodies: nothing is parsed or unpickled before its signature
checks, and a reader demands the scheme it expects (a task key's, or the shared secret's)."""

from __future__ import annotations

import collections
import os
import pickle
import threading
import time

import pytest

from rhc.errors import PayloadTooLargeError, SerializationError, SignatureError
from rhc.wire.serialization import (
    MAGIC,
    dumps,
    dumps_result,
    loads,
    seal,
    sign,
    unseal,
    verify,
)
from rhc.wire.signing import TaskKey, TrustedKeys, new_task_key

SECRET = b"a-shared-secret-of-32-characters"
LIMIT = 64 * 2**20


class MakesDirectory:
    """Unpickling this creates a directory: proof of whether a body was ever unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_an_envelope_unseals_to_its_header_and_body():
    header = {"job": "j1", "batch": 3, "timeout": None, "nested": {"a": [1, 2]}}

    assert unseal(SECRET, seal(SECRET, header, b"body bytes")) == (header, b"body bytes")
    assert unseal(SECRET, seal(SECRET, {})) == ({}, b"")


def test_a_flipped_byte_anywhere_is_refused_before_the_body_is_unpickled(tmp_path):
    # Given an envelope whose body would create a directory when unpickled
    target = tmp_path / "unpickled"
    blob = seal(SECRET, {"job": "j1"}, dumps(MakesDirectory(str(target)), what="x", limit=LIMIT))
    # When any single byte is flipped (magic, version, mac, header length, header or body)
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        # Then unsealing fails, and nothing was unpickled
        with pytest.raises(SignatureError):
            _, body = unseal(SECRET, bytes(tampered))
            loads(body, what="x", limit=LIMIT)
        assert not target.exists(), f"body unpickled after flipping byte {position}"
    # And the untampered envelope does carry a live payload (so the check above means something)
    loads(unseal(SECRET, blob)[1], what="x", limit=LIMIT)
    assert target.is_dir()


def test_an_envelope_signed_with_another_secret_is_refused():
    blob = seal(b"another-secret-of-32-characters!", {"job": "j1"}, b"body")

    with pytest.raises(SignatureError, match="does not match the shared secret"):
        unseal(SECRET, blob)


def test_bytes_that_are_not_an_envelope_are_refused():
    for blob in (b"", b"RHC", pickle.dumps([1, 2, 3]), b"XYZ" + bytes(60)):
        with pytest.raises(SignatureError, match="not an rhc envelope"):
            unseal(SECRET, blob)


def test_an_envelope_of_another_format_version_is_refused():
    blob = bytearray(seal(SECRET, {"job": "j1"}))
    blob[len(MAGIC) - 1] = 99

    with pytest.raises(SignatureError, match="format 99 is not supported"):
        unseal(SECRET, bytes(blob))


def test_a_refused_envelope_keeps_its_raw_bytes_for_inspection():
    blob = seal(b"another-secret-of-32-characters!", {"job": "j1"}, b"body")

    with pytest.raises(SignatureError) as caught:
        unseal(SECRET, blob)
    assert caught.value.data == blob


def test_a_small_object_round_trips_uncompressed():
    value = {"numbers": [1, 2.5, None], "text": "é"}

    body = dumps(value, what="argument 0", limit=LIMIT)

    assert body[:1] == b"\x00"
    assert loads(body, what="argument 0", limit=LIMIT) == value


def test_a_large_compressible_object_round_trips_compressed():
    value = ["the same line of text\n"] * 50_000

    body = dumps(value, what="argument 0", limit=LIMIT)

    assert body[:1] == b"\x01"
    assert len(body) < len(pickle.dumps(value, protocol=5)) / 10
    assert loads(body, what="argument 0", limit=LIMIT) == value


def test_a_payload_over_the_limit_names_what_and_the_sizes():
    incompressible = os.urandom(3 * 2**20)

    with pytest.raises(PayloadTooLargeError) as caught:
        dumps(incompressible, what="argument 17", limit=2**20)
    message = str(caught.value)
    assert "argument 17" in message
    assert "3.0 MB" in message and "1.0 MB" in message
    assert isinstance(caught.value, SerializationError)


def test_an_unpicklable_object_raises_a_serialization_error_naming_it():
    with pytest.raises(SerializationError) as caught:
        dumps({"lock": threading.Lock()}, what="the function f", limit=LIMIT)
    assert type(caught.value) is SerializationError
    assert "the function f cannot be serialized" in str(caught.value)
    assert "lock" in str(caught.value)


def test_a_result_of_a_class_made_on_the_worker_travels_by_value():
    # Given classes the standard pickler cannot name: one local to a function, and one whose
    # name leads to another class (as a class shipped by value may, on a worker)
    class Local:
        def __init__(self, x):
            self.x = x

    impostor = type("OrderedDict", (), {"__module__": "collections"})
    values = [Local(3), impostor()]

    # When a worker sends them back
    loaded = loads(dumps_result(values, what="results", limit=LIMIT), what="r", limit=LIMIT)

    # Then they arrive as themselves, not as what their names lead to
    assert loaded[0].x == 3
    assert type(loaded[1]).__name__ == "OrderedDict"
    assert not isinstance(loaded[1], collections.OrderedDict)


def test_a_result_no_pickler_takes_raises_a_serialization_error_naming_it():
    with pytest.raises(SerializationError, match="the result of task 3 cannot be serialized"):
        dumps_result(threading.Lock(), what="the result of task 3", limit=LIMIT)
    with pytest.raises(PayloadTooLargeError, match="results"):
        dumps_result(os.urandom(2**20), what="results", limit=2**19)


def test_a_malformed_body_raises_a_serialization_error_naming_it():
    with pytest.raises(SerializationError, match="cannot load result 4"):
        loads(b"\x07whatever", what="result 4", limit=LIMIT)
    with pytest.raises(SerializationError, match="cannot load result 5"):
        loads(b"\x01not an lz4 frame", what="result 5", limit=LIMIT)


def test_content_digest_is_stable_per_task_key_and_data():
    key, other = TaskKey(new_task_key()), TaskKey(new_task_key())
    data = b"a pickled function"

    digest = key.content_digest(data)

    assert digest == key.content_digest(data)
    assert len(digest) == 32 and int(digest, 16) >= 0
    assert digest != other.content_digest(data)
    assert digest != key.content_digest(data + b"!")


def test_an_envelope_signed_with_the_task_key_verifies_with_its_public_half():
    key = TaskKey(new_task_key())

    blob = sign(key, {"job": "j1"}, b"body")

    assert verify(TrustedKeys([key.public]), blob) == ({"job": "j1"}, b"body")


def test_a_tampered_task_envelope_is_refused_before_anything_is_unpickled(tmp_path):
    key = TaskKey(new_task_key())
    target = tmp_path / "unpickled"
    blob = bytearray(
        sign(key, {"job": "j1"}, dumps(MakesDirectory(str(target)), what="x", limit=LIMIT))
    )
    blob[-3] ^= 0xFF

    with pytest.raises(SignatureError, match="does not match task key"):
        verify(TrustedKeys([key.public]), bytes(blob))
    assert not target.exists()


def test_a_task_envelope_of_an_untrusted_key_is_refused_naming_both_keys():
    key, stranger = TaskKey(new_task_key()), TaskKey(new_task_key())

    with pytest.raises(SignatureError) as caught:
        verify(TrustedKeys([key.public]), sign(stranger, {"job": "j1"}))
    assert stranger.key_id.hex() in str(caught.value) and key.key_id.hex() in str(caught.value)


def test_whoever_holds_the_shared_secret_cannot_make_a_task_envelope():
    # Given a worker's secret, an attacker seals a "task" with it
    key = TaskKey(new_task_key())
    forged = seal(SECRET, {"job": "j1"}, b"body")

    # Then a reader that wants the task key's signature refuses it, and the other way round
    with pytest.raises(SignatureError, match="not signed with the notebook's task key"):
        verify(TrustedKeys([key.public]), forged)
    with pytest.raises(SignatureError, match="not signed with a shared-secret HMAC"):
        unseal(SECRET, sign(key, {"job": "j1"}))


def test_during_a_rotation_the_previous_key_is_trusted_and_after_it_not():
    old, new = TaskKey(new_task_key()), TaskKey(new_task_key())
    signed_before = sign(old, {"job": "j1"})

    assert verify(TrustedKeys([new.public, old.public]), signed_before)[0] == {"job": "j1"}
    with pytest.raises(SignatureError, match="does not trust"):
        verify(TrustedKeys([new.public]), signed_before)


def test_a_key_of_the_wrong_kind_or_length_is_refused_with_the_fix():
    private = new_task_key()
    with pytest.raises(ValueError, match="task_public_key must start with 'ed25519-public:'"):
        TrustedKeys([TaskKey(private).public.__class__(private)])
    with pytest.raises(ValueError, match="must hold 32 bytes"):
        TaskKey("ed25519-private:" + "QUFB")


def test_a_task_key_never_shows_its_private_half():
    text = new_task_key()

    assert text.split(":", 1)[1] not in repr(TaskKey(text))


def test_the_previous_key_is_trusted_until_its_time_and_not_after():
    old, new = TaskKey(new_task_key()), TaskKey(new_task_key())
    signed_before = sign(old, {"job": "j1"})
    later = TrustedKeys([new.public, old.public], until={old.key_id: time.time() + 60})
    over = TrustedKeys([new.public, old.public], until={old.key_id: time.time() - 1})

    assert verify(later, signed_before)[0] == {"job": "j1"}
    assert old.key_id.hex() in later.ids
    with pytest.raises(SignatureError, match="the previous one, trusted only until"):
        verify(over, signed_before)
    assert over.ids == [new.key_id.hex()]
