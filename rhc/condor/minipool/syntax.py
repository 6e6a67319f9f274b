# SPDX-License-Identifier: BSD-3-Clause
"""HTCondor's value syntax, which htcondor2 leaves as text: arguments, environment, sizes.

The quoting rules are those of the condor_submit manual: new-style values are wrapped in double
quotes, split on whitespace, group with single quotes, and double a quote to make it literal
(`''` inside single quotes, `""` anywhere); old-style arguments split on whitespace with `\\"`
for a literal double quote, and old-style environments separate NAME=value pairs with `;`.
"""

from __future__ import annotations

import math
import re

from rhc.condor.minipool.errors import SubmitFileError

_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([KMGT])i?B?)?\s*$", re.IGNORECASE)
_UNIT_POWER = {"K": 1, "M": 2, "G": 3, "T": 4}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SPACE = " \t"


def split_arguments(value: str) -> list[str]:
    """The argv of an `arguments` value, new style ("...") or old style.

    Raises:
      SubmitFileError: unbalanced or stray quotes.
    """
    text = value.strip()
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise SubmitFileError(f"arguments {value!r}: the opening double quote is not closed")
        return _split_new_style(text[1:-1], f"arguments {value!r}")
    return _split_old_style_arguments(text, value)


def parse_environment(value: str) -> dict[str, str]:
    """The variables of an `environment` value, new style ("A=1 B='x y'") or old (A=1;B=2).

    Raises:
      SubmitFileError: a malformed entry or bad quoting.
    """
    text = value.strip()
    what = f"environment {value!r}"
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise SubmitFileError(f"{what}: the opening double quote is not closed")
        entries = _split_new_style(text[1:-1], what)
    else:
        entries = [entry.strip() for entry in text.split(";") if entry.strip()]
    environment = {}
    for entry in entries:
        name, equals, setting = entry.partition("=")
        if not equals or not _ENV_NAME.match(name):
            raise SubmitFileError(f"{what}: {entry!r} is not NAME=value")
        environment[name] = setting
    return environment


def memory_mb(value: str, what: str = "request_memory") -> int:
    """A size in MB, rounded up: a bare number is MB, as condor reads request_memory."""
    return _quantity(value, default_unit="M", result_unit="M", what=what)


def disk_kb(value: str, what: str = "request_disk") -> int:
    """A size in KB, rounded up: a bare number is KB, as condor reads request_disk."""
    return _quantity(value, default_unit="K", result_unit="K", what=what)


def positive_int(value: str, what: str) -> int:
    """A whole number of at least 1 (request_cpus, queue counts)."""
    text = value.strip()
    if not text.isdigit() or int(text) < 1:
        raise SubmitFileError(
            f"{what} = {value!r}: give a whole number of at least 1 (expressions are not supported)"
        )
    return int(text)


def parse_bool(value: str, what: str) -> bool:
    """A condor boolean: true/false, yes/no, t/f, 1/0, any case."""
    text = value.strip().lower()
    if text in ("true", "yes", "t", "y", "1"):
        return True
    if text in ("false", "no", "f", "n", "0"):
        return False
    raise SubmitFileError(f"{what} = {value!r}: give true or false")


def _quantity(value: str, *, default_unit: str, result_unit: str, what: str) -> int:
    found = _QUANTITY.match(value)
    if not found:
        raise SubmitFileError(
            f"{what} = {value!r}: give a number with an optional unit K, KB, M, MB, G, GB, T or TB "
            "(expressions are not supported by the mini pool)"
        )
    number, unit = found.groups()
    power = _UNIT_POWER[(unit or default_unit).upper()] - _UNIT_POWER[result_unit]
    amount = float(number) * 1024.0**power
    if amount <= 0:
        raise SubmitFileError(f"{what} = {value!r}: must be more than zero")
    return math.ceil(amount)


def _split_new_style(text: str, what: str) -> list[str]:
    words: list[str] = []
    current: list[str] = []
    in_word = False
    i = 0
    while i < len(text):
        char = text[i]
        if char in _SPACE:
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
            i += 1
        elif char == '"':
            current.append(_doubled_quote(text, i, what))
            in_word, i = True, i + 2
        elif char == "'":
            i = _single_quoted(text, i + 1, current, what)
            in_word = True
        else:
            current.append(char)
            in_word, i = True, i + 1
    if in_word:
        words.append("".join(current))
    return words


def _single_quoted(text: str, i: int, current: list[str], what: str) -> int:
    """Append the inside of a single-quoted section starting at i; return the index after it."""
    while i < len(text):
        char = text[i]
        if char == "'":
            if text[i + 1 : i + 2] == "'":
                current.append("'")
                i += 2
                continue
            return i + 1
        if char == '"':
            current.append(_doubled_quote(text, i, what))
            i += 2
            continue
        current.append(char)
        i += 1
    raise SubmitFileError(f"{what}: a single quote is not closed")


def _doubled_quote(text: str, i: int, what: str) -> str:
    if text[i + 1 : i + 2] != '"':
        raise SubmitFileError(
            f'{what}: a double quote inside the value must be doubled ("") to be literal'
        )
    return '"'


def _split_old_style_arguments(text: str, value: str) -> list[str]:
    words: list[str] = []
    for word in text.split():
        if re.search(r'(?<!\\)"', word):
            raise SubmitFileError(
                f'arguments {value!r}: in old-style arguments write a literal double quote as \\"'
            )
        words.append(word.replace('\\"', '"'))
    return words
