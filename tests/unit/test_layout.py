# SPDX-License-Identifier: BSD-3-Clause
"""The house rules of the package layout, read from the source: the import contracts bite, every
Redis key is built in rhc.wire, only config and the CLI read the environment, every exception
rhc raises is an RhcError, and no module outgrows one concept."""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from aiohttp import web

from rhc.errors import RhcError
from tests.conftest import REPOSITORY

PACKAGE = REPOSITORY / "rhc"
MAX_LINES = 400


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPOSITORY).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def strings_outside_docstrings(tree: ast.AST) -> Iterator[ast.Constant]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield from () if id(node) in docstrings else (node,)


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's lint-imports, on the package and pyproject.toml in root."""
    run = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    return subprocess.run(
        [sys.executable, "-c", run, "pyproject.toml"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("module", "forbidden", "contract"),
    [
        ("worker/fetcher.py", "import rhc.manager.job", "layered"),
        ("wire/protocol.py", "from rhc import __version__ as _v", "package face"),
        ("nanoaod/reading.py", "import redis", "public faces"),
        ("nanoaod/reading.py", "from rhc.worker.cache import size_of", "public faces"),
        ("manager/results.py", "import rhc.manager.job", "circles"),
    ],
)
def test_a_forbidden_import_breaks_the_import_contracts(tmp_path, module, forbidden, contract):
    # Given a copy of the package with one import the architecture forbids
    shutil.copytree(PACKAGE, tmp_path / "rhc", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPOSITORY / "pyproject.toml", tmp_path)
    with open(tmp_path / "rhc" / module, "a") as source:
        source.write(f"\n{forbidden}\n")
    # When the contracts are checked, then they fail, naming the contract it breaks
    checked = lint_imports(tmp_path)
    assert checked.returncode != 0, checked.stdout
    broken = checked.stdout.split("Broken contracts")[-1]
    assert contract in broken, checked.stdout


def test_the_package_as_it_is_keeps_every_import_contract():
    checked = lint_imports(REPOSITORY)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 broken" in checked.stdout


def test_every_redis_key_is_built_in_rhc_wire():
    # A key looks like rhc:<namespace>:...; "rhc: message" (with a space) is prose.
    found = [
        f"{path.relative_to(REPOSITORY)}:{node.lineno}: {node.value!r}"
        for name, path in modules()
        if not name.startswith("rhc.wire")
        for node in strings_outside_docstrings(ast.parse(path.read_text()))
        if "rhc:" in node.value and not node.value.split("rhc:", 1)[1][:1].isspace()
    ]
    assert not found, found


def test_only_config_and_the_command_line_read_the_environment():
    readers = [
        f"{path.relative_to(REPOSITORY)}:{node.lineno}"
        for name, path in modules()
        if name != "rhc.config" and not name.startswith("rhc.cli")
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"))
        or (isinstance(node, ast.alias) and node.name in ("environ", "getenv"))
    ]
    assert not readers, readers


def raised_classes(module_name: str, path: Path) -> Iterator[tuple[int, object]]:
    """What each `raise X(...)` and `raise X` of a module raises, where X names a class."""
    namespace = vars(importlib.import_module(module_name))
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if not isinstance(target, ast.Name | ast.Attribute):
            continue
        try:
            raised = eval(compile(ast.Expression(target), str(path), "eval"), dict(namespace))
        except (NameError, AttributeError):  # a local variable: an exception caught earlier
            continue
        if isinstance(raised, type):
            yield node.lineno, raised


def test_every_exception_rhc_raises_is_an_rhc_error():
    allowed = {
        # An interrupt that must pass user code's `except Exception` (see its docstring).
        "rhc.worker.runner": (BaseException,),
        # The command line reports usage errors the way click does.
        **{name: (click.ClickException,) for name, _ in modules() if name.startswith("rhc.cli")},
        # The web app answers requests it refuses the way aiohttp does: with their HTTP status.
        **{name: (web.HTTPException,) for name, _ in modules() if name.startswith("rhc.dashboard")},
    }
    others = [
        f"{path.relative_to(REPOSITORY)}:{line}: {raised.__name__}"
        for name, path in modules()
        if name != "rhc.__main__"
        for line, raised in raised_classes(name, path)
        if not issubclass(raised, (RhcError, *allowed.get(name, ())))
    ]
    assert not others, others


def test_no_module_outgrows_one_concept():
    long = {
        str(path.relative_to(REPOSITORY)): lines
        for _, path in modules()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long
