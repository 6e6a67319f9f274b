# SPDX-License-Identifier: BSD-3-Clause
"""The exceptions rhc raises, and what a failed task's error tells the user."""

from __future__ import annotations

import inspect
import pickle

from rhc import errors
from rhc.errors import ARGUMENT_UNAVAILABLE, RhcError, TaskError

TRACEBACK = "Traceback (most recent call last):\n  File \"analysis.py\", line 3\nKeyError: 'pt'\n"


def task_error(argument=("file.root", 3), **overrides):
    values = {
        "task": 17,
        "argument": argument,
        "kind": "exception",
        "error_type": "KeyError",
        "message": "'pt'",
        "remote_traceback": TRACEBACK,
        "worker": "node1-1234.0",
        **overrides,
    }
    return TaskError(**values)


def test_every_rhc_exception_derives_from_rhc_error():
    exceptions = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == errors.__name__
    ]

    assert len(exceptions) >= 15
    assert [cls for cls in exceptions if not issubclass(cls, RhcError)] == []
    assert issubclass(errors.ResultTimeoutError, TimeoutError)


def test_a_task_error_message_says_which_task_failed_how_and_where():
    message = str(task_error())

    assert "task 17" in message
    assert "('file.root', 3)" in message
    assert "node1-1234.0" in message
    assert "KeyError: 'pt'" in message
    assert "Remote traceback:" in message and 'File "analysis.py", line 3' in message


def test_a_task_error_without_a_traceback_has_no_traceback_section():
    assert "Remote traceback" not in str(task_error(remote_traceback=""))


def test_a_long_argument_repr_is_truncated():
    message = str(task_error(argument="x" * 10_000))

    assert "x" * 190 in message
    assert "x" * 300 not in message
    assert "...)" in message


def test_a_task_error_survives_a_pickle_round_trip():
    error = task_error(argument={"file": "a.root", "entries": [1, 2]}, kind="timeout")

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is TaskError
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)


def test_a_broken_argument_repr_does_not_break_the_task_error():
    class Broken:
        def __repr__(self):
            raise RuntimeError("repr exploded")

    error = task_error(argument=Broken())

    message = str(error)
    assert "unrepresentable Broken" in message and "repr exploded" in message
    assert "KeyError: 'pt'" in message


def test_an_unavailable_argument_says_so():
    assert "argument not available" in str(task_error(argument=ARGUMENT_UNAVAILABLE))
