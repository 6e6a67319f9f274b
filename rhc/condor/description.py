# SPDX-License-Identifier: BSD-3-Clause
"""Submit descriptions for rhc workers, written with the real htcondor2 bindings.

Three kinds: the docker universe (`docker_image`), the container universe for Apptainer sites
(`container_image`: docker://..., a .sif, or an unpacked image on /cvmfs), and the vanilla
universe with a shipped Python environment. htcondor2.Submit accepts anything (`universe = bogus`
parses), so rhc checks what it writes itself.

Secrets reach the job only inside the files it carries (the config file, grid credentials):
never in `arguments` or `environment`, which anyone can read in the job ad (`condor_q -l`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rhc.errors import RhcError
from rhc.urls import url_has_password

UNIVERSES = ("docker", "container", "vanilla")
WRAPPER = Path(__file__).resolve().parent / "rhc-worker.sh"
"""The vanilla universe's executable: unpacks the shipped environment, then runs the worker."""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?)?\s*$", re.IGNORECASE)
_IMAGE = re.compile(r"^[a-z0-9]+([._/:@-][A-Za-z0-9_.-]+)*$")
_SITE = re.compile(r"^[A-Za-z0-9_-]+$")


if TYPE_CHECKING:
    import htcondor2


class SubmitDescriptionError(RhcError):
    """Raised when a worker job cannot be described as asked: what to change is in the message."""


@dataclass(frozen=True)
class WorkerJob:
    """What `rhc condor submit` asks for: `count` workers of one kind.

    The worker command line carries the URL without a password and the config file's name;
    the password and secret travel inside that file (mode 0600), sent with the job, as grid
    credentials do (x509_proxy, bearer_token_file; rhc.condor.credentials checks them).
    """

    redis_url: str
    config_file: Path
    universe: str = "docker"
    image: str | None = None
    environment: Path | None = None
    namespace: str | None = None
    count: int = 1
    request_cpus: int = 1
    request_memory: str = "2GB"
    request_disk: str = "4GB"
    requirements: str | None = None
    desired_sites: tuple[str, ...] = ()
    x509_proxy: Path | None = None
    bearer_token_file: Path | None = None
    batch_name: str = "rhc-workers"
    worker_options: tuple[str, ...] = field(default_factory=tuple)

    @property
    def input_files(self) -> list[Path]:
        """What transfer_input_files names (and the vanilla wrapper, the executable)."""
        files = [self.config_file]
        if self.universe == "vanilla":
            files = [WRAPPER, *files]
            if self.environment is not None:
                files.append(self.environment)
        if self.bearer_token_file is not None:
            files.append(self.bearer_token_file)
        return files

    @property
    def sent_files(self) -> list[Path]:
        """Every file that goes to the execute node with each job: the input files, and the x509
        proxy, which condor sends on its own (x509userproxy)."""
        return [*self.input_files, *filter(None, [self.x509_proxy])]


def describe(job: WorkerJob) -> htcondor2.Submit:
    """The submit description of job, checked.

    Raises:
      SubmitDescriptionError: a bad universe, a missing image, resources that do not parse,
        a password in the URL.
    """
    validate(job)
    arguments = ["worker", job.redis_url, "--config", job.config_file.name, *job.worker_options]
    if job.namespace:
        arguments += ["--namespace", job.namespace]
    # Credentials, read where both real condor and the mini pool put them. The proxy goes as
    # x509userproxy: condor sends it itself, into the scratch directory, sets X509_USER_PROXY to
    # that copy, sends running jobs the proxy again when it is renewed on the submit host, and
    # puts its expiry in the job ad; the mini pool does the first two. A token has no such
    # command outside a site's credd (use_oauth_services wants a credmon), and an `environment`
    # value cannot name the scratch directory, known only on the execute node: the token goes
    # in transfer_input_files, and the worker, given its name, points BEARER_TOKEN_FILE at it.
    if job.bearer_token_file is not None:
        arguments += ["--bearer-token-file", job.bearer_token_file.name]
    lines = [("universe", job.universe)]
    if job.universe == "docker":
        lines += [
            ("docker_image", job.image),
            ("executable", "rhc"),
            ("transfer_executable", "false"),
        ]
    elif job.universe == "container":
        lines += [
            ("container_image", job.image),
            ("executable", "rhc"),
            ("transfer_executable", "false"),
        ]
    else:
        lines += [("executable", str(WRAPPER))]
    # Absolute paths, links kept: each file arrives in the job's scratch directory under the
    # name it was given (which the worker's arguments use), with the content of what it names.
    transferred = [str(f.absolute()) for f in job.input_files if f != WRAPPER]
    lines += [
        ("arguments", _quote_arguments(arguments)),
        ("transfer_input_files", ", ".join(transferred)),
        ("should_transfer_files", "YES"),
        ("when_to_transfer_output", "ON_EXIT"),
        ("transfer_output_files", '""'),
        ("getenv", "false"),  # the submitter's environment may hold secrets: send none of it
        ("request_cpus", str(job.request_cpus)),
        ("request_memory", job.request_memory),
        ("request_disk", job.request_disk),
        ("JobBatchName", job.batch_name),
        ("output", "rhc-worker.$(ClusterId).$(ProcId).out"),
        ("error", "rhc-worker.$(ClusterId).$(ProcId).err"),
        ("log", "rhc-workers.log"),
    ]
    if job.requirements:
        lines.append(("requirements", job.requirements))
    if job.desired_sites:
        lines.append(("+DESIRED_Sites", '"' + ",".join(job.desired_sites) + '"'))
    if job.x509_proxy is not None:
        lines.append(("x509userproxy", str(job.x509_proxy.absolute())))
    text = "\n".join(f"{key} = {value}" for key, value in lines) + f"\nqueue {job.count}\n"
    import htcondor2  # only here: workers import this package without the bindings

    return htcondor2.Submit(text)


def validate(job: WorkerJob) -> None:
    """Check what htcondor2 would accept blindly.

    Raises:
      SubmitDescriptionError: with what to change.
    """
    if job.universe not in UNIVERSES:
        raise SubmitDescriptionError(
            f"universe {job.universe!r} is not one rhc writes: choose {', '.join(UNIVERSES)}"
        )
    if url_has_password(job.redis_url):
        raise SubmitDescriptionError(
            "the Redis URL holds a password: it would be visible in the job ad; keep it in the "
            "config file (redis_password) and give the URL without it"
        )
    if not job.config_file.is_file():
        raise SubmitDescriptionError(f"config file {job.config_file} does not exist")
    _validate_image(job)
    if job.count < 1:
        raise SubmitDescriptionError(f"count must be at least 1, not {job.count}")
    if job.request_cpus < 1:
        raise SubmitDescriptionError(f"request_cpus must be at least 1, not {job.request_cpus}")
    for name in ("request_memory", "request_disk"):
        if not _SIZE.match(getattr(job, name)):
            raise SubmitDescriptionError(
                f"{name} = {getattr(job, name)!r} does not parse: give a number with an optional "
                "unit, such as 2GB, 2048MB or 4096"
            )
    bad_sites = [site for site in job.desired_sites if not _SITE.match(site)]
    if bad_sites:
        raise SubmitDescriptionError(f"site names {bad_sites} are not of the form T2_US_UCSD")
    if job.x509_proxy is not None and not job.x509_proxy.is_file():
        raise SubmitDescriptionError(f"x509 proxy {job.x509_proxy} does not exist")
    if job.bearer_token_file is not None and not job.bearer_token_file.is_file():
        raise SubmitDescriptionError(f"bearer token file {job.bearer_token_file} does not exist")
    names = [path.name for path in job.sent_files]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise SubmitDescriptionError(
            f"two files sent with the job are named {', '.join(clashes)}: each lands in the "
            "job's scratch directory under its own name, so rename one"
        )
    if '"' in job.batch_name or "\n" in job.batch_name:
        raise SubmitDescriptionError("the batch name may not contain quotes or newlines")


def _validate_image(job: WorkerJob) -> None:
    image = job.image
    if job.universe == "vanilla":
        if image is not None:
            raise SubmitDescriptionError("the vanilla universe runs no image: drop --image")
        if job.environment is not None and not job.environment.is_file():
            raise SubmitDescriptionError(f"environment tarball {job.environment} does not exist")
        return
    if not image:
        raise SubmitDescriptionError(f"the {job.universe} universe needs an image: pass --image")
    if job.universe == "docker":
        if not _IMAGE.match(image):
            raise SubmitDescriptionError(
                f"{image!r} is not a docker image name like rhc/worker:1.0"
            )
    elif not (image.startswith(("docker://", "/cvmfs/")) or image.endswith(".sif")):
        raise SubmitDescriptionError(
            f"container image {image!r} must be docker://NAME, a .sif file, or an unpacked image "
            "on /cvmfs (e.g. /cvmfs/unpacked.cern.ch/...)"
        )
    elif image.endswith(".sif") and not image.startswith("/cvmfs/") and not Path(image).is_file():
        raise SubmitDescriptionError(f"container image {image} does not exist")


def _quote_arguments(arguments: list[str]) -> str:
    """HTCondor's new-style arguments: double-quoted, single quotes around each argument."""
    quoted = []
    for argument in arguments:
        if '"' in argument or "\n" in argument:
            raise SubmitDescriptionError(f"argument {argument!r} cannot go in a submit file")
        quoted.append(
            "'" + argument.replace("'", "''") + "'" if re.search(r"\s|'", argument) else argument
        )
    return '"' + " ".join(quoted) + '"'
