# SPDX-License-Identifier: BSD-3-Clause
"""What a submit description asks the mini pool to run: one JobSpec per proc.

htcondor2.Submit parses the text (so the pool reads exactly what condor_submit would) and expands
macros such as $(ClusterId) per proc; this module interprets the commands the pool supports and
refuses, with the reason, what it cannot run faithfully. Other commands (requirements,
should_transfer_files, getenv, ...) have no effect in the mini pool; `log` is only checked, as
output and error are: a path inside the job's scratch directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import classad2
import htcondor2

from rhc.condor.minipool.errors import SubmitFileError
from rhc.condor.minipool.syntax import (
    disk_kb,
    memory_mb,
    parse_bool,
    parse_environment,
    positive_int,
    split_arguments,
)

UNIVERSES = ("vanilla", "docker")
DEFAULT_REQUEST_MEMORY_MB = 128
"""condor's JOB_DEFAULT_REQUESTMEMORY."""

STDOUT_NAME = "_condor_stdout"
STDERR_NAME = "_condor_stderr"
"""Where stdout/stderr go when the description names no output/error (as condor's starter)."""

# Attributes the pool writes into the job ad itself; a description may not set them.
RESERVED_ATTRIBUTES = frozenset(
    name.lower()
    for name in (
        "ClusterId",
        "ProcId",
        "Owner",
        "RequestCpus",
        "RequestMemory",
        "RequestDisk",
        "Iwd",
        "Cmd",
        "Arguments",
        "JobUniverse",
        "NumJobStarts",
        "QDate",
        "JobCurrentStartDate",
        "DockerImage",
        "WantDocker",
    )
)
# Commands whose silent omission would change what the job reads.
_UNSUPPORTED_COMMANDS = {"input": "stdin redirection (input) is not supported by the mini pool"}
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MACROS = ("ClusterId", "Cluster", "ProcId", "Process")


@dataclass(frozen=True)
class JobSpec:
    """One proc of a submit: what to run and what it asked for, macros expanded."""

    proc: int
    universe: str
    executable: str | None
    arguments: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    transfer_input_files: tuple[str, ...] = ()
    transfer_executable: bool = True
    docker_image: str | None = None
    request_cpus: int = 1
    request_memory_mb: int = DEFAULT_REQUEST_MEMORY_MB
    request_disk_kb: int | None = None
    output: str = STDOUT_NAME
    error: str = STDERR_NAME
    log: str = ""
    batch_name: str | None = None
    x509_proxy: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    """Custom attributes (MY.Name / +Name), name -> ClassAd expression text."""

    @property
    def input_names(self) -> list[str]:
        """The names the transferred inputs get in the scratch directory (condor: basenames)."""
        entries = [*self.transfer_input_files, *filter(None, [self.x509_proxy])]
        return [input_name(entry) for entry in entries]

    @property
    def executable_name(self) -> str | None:
        """The name the executable gets in the scratch directory when it is transferred."""
        if self.executable is None or not self.transfer_executable:
            return None
        return PurePosixPath(self.executable).name


def parse(description: str) -> htcondor2.Submit:
    """Parse with htcondor2, and refuse what it would drop silently.

    htcondor2 keeps only the first queue statement and ignores every line after it, and it
    appends a `queue` to a description that has none.

    Raises:
      SubmitFileError: unparseable text, no queue statement, or lines after it.
    """
    queue_line = None
    for number, line in enumerate(description.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if queue_line is not None:
            raise SubmitFileError(
                f"line {number} ({stripped!r}) follows the queue statement: the mini pool takes "
                "one queue statement, at the end"
            )
        if stripped.split()[0].lower() == "queue":
            queue_line = number
    if queue_line is None:
        raise SubmitFileError("the description has no queue statement (add `queue` or `queue N`)")
    try:
        return htcondor2.Submit(description)
    except Exception as exc:  # htcondor2 raises a bare ValueError without the line
        raise SubmitFileError(f"htcondor2 cannot parse the description: {exc}") from exc


def queue_count(submit: htcondor2.Submit) -> int:
    """N of `queue N` (1 for a bare `queue`)."""
    arguments = submit.getQArgs().split("#", 1)[0].strip()
    if not arguments:
        return 1
    if not arguments.isdigit():
        raise SubmitFileError(f"queue {arguments}: the mini pool supports `queue` and `queue N`")
    return positive_int(arguments, "queue")


def interpret(description: str, cluster: int) -> list[JobSpec]:
    """The jobs of a description, for ClusterId cluster.

    Raises:
      SubmitFileError: anything the pool cannot run, with what to change.
    """
    submit = parse(description)
    return [_job(submit, cluster, proc) for proc in range(queue_count(submit))]


def transfer_paths(description: str) -> tuple[list[str], list[str]]:
    """What a submitter may send, across all procs, in order: the executables (unless
    transfer_executable is false; sent only if they are local files) and the input files
    (transfer_input_files and x509userproxy, which must exist)."""
    executables: dict[str, None] = {}
    inputs: dict[str, None] = {}
    for spec in interpret(description, cluster=0):
        if spec.executable is not None and spec.executable_name is not None:
            executables[spec.executable] = None
        for entry in (*spec.transfer_input_files, *filter(None, [spec.x509_proxy])):
            inputs[entry] = None
    return list(executables), list(inputs)


def input_name(entry: str) -> str:
    """The scratch-directory name of a transfer_input_files entry."""
    if "://" in entry:
        raise SubmitFileError(f"transfer_input_files {entry!r}: URLs are not supported")
    name = PurePosixPath(entry).name
    if not name or entry.endswith("/"):
        raise SubmitFileError(f"transfer_input_files {entry!r}: directories are not supported")
    return name


def confined(value: str, command: str) -> str:
    """A path of output, error or log, normalized: relative, inside the job's scratch
    directory ('' when none is given).

    Raises:
      SubmitFileError: an absolute path, or one that climbs out with '..'.
    """
    path = PurePosixPath(value.strip())
    if not value.strip():
        return ""
    if path.is_absolute() or ".." in path.parts or not path.parts or "\0" in value:
        raise SubmitFileError(
            f"{command} = {value.strip()}: give a path relative to the job's scratch directory "
            "(no absolute path, no '..'); the mini pool writes nothing outside it"
        )
    return str(path)


def _job(submit: htcondor2.Submit, cluster: int, proc: int) -> JobSpec:
    values, attributes = _expanded(submit, cluster, proc)
    universe = values.get("universe", "vanilla").strip().lower()
    if universe not in UNIVERSES:
        raise SubmitFileError(
            f"universe {universe!r} is not supported by the mini pool: use vanilla or docker"
        )
    for command, reason in _UNSUPPORTED_COMMANDS.items():
        if values.get(command, "").strip():
            raise SubmitFileError(reason)
    executable = values.get("executable", "").strip() or None
    docker_image = values.get("docker_image", "").strip() or None
    if universe == "vanilla" and executable is None:
        raise SubmitFileError("the vanilla universe needs an executable")
    if universe == "docker" and docker_image is None:
        raise SubmitFileError("the docker universe needs a docker_image")
    batch_name = _unquoted(values.get("batch_name") or values.get("jobbatchname") or "")
    if "jobbatchname" in attributes:
        batch_name = _classad_string(attributes.pop("jobbatchname")[1], "MY.JobBatchName")
    entries = values.get("transfer_input_files", "").split(",")
    inputs = tuple(entry.strip() for entry in entries if entry.strip())
    x509_proxy = values.get("x509userproxy", "").strip() or None
    for entry in (*inputs, *filter(None, [x509_proxy])):
        input_name(entry)  # refuse URLs and directories at submit time
    memory = values.get("request_memory", "").strip()
    disk = values.get("request_disk", "").strip()
    return JobSpec(
        proc=proc,
        universe=universe,
        executable=executable,
        arguments=tuple(split_arguments(values.get("arguments", ""))),
        environment=parse_environment(values.get("environment", "")),
        transfer_input_files=inputs,
        transfer_executable=parse_bool(
            values.get("transfer_executable", "true"), "transfer_executable"
        ),
        docker_image=docker_image,
        request_cpus=positive_int(values.get("request_cpus", "1"), "request_cpus"),
        request_memory_mb=memory_mb(memory) if memory else DEFAULT_REQUEST_MEMORY_MB,
        request_disk_kb=disk_kb(disk) if disk else None,
        output=confined(values.get("output", ""), "output") or STDOUT_NAME,
        error=confined(values.get("error", ""), "error") or STDERR_NAME,
        log=confined(values.get("log", ""), "log"),
        batch_name=batch_name or None,
        x509_proxy=x509_proxy,
        attributes=dict(attributes.values()),
    )


def _expanded(
    submit: htcondor2.Submit, cluster: int, proc: int
) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Commands (lower-case name -> value) and custom attributes (lower-case name -> (name,
    expression)), with macros expanded for this proc."""
    copy = htcondor2.Submit(dict(submit))
    for macro in _MACROS:
        copy[macro] = str(cluster if macro.startswith("Cluster") else proc)
    values: dict[str, str] = {}
    attributes: dict[str, tuple[str, str]] = {}
    for key in submit:
        try:
            value = copy.expand(key)
        except Exception as exc:  # htcondor2 reports a failed $INT() etc. as KeyError(key)
            raise SubmitFileError(f"{key} = {submit[key]!r}: cannot expand it ({exc!r})") from exc
        if key.lower().startswith("my."):
            name = key[3:]
            attributes[name.lower()] = (name, _attribute(name, value))
        else:
            values[key.lower()] = value
    return values, attributes


def _attribute(name: str, expression: str) -> str:
    if not _ATTRIBUTE_NAME.match(name):
        raise SubmitFileError(f"custom attribute {name!r} is not a valid ClassAd attribute name")
    if name.lower() in RESERVED_ATTRIBUTES:
        raise SubmitFileError(f"custom attribute {name}: the pool sets {name} itself")
    try:
        return str(classad2.ExprTree(expression))
    except Exception as exc:  # classad2 raises ClassAdException without the position
        raise SubmitFileError(
            f"custom attribute {name} = {expression!r} is not a ClassAd expression"
        ) from exc


def _classad_string(expression: str, what: str) -> str:
    try:
        value = classad2.ExprTree(expression).eval()
    except Exception as exc:
        raise SubmitFileError(f"{what} = {expression!r} does not evaluate") from exc
    if not isinstance(value, str):
        raise SubmitFileError(f"{what} = {expression!r} must be a string")
    return value


def _unquoted(value: str) -> str:
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text
