# SPDX-License-Identifier: BSD-3-Clause
"""The options of a job and of a NanoAOD run: declared once, checked once, named in errors."""

from __future__ import annotations

import operator

import pytest

from rhc.errors import ArgumentError
from rhc.manager import JobOptions
from rhc.nanoaod import RunOptions
from rhc.nanoaod.runner import JOB_OPTIONS


def test_job_options_come_from_the_keywords_a_caller_was_given():
    options = JobOptions.parse({"timeout": 5, "reduce": operator.add}, caller="submit")
    assert options.timeout == 5 and options.reduce is operator.add
    assert options.max_attempts(default=3) == 3
    assert JobOptions(retries=0).max_attempts(default=3) == 1


def test_a_misspelt_job_option_is_named_with_the_ones_that_exist():
    with pytest.raises(ArgumentError) as raised:
        JobOptions.parse({"retires": 2}, caller="remote_map")
    message = str(raised.value)
    assert message.startswith("remote_map() got unknown option(s) retires;")
    assert all(name in message for name in JobOptions.names())


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ({"timeout": 0}, "timeout must be positive"),
        ({"retries": -1}, "retries must be 0 or more"),
        ({"reduce": "sum"}, "reduce must be callable"),
    ],
)
def test_a_bad_job_option_value_says_what_it_takes(given, complaint):
    with pytest.raises(ArgumentError, match=complaint):
        JobOptions(**given)


def test_a_run_takes_its_own_options_and_hands_the_job_its_timeout_and_retries():
    plan, job = RunOptions.split(
        {"chunksize": 10, "tree": "Events", "timeout": 60}, caller="run", job_options=JOB_OPTIONS
    )
    assert plan == RunOptions(chunksize=10, tree="Events")
    assert job == {"timeout": 60}


def test_a_run_refuses_what_it_sets_itself_and_what_does_not_exist():
    for name in ("reduce", "affinity", "chunksise"):
        with pytest.raises(ArgumentError, match=f"run\\(\\) got unknown option\\(s\\) {name};"):
            RunOptions.split({name: 1}, caller="run", job_options=JOB_OPTIONS)
    with pytest.raises(ArgumentError, match="run_locally"):
        RunOptions.split({"timeout": 60}, caller="run_locally")
