# SPDX-License-Identifier: BSD-3-Clause
"""Status tables: aligned in a terminal, escaped in HTML, incompatible workers marked."""

from __future__ import annotations

import time

from rhc.manager.status import Table, WorkerTable
from rhc.wire.protocol import WorkerInfo

COMPAT = "py3.11-cloudpickle3-format1"


def worker(name, compat=COMPAT, state="idle"):
    return WorkerInfo(
        name=name,
        host="node1",
        pid=1,
        compat=compat,
        versions={"python": "3.11.7", "cloudpickle": "3.0.0", "rhc": "0.1.0", "format": "1"},
        started=time.time(),
        heartbeat=time.time(),
        state=state,
    )


def test_a_table_aligns_its_columns_as_text():
    table = Table(("name", "n", "note"), [("a", 1, "x"), ("longer-name", None, "y"), ("b", 22, "")])

    text = str(table)

    # Then each column is as wide as its widest cell, None shows empty, no line ends in spaces
    assert text.splitlines() == [
        "name         n   note",
        "-----------  --  ----",
        "a            1   x",
        "longer-name      y",
        "b            22",
    ]
    assert len(table) == 3


def test_a_worker_table_shows_as_its_aligned_text_at_a_python_prompt():
    # Given the table m.workers() returns
    table = WorkerTable([worker("w1", state="busy")], compat=COMPAT)
    # When a plain Python prompt echoes it (repr), not Jupyter (HTML)
    shown = repr(table)
    # Then it reads as the text table, not as <rhc...WorkerTable object at ...>
    assert shown == str(table)
    assert shown.splitlines()[0].startswith("name")
    assert "w1" in shown.splitlines()[2] and "busy" in shown.splitlines()[2]


def test_a_table_escapes_html_in_its_cells():
    table = Table(("<b>name</b>",), [("<script>alert('x')</script> & co",)])

    html = table._repr_html_()

    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "&amp; co" in html and "&lt;b&gt;name" in html
    assert html.count("<tr>") == 2


def test_a_worker_of_another_compat_tag_is_marked_incompatible():
    table = WorkerTable(
        [worker("w-new"), worker("w-old", compat="py3.12-cloudpickle3-format1")], compat=COMPAT
    )

    states = {row[0]: row[table.headers.index("state")] for row in table.rows}

    assert states == {"w-new": "idle", "w-old": "idle (incompatible)"}
    assert "idle (incompatible)" in str(table)


def test_without_a_compat_tag_no_worker_is_marked():
    table = WorkerTable([worker("w-old", compat="py3.12-cloudpickle3-format1")])

    assert table.rows[0][table.headers.index("state")] == "idle"
    assert table.workers[0].name == "w-old"
