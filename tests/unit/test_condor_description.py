# SPDX-License-Identifier: BSD-3-Clause
"""The submit descriptions rhc writes: equal to the golden files in condor/ (which site admins
read and adapt), parsed by the real htcondor2 bindings, refused when wrong, free of secrets."""

from __future__ import annotations

import os
from pathlib import Path

import htcondor2
import pytest

from rhc.condor.description import WRAPPER, SubmitDescriptionError, WorkerJob, describe
from rhc.config import write_config_file

GOLDEN = Path(__file__).resolve().parent.parent.parent / "condor"
SECRET = "the-shared-secret-0123456789abcdef"
PASSWORD = "the-redis-password-0123456789"
EXAMPLES = {
    "docker": {"image": "rhc/worker:0.1.0", "desired_sites": ("T2_US_UCSD", "T2_US_Caltech")},
    "container": {"image": "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/rhc/worker:0.1.0"},
    "vanilla": {"environment": "rhc-env.tar.gz"},
}


@pytest.fixture
def home(tmp_path) -> Path:
    write_config_file(
        tmp_path / "rhc.toml",
        {
            "redis_url": "redis://redis.example.org:6379",
            "redis_password": PASSWORD,
            "secret": SECRET,
            "namespace": "analyst",
        },
    )
    (tmp_path / "rhc-env.tar.gz").write_bytes(b"a tarball")
    return tmp_path


def example(home: Path, universe: str, **overrides: object) -> WorkerJob:
    options = {
        "redis_url": "redis://redis.example.org:6379",
        "config_file": home / "rhc.toml",
        "universe": universe,
        "namespace": "analyst",
        "count": 10,
        "request_memory": "4GB",
        **EXAMPLES[universe],
    }
    if "environment" in options:
        options["environment"] = home / options["environment"]
    return WorkerJob(**{**options, **overrides})


def readable(text: str, home: Path) -> str:
    """Install-dependent paths as the golden files show them."""
    return text.replace(str(home.resolve()), "/home/analyst").replace(
        str(WRAPPER.parent), "/opt/rhc/condor"
    )


@pytest.mark.parametrize("universe", ["docker", "container", "vanilla"])
def test_each_description_equals_its_golden_file_and_parses(home, universe):
    description = describe(example(home, universe))
    text = readable(str(description), home)
    golden = GOLDEN / f"{universe}.sub"
    if os.environ.get("UPDATE_GOLDEN_FILES"):
        golden.write_text(text)
    assert text == golden.read_text()
    # The real bindings read it back: the same universe, image and job count
    parsed = htcondor2.Submit(golden.read_text())
    assert parsed["universe"] == universe
    assert parsed.getQArgs() == "10"
    assert parsed["request_memory"] == "4GB" and parsed["JobBatchName"] == "rhc-workers"


@pytest.mark.parametrize("universe", ["docker", "container", "vanilla"])
def test_no_secret_is_in_arguments_environment_or_the_printed_description(home, universe):
    description = describe(example(home, universe))
    text = str(description)
    assert PASSWORD not in text and SECRET not in text
    assert "environment" not in dict(description) and description["getenv"] == "false"
    assert "'--config' 'rhc.toml'" in text or "--config rhc.toml" in text
    assert str((home / "rhc.toml").resolve()) in description["transfer_input_files"]


def test_the_vanilla_worker_ships_its_wrapper_and_environment(home):
    description = describe(example(home, "vanilla"))
    assert description["executable"] == str(WRAPPER) and os.access(WRAPPER, os.X_OK)
    assert str((home / "rhc-env.tar.gz").resolve()) in description["transfer_input_files"]


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"universe": "bogus"}, "universe 'bogus' is not one rhc writes"),
        ({"universe": "docker", "image": None}, "the docker universe needs an image"),
        ({"universe": "container", "image": "ubuntu"}, "must be docker://NAME, a .sif file"),
        ({"universe": "container", "image": "/nowhere/worker.sif"}, "does not exist"),
        ({"universe": "docker", "image": "Not An Image!"}, "is not a docker image name"),
        ({"request_memory": "lots"}, "request_memory = 'lots' does not parse"),
        ({"request_disk": "4 parsecs"}, "request_disk = '4 parsecs' does not parse"),
        ({"request_cpus": 0}, "request_cpus must be at least 1"),
        ({"count": 0}, "count must be at least 1"),
        ({"redis_url": "redis://:hunter2@h:6379"}, "the Redis URL holds a password"),
        ({"desired_sites": ("T2 US UCSD",)}, "site names"),
    ],
)
def test_a_bad_job_is_refused_with_what_to_change(home, overrides, complaint):
    universe = overrides.pop("universe", "docker")
    job = example(home, universe if universe in EXAMPLES else "docker", **overrides)
    if universe not in EXAMPLES:
        job = WorkerJob(**{**job.__dict__, "universe": universe})
    with pytest.raises(SubmitDescriptionError, match=complaint) as caught:
        describe(job)
    assert "hunter2" not in str(caught.value)


def test_htcondor2_alone_would_accept_nonsense():
    # The reason rhc checks: the bindings parse a bogus universe and an unparseable memory
    accepted = htcondor2.Submit("universe = bogus\nrequest_memory = lots\nqueue")
    assert accepted["universe"] == "bogus"


def test_an_x509_proxy_and_requirements_are_passed_on(home):
    proxy = home / "x509up_u1000"
    proxy.write_text("proxy")
    job = example(home, "docker", x509_proxy=proxy, requirements="(OpSysMajorVer == 9)")
    description = describe(job)
    assert description["x509userproxy"] == str(proxy)
    assert description["requirements"] == "(OpSysMajorVer == 9)"
