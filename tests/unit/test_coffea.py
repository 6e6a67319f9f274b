# SPDX-License-Identifier: BSD-3-Clause
"""The pure parts of rhc.coffea: what a task gives, how outcomes merge, how an exception
travels with its causes, and how the record of a run keeps the last run."""

from __future__ import annotations

import pickle
import warnings
from collections import Counter

import cloudpickle
import coffea
import hist
import pytest
from coffea.processor import set_accumulator
from coffea.processor.executor import FileMeta, WorkItem

from rhc.coffea import RemoteExceptionError, RunRecord
from rhc.coffea.executor import data_key
from rhc.coffea.record import PREPROCESSING, PROCESSING, Phase
from rhc.coffea.task import MAX_WARNINGS, CoffeaTask, ItemFailure, Outcome, Warned, merge
from rhc.errors import VersionMismatchError
from rhc.nanoaod.timeline import TaskSpan


def chunk(start: int, stop: int, filename: str = "a.root") -> WorkItem:
    return WorkItem("DY", filename, "Events", start, stop, b"")


def counted(values: list[float]) -> dict:
    histogram = hist.Hist.new.Reg(10, 0, 10, name="x").Double()
    histogram.fill(values)
    return {"x": histogram, "cutflow": {"all": len(values)}}


def task_of(function: object, version: str = coffea.__version__) -> CoffeaTask:
    # as the notebook sends it: pickled, to be loaded on a worker
    return pickle.loads(cloudpickle.dumps(CoffeaTask(cloudpickle.dumps(function), version)))


def warn_and_count(item: WorkItem) -> dict:
    warnings.warn(f"chunk {item.entrystart}", UserWarning, stacklevel=1)
    return counted([item.entrystart])


def test_a_task_gives_the_items_output_its_span_and_its_warnings():
    # Given coffea's function, as a worker loads it
    task = task_of(warn_and_count)
    # When it runs on an item
    outcome = task((0, chunk(3, 8)))
    # Then the outcome holds the output, a span of the item's events, and the warning raised
    assert outcome.value["cutflow"] == {"all": 1} and outcome.failure is None
    (span,) = outcome.spans
    assert span.worker == "local" and span.events == 5 and span.finished >= span.started
    (warned,) = outcome.warned
    assert warned.category is UserWarning and warned.message == "chunk 3"


def test_outcomes_merge_with_coffeas_accumulate_keeping_the_first_failure():
    # Given three outcomes, two failed
    first = Outcome(
        counted([1, 2]), [TaskSpan("w0", 0, 1)], Counter({Warned(UserWarning, "a", "f", 1): 1})
    )
    late = Outcome(failure=ItemFailure(7, "w1", (), ""))
    early = Outcome(counted([3]), [TaskSpan("w1", 0, 2)], failure=ItemFailure(2, "w1", (), ""))
    # When they merge, in any order
    merged = merge(merge(first, late), early)
    # Then values accumulate as coffea's do, spans and warnings add up, the first failure stays
    assert merged.value["x"].sum() == 3 and merged.value["cutflow"] == {"all": 3}
    assert len(merged.spans) == 2
    assert merged.failure.index == 2


def test_merging_sets_accumulates_them_as_preprocessing_does():
    merged = merge(Outcome(set_accumulator({1})), Outcome(set_accumulator({2})))
    assert merged.value == {1, 2}
    assert merge(Outcome(), Outcome()).value is None


def test_merged_warnings_are_kept_up_to_a_bound_with_their_counts():
    outcome = Outcome()
    for index in range(MAX_WARNINGS + 10):
        warned = Warned(UserWarning, f"w{index}", "f", 1)
        merge(outcome, Outcome(warned=Counter({warned: 2})))
    merge(outcome, Outcome(warned=Counter({Warned(UserWarning, "w0", "f", 1): 1})))
    assert len(outcome.warned) == MAX_WARNINGS
    assert outcome.warned[Warned(UserWarning, "w0", "f", 1)] == 3


def fail_opening(item: WorkItem) -> dict:
    try:
        raise FileNotFoundError(2, "No such file or directory", item.filename)
    except OSError as exc:
        raise Exception(f"Failed to open file: {item!r}") from exc


def test_an_exception_travels_with_its_type_its_causes_and_where_it_was_raised():
    # Given an item that raises coffea's way: an Exception from an OSError
    task = task_of(fail_opening)
    item = chunk(0, 10, "missing.root")
    outcome = task((4, item))
    # When the notebook rebuilds it from what travelled
    travelled = pickle.loads(cloudpickle.dumps(outcome))
    error = travelled.failure.exception(item)
    # Then it is the same exception, its cause linked, with a note of where and what raised it
    assert type(error) is Exception and "Failed to open file" in str(error)
    assert isinstance(error.__cause__, FileNotFoundError)
    assert error.__cause__.filename == "missing.root"
    (note,) = error.__notes__
    assert "raised on rhc worker local by item WorkItem(" in note
    assert "fail_opening" in note and "FileNotFoundError" in note
    # And nothing of the item was counted
    assert travelled.value is None and travelled.spans[0].events == 0


class _NeedsTwoArguments(Exception):
    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def raise_unloadable(item: object) -> None:
    raise _NeedsTwoArguments("chunk", "broken")


def test_an_exception_that_cannot_be_unpickled_arrives_as_a_remote_exception_error():
    outcome = task_of(raise_unloadable)((0, chunk(0, 1)))
    error = outcome.failure.exception(chunk(0, 1))
    assert isinstance(error, RemoteExceptionError)
    assert "_NeedsTwoArguments: chunk: broken" in str(error)


def raise_value_error(item: WorkItem) -> dict:
    raise ValueError("bad")


def test_after_a_failure_a_worker_spends_nothing_on_the_items_left():
    # Given a task whose first item failed on this worker
    task = task_of(raise_value_error)
    assert task((0, chunk(0, 1))).failure is not None
    # When the next item comes, then it does not run (no span): the run fails anyway
    assert task((1, chunk(1, 2))) == Outcome()


def test_a_task_from_a_notebook_with_another_coffea_refuses_to_run():
    task = task_of(warn_and_count, version="2025.1.0")
    with pytest.raises(VersionMismatchError) as refused:
        task((0, chunk(0, 1)))
    message = str(refused.value)
    assert f"has coffea {coffea.__version__}" in message
    assert "notebook with coffea 2025.1.0" in message


def phase(name: str) -> Phase:
    return Phase(name, "job", 1, 1, 0.5, (TaskSpan("w0", 0.0, 0.5),))


def test_a_record_keeps_the_phases_of_the_last_run_only():
    record = RunRecord()
    record.add(phase(PREPROCESSING))
    record.add(phase(PROCESSING))
    assert [p.name for p in record.phases] == [PREPROCESSING, PROCESSING]
    # a run whose files' metadata coffea cached starts at processing
    record.add(phase(PROCESSING))
    assert [p.name for p in record.phases] == [PROCESSING]
    record.add(phase(PREPROCESSING))
    assert [p.name for p in record.phases] == [PREPROCESSING]
    assert record.partials == 1 and record.summary().tasks == 1


def test_a_files_metadata_and_its_chunks_share_one_affinity_key():
    meta = FileMeta("DY", "a.root", "Events")
    assert data_key(meta) == data_key(chunk(0, 10)) == data_key(chunk(10, 20))
    assert data_key(chunk(0, 10, "b.root")) != data_key(chunk(0, 10))


def test_each_run_of_the_same_function_is_a_task_of_its_own():
    # Given two runs of one function: a worker keeps the tasks it loaded by their digest, and a
    # task that saw an item fail skips the items left
    first = CoffeaTask(cloudpickle.dumps(raise_value_error), coffea.__version__)
    second = CoffeaTask(cloudpickle.dumps(raise_value_error), coffea.__version__)
    # Then they pickle differently: the failure of the first cannot skip the second's items
    assert cloudpickle.dumps(first) != cloudpickle.dumps(second)
