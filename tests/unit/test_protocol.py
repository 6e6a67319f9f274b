# SPDX-License-Identifier: BSD-3-Clause
"""Key names, compatibility classes, and the messages that cross Redis."""

from __future__ import annotations

import json

import pytest

from rhc.errors import SignatureError
from rhc.wire.keys import Keys
from rhc.wire.protocol import (
    CANCEL,
    CANCELLED,
    PARTIAL,
    ControlMessage,
    Failure,
    JobRecord,
    JobStatus,
    ResultMessage,
    TaskBatch,
    TaskEntry,
    WorkerInfo,
    compat_tag,
    incompatibility,
    task_entry,
    versions,
)
from rhc.wire.serialization import seal, unseal

SECRET = b"a-shared-secret-of-32-characters"


def advertised(python="3.11.7", cloudpickle="3.0.0", rhc="0.1.0", format="1"):
    return {"python": python, "cloudpickle": cloudpickle, "rhc": rhc, "format": format}


def through_json(header: dict) -> dict:
    """What a header becomes after a trip through a sealed envelope."""
    return json.loads(json.dumps(header))


def test_every_key_lives_under_the_namespace_prefix():
    keys = Keys("alice")
    built = [
        keys.task_stream("py3.11-cloudpickle3-format1"),
        keys.worker_stream("w1"),
        keys.alive("w1"),
        keys.workers,
        keys.reaper_lock,
        keys.function("abc123"),
        keys.function_stats,
        keys.jobs,
        keys.job("j1"),
        keys.results("j1"),
        keys.control,
    ]

    assert keys.prefix == "rhc:alice:"
    assert all(key.startswith("rhc:alice:") for key in built)
    assert len(set(built)) == len(built)
    assert keys.results("j1") == "rhc:alice:job:j1:results"
    assert keys.alive("w1") != Keys("bob").alive("w1")


def test_the_compat_tag_ignores_patch_versions_and_cloudpickle_minors():
    mine = compat_tag(advertised(python="3.11.7", cloudpickle="3.0.0"))

    assert compat_tag(advertised(python="3.11.2", cloudpickle="3.1.1")) == mine
    assert compat_tag(advertised(python="3.12.7")) != mine
    assert compat_tag(advertised(cloudpickle="2.2.1")) != mine
    assert compat_tag(advertised(format="2")) != mine
    assert compat_tag(advertised(rhc="9.9.9")) == mine


def test_incompatibility_names_both_python_versions():
    mine, theirs = advertised(python="3.11.7"), advertised(python="3.12.1")

    reason = incompatibility(mine, theirs)

    assert reason is not None
    assert "Python 3.12.1" in reason and "Python 3.11.7" in reason


def test_compatible_versions_have_no_incompatibility():
    assert incompatibility(advertised(python="3.11.7"), advertised(python="3.11.0")) is None
    assert incompatibility(versions(), versions()) is None


def test_a_task_batch_round_trips_through_its_header():
    batch = TaskBatch(
        namespace="alice",
        job="j1",
        batch=4,
        first=40,
        count=10,
        function="abc",
        max_attempts=3,
        result_ttl=60.0,
        not_after=1.8e9,
        timeout=None,
        reduce=True,
    )

    assert TaskBatch.from_header(through_json(batch.header())) == batch
    assert batch.tasks == range(40, 50)


def test_a_result_message_round_trips_through_its_header():
    message = ResultMessage(
        kind=PARTIAL,
        job="j1",
        worker="w1",
        batches=(1, 2),
        spans=((0, 5), (10, 3)),
        failures=(Failure(task=11, kind="exception", error_type="ValueError", message="bad"),),
        started=1.5,
        finished=2.5,
        has_value=False,
    )

    decoded = ResultMessage.from_header(through_json(message.header()))

    assert decoded == message
    assert decoded.task_count == 8


def test_a_job_record_round_trips_through_the_fields_redis_returns():
    for total in (None, 0, 1000):
        record = JobRecord(
            function="abc",
            compat="py3.11-cloudpickle3-format1",
            owner="alice@host",
            created=1700000000.123456,
            reduce=True,
            total=total,
            submitted=12,
            done=7,
            expected=total,
        )
        fields = record.to_fields()
        assert all(isinstance(value, str) for value in fields.values())
        # Redis hands back bytes keys and values
        returned = {key.encode(): value.encode() for key, value in fields.items()}
        assert JobRecord.from_fields(returned) == record


def test_a_job_record_without_counters_reads_as_zero():
    fields = {b"function": b"f", b"compat": b"c", b"owner": b"o", b"created": b"1.0"}
    fields |= {b"reduce": b"0", b"state": b"running"}

    record = JobRecord.from_fields(fields)

    assert (record.total, record.submitted, record.done, record.reduce) == (None, 0, 0, False)


def test_worker_info_round_trips_through_json():
    info = WorkerInfo(
        name="w1",
        host="node1",
        pid=123,
        compat="py3.11-cloudpickle3-format1",
        versions=advertised(),
        started=10.0,
        condor_id="1234.7",
        state="busy",
        job="j1",
        task=3,
        extra={"site": "T2"},
    )

    assert WorkerInfo.decode(info.encode()) == info
    assert WorkerInfo.decode(info.encode().encode()) == info


def test_a_control_message_and_a_job_status_round_trip_through_their_headers():
    message = ControlMessage(op=CANCEL, job="j1", namespace="alice")
    status = JobStatus("alice", "j1", "abc", CANCELLED, total=7, reason="KeyError: 'x'")

    assert ControlMessage.from_header(through_json(message.header())) == message
    assert JobStatus.from_header(through_json(status.header())) == status


def test_a_task_entry_parses_back_from_the_fields_redis_returns():
    sealed = seal(SECRET, {"job": "j1"}, b"args")
    fields = task_entry("j1", 4, sealed, redeliveries=2)
    returned = {key.encode(): str(value).encode() for key, value in fields.items()}
    returned[b"m"] = sealed

    entry = TaskEntry.parse("stream", b"1-0", returned)

    assert (entry.job, entry.batch, entry.redeliveries) == ("j1", 4, 2)
    assert unseal(SECRET, entry.sealed) == ({"job": "j1"}, b"args")


def test_a_malformed_task_entry_parses_into_one_that_fails_to_unseal():
    malformed = [
        {},
        {b"job": b"\xff\xfe", b"batch": b"not a number", b"m": b"garbage"},
        {b"job": b"j1", b"redeliveries": b"1"},
    ]
    for fields in malformed:
        entry = TaskEntry.parse("stream", b"1-0", fields)
        assert entry.entry_id == b"1-0"
        with pytest.raises(SignatureError):
            unseal(SECRET, entry.sealed)
