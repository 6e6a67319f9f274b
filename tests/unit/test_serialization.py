# SPDX-License-Identifier: BSD-3-Clause
"""Signed envelopes and pickled bodies: nothing is parsed or unpickled before its HMAC checks."""

from __future__ import annotations

import os
import pickle
import threading
import tracemalloc

import lz4.frame
import pytest

from rhc.errors import PayloadTooLargeError, SerializationError, SignatureError
from rhc.wire.serialization import MAGIC, content_digest, dumps, loads, seal, unseal
from tests.conftest import lz4_bomb

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


def test_a_malformed_body_raises_a_serialization_error_naming_it():
    with pytest.raises(SerializationError, match="cannot load result 4"):
        loads(b"\x07whatever", what="result 4", limit=LIMIT)
    with pytest.raises(SerializationError, match="cannot load result 5"):
        loads(b"\x01not an lz4 frame", what="result 5", limit=LIMIT)


def test_content_digest_is_stable_per_secret_and_data():
    data = b"a pickled function"

    digest = content_digest(SECRET, data)

    assert digest == content_digest(SECRET, data)
    assert len(digest) == 32 and int(digest, 16) >= 0
    assert digest != content_digest(b"another-secret-of-32-characters!", data)
    assert digest != content_digest(SECRET, data + b"!")


def test_an_lz4_bomb_is_refused_before_it_is_decompressed():
    # Given a body of half a MB whose frame declares 128 MB, and a 1 MB limit
    bomb = lz4_bomb(128 * 2**20)
    assert len(bomb) < 2**20
    # When it is loaded
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLargeError) as caught:
            loads(bomb, what="results of job 1", limit=2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then it is refused by its declared size, and never held decompressed
    message = str(caught.value)
    assert "refused results of job 1 without loading it: it declares 128.0 MB" in message
    assert "at most 1.0 MB (max_payload_bytes)" in message
    assert peak < 8 * 2**20


def test_a_frame_that_declares_no_size_or_a_raw_pickle_over_the_limit_is_refused():
    sizeless = b"\x01" + lz4.frame.compress(bytes(100), store_size=False)
    with pytest.raises(PayloadTooLargeError, match="it declares no size"):
        loads(sizeless, what="x", limit=LIMIT)
    with pytest.raises(PayloadTooLargeError, match=r"declares 2\.0 MB"):
        loads(b"\x00" + bytes(2 * 2**20), what="x", limit=2**20)


def test_the_limit_bounds_the_pickle_however_well_it_compresses():
    with pytest.raises(PayloadTooLargeError, match=r"serializes to 2\.0 MB"):
        dumps(bytes(2 * 2**20), what="x", limit=2**20)
