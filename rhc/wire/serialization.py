# SPDX-License-Identifier: BSD-3-Clause
"""Pickling, compression and signed envelopes: the only bytes that cross Redis.

An envelope is::

    b"RHC" | format version (1 byte) | scheme (1 byte) | signature | header length (4 bytes, big
          endian) | header (JSON) | body

with one of two schemes. "h": an HMAC-SHA256 (32 bytes) keyed with the shared secret, for what
workers send (results). "e": a task key id (8 bytes) and an Ed25519 signature (64 bytes), for
what the notebook side sends (tasks, functions, control notices, job records): workers verify
those with public keys and cannot make them. The signature covers everything after it, so
header and body are both authenticated, and a reader demands one scheme: an HMAC envelope is
never taken for a task. Nothing in an envelope is parsed or unpickled before its signature
checks out.

A body made by dumps() is one flag byte (0: raw pickle, 1: lz4 frame that declares its size)
followed by the data. The payload limit bounds the pickle, compressed or not: loads() refuses a
body whose pickle is larger, or whose frame declares more (or no size), before decompressing it,
so a small envelope cannot make its reader allocate gigabytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import struct

import cloudpickle
import lz4.frame

from rhc.errors import PayloadTooLargeError, SerializationError, SignatureError
from rhc.wire.signing import KEY_ID_SIZE, SIGNATURE_SIZE, TaskKey, TrustedKeys

FORMAT_VERSION = 2
MAGIC = b"RHC" + bytes([FORMAT_VERSION])
PICKLE_PROTOCOL = 5
COMPRESS_ABOVE = 4096
_MAC_SIZE = 32
_LENGTH = struct.Struct(">I")
_HMAC, _ED25519 = b"h", b"e"
_PREFIX = len(MAGIC) + 1
_RAW, _LZ4 = b"\x00", b"\x01"


def dumps(obj: object, *, what: str, limit: int) -> bytes:
    """Pickle obj with cloudpickle, compressing large payloads with lz4.

    Parameters:
      what: how to name obj in an error ("argument 17", "the function f").
      limit: the largest pickle accepted, in bytes.

    Raises:
      SerializationError: obj cannot be pickled.
      PayloadTooLargeError: the pickle exceeds limit.
    """
    try:
        data = cloudpickle.dumps(obj, protocol=PICKLE_PROTOCOL)
    except Exception as exc:
        raise SerializationError(
            f"{what} cannot be serialized: {type(exc).__name__}: {exc}. What travels to or from "
            "workers must be picklable: create locks, open files and connections inside the "
            "function rather than capturing them"
        ) from exc
    return _body(data, what, limit)


def dumps_result(obj: object, *, what: str, limit: int) -> bytes:
    """dumps() for what a worker sends back: pickled by the standard pickler when it can be,
    by cloudpickle only when it cannot (a class or function made on the worker). The standard
    pickler refers to classes and functions by name only when that name gives the very same
    object, so the notebook loads both alike; it takes half of cloudpickle's time on a batch
    of small results, once per batch on a task's way (15 against 35 µs here).

    Raises:
      SerializationError, PayloadTooLargeError: as dumps().
    """
    try:
        data = pickle.dumps(obj, protocol=PICKLE_PROTOCOL)
    except Exception:  # what the standard pickler cannot do, cloudpickle may
        return dumps(obj, what=what, limit=limit)
    return _body(data, what, limit)


def _body(data: bytes, what: str, limit: int) -> bytes:
    """A pickle as a body: refused over limit, lz4-compressed when large."""
    if len(data) > limit:
        raise PayloadTooLargeError(
            f"{what} serializes to {_megabytes(len(data))}, over the {_megabytes(limit)} payload "
            "limit (max_payload_bytes): pass a path or URL to the data rather than the data, "
            "or raise the limit"
        )
    return _LZ4 + lz4.frame.compress(data) if len(data) > COMPRESS_ABOVE else _RAW + data


def loads(body: bytes, *, what: str, limit: int) -> object:
    """Unpickle a body made by dumps(). Call only on bytes whose envelope was verified.

    Parameters:
      limit: the largest pickle accepted, in bytes (max_payload_bytes).

    Raises:
      PayloadTooLargeError: the pickle is, or declares it is, larger than limit; nothing was
        decompressed.
      SerializationError: the body is malformed or refers to code that cannot be imported here.
    """
    flag, data = body[:1], body[1:]
    if flag not in (_LZ4, _RAW):
        raise SerializationError(f"cannot load {what}: unknown body flag {flag!r}")
    try:
        if flag == _LZ4:
            data = _decompress(data, what=what, limit=limit)
        elif len(data) > limit:
            raise _refused(what, len(data), limit)
        return pickle.loads(data)
    except PayloadTooLargeError:
        raise
    except Exception as exc:
        hint = ""
        if isinstance(exc, ImportError):  # pickles refer to modules by name: both sides need them
            hint = (
                ". A module it needs is missing here: install it both in the notebook's and in "
                "the workers' environment, put it on a PYTHONPATH both share, or ship a module "
                "of your own by value with cloudpickle.register_pickle_by_value(module)"
            )
        raise SerializationError(f"cannot load {what}: {type(exc).__name__}: {exc}{hint}") from exc


def _decompress(frame: bytes, *, what: str, limit: int) -> bytes:
    """An lz4 frame's content, decompressed only if the size it declares is within limit, and
    never beyond that size, whatever the frame holds."""
    declared = lz4.frame.get_frame_info(frame)["content_size"]
    if not declared or declared > limit:
        raise _refused(what, declared, limit)
    decompressor = lz4.frame.LZ4FrameDecompressor()
    data = decompressor.decompress(frame, max_length=declared)
    if not decompressor.eof or len(data) != declared:
        raise SerializationError(f"cannot load {what}: its lz4 frame holds more than it declares")
    return data


def _refused(what: str, size: int, limit: int) -> PayloadTooLargeError:
    declared = f"declares {_megabytes(size)}" if size else "declares no size"
    return PayloadTooLargeError(
        f"refused {what} without loading it: it {declared}, and this process accepts at most "
        f"{_megabytes(limit)} (max_payload_bytes)"
    )


def seal(secret: bytes, header: dict, body: bytes = b"") -> bytes:
    """Wrap header and body in an envelope HMAC-signed with the shared secret."""
    signed = _signed_part(header, body)
    return MAGIC + _HMAC + hmac.digest(secret, signed, hashlib.sha256) + signed


def unseal(secret: bytes, blob: bytes) -> tuple[dict, bytes]:
    """Verify an HMAC envelope and return its header and body.

    Raises:
      SignatureError: the envelope is malformed, unsigned, signed otherwise, or with another
        secret.
    """
    signature = _split(blob, _HMAC, _MAC_SIZE)
    signed = blob[_PREFIX + _MAC_SIZE :]
    if not hmac.compare_digest(signature, hmac.digest(secret, signed, hashlib.sha256)):
        raise SignatureError("signature does not match the shared secret", blob)
    return _parse(signed, blob)


def sign(key: TaskKey, header: dict, body: bytes = b"") -> bytes:
    """Wrap header and body in an envelope signed with the notebook side's task key."""
    signed = _signed_part(header, body)
    return MAGIC + _ED25519 + key.key_id + key.sign(signed) + signed


def verify(trusted: TrustedKeys, blob: bytes) -> tuple[dict, bytes]:
    """Verify an envelope signed with a task key and return its header and body.

    Raises:
      SignatureError: the envelope is malformed, unsigned, HMAC-signed (made with a worker's
        secret), or not signed by a trusted task key.
    """
    identified = _split(blob, _ED25519, KEY_ID_SIZE + SIGNATURE_SIZE)
    key_id, signature = identified[:KEY_ID_SIZE], identified[KEY_ID_SIZE:]
    signed = blob[_PREFIX + KEY_ID_SIZE + SIGNATURE_SIZE :]
    trusted.verify(key_id, signature, signed, blob)
    return _parse(signed, blob)


def _signed_part(header: dict, body: bytes) -> bytes:
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    return _LENGTH.pack(len(header_bytes)) + header_bytes + body


def _split(blob: bytes, scheme: bytes, signature_size: int) -> bytes:
    """The signature of an envelope of the scheme demanded."""
    if len(blob) < _PREFIX or blob[:3] != MAGIC[:3]:
        raise SignatureError("not an rhc envelope (unsigned or corrupt payload)", blob)
    if blob[3] != FORMAT_VERSION:
        raise SignatureError(
            f"envelope format {blob[3]} is not supported by this rhc (format {FORMAT_VERSION})",
            blob,
        )
    if blob[4:5] != scheme:
        expected = "the notebook's task key" if scheme == _ED25519 else "a shared-secret HMAC"
        raise SignatureError(f"not signed with {expected}: refused", blob)
    if len(blob) < _PREFIX + signature_size + _LENGTH.size:
        raise SignatureError("not an rhc envelope (truncated)", blob)
    return blob[_PREFIX : _PREFIX + signature_size]


def _parse(signed: bytes, blob: bytes) -> tuple[dict, bytes]:
    (length,) = _LENGTH.unpack_from(signed)
    header_end = _LENGTH.size + length
    try:
        header = json.loads(signed[_LENGTH.size : header_end])
    except ValueError as exc:  # signed by someone holding the key, yet malformed: a bug
        raise SignatureError(f"signed envelope has a malformed header: {exc}", blob) from exc
    if not isinstance(header, dict):
        raise SignatureError("signed envelope's header is not an object", blob)
    return header, signed[header_end:]


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def secret_id(secret: bytes) -> str:
    """A name for the shared secret that reveals nothing of it: workers advertise theirs, so a
    notebook with another secret is told before it sends anything."""
    return hmac.digest(secret, b"rhc secret id", hashlib.sha256).hex()[:16]
