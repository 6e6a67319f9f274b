# SPDX-License-Identifier: BSD-3-Clause
"""Grid credentials at submit: an x509 proxy or a bearer token goes with the worker jobs only
when it is the user's alone and valid for the workers' lifetime, and only as a file."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rhc.cli.main import cli
from rhc.condor.credentials import (
    CredentialError,
    check_proxy,
    check_token,
    job_token_file,
    token_expiry,
    utc,
)
from rhc.condor.description import SubmitDescriptionError, WorkerJob, describe
from rhc.config import write_config_file
from rhc.errors import ArgumentError
from rhc.values import duration
from tests.conftest import assert_says, within
from tests.grid import jwt, now, write_file, write_proxy

HOUR = 3600.0


@pytest.fixture
def worker_config(tmp_path, monkeypatch) -> Path:
    """The workers' config file, and a Redis URL in the environment, as `rhc init` leaves them."""
    monkeypatch.setenv("RHC_REDIS_URL", "redis://redis.example.org:6379")
    return write_config_file(tmp_path / "worker.toml", {"redis_url": "redis://redis:6379"})


def submit(worker_config: Path, *options: str) -> Result:
    """`rhc condor submit --dry-run` for vanilla workers, in this process."""
    arguments = ["condor", "submit", "--universe", "vanilla", "--dry-run"]
    return CliRunner().invoke(cli, [*arguments, "--config", str(worker_config), *options])


def refusal(result: Result) -> str:
    assert isinstance(result.exception, CredentialError), result.output
    return str(result.exception)


def test_an_expired_proxy_is_refused_at_submit_with_its_expiry_in_utc_and_how_to_renew(
    worker_config, tmp_path
):
    # Given a proxy that expired ten minutes ago
    expired = now().replace(microsecond=0) - timedelta(minutes=10)
    proxy = tmp_path / "x509up_u1000"
    write_proxy(proxy, expires=expired)
    # When workers are submitted with it
    result = submit(worker_config, "--x509-proxy", str(proxy))
    # Then nothing is described, and the message gives the expiry (UTC) and the remedy
    assert result.exit_code != 0 and "queue" not in result.stdout
    assert_says(refusal(result), str(proxy), f"expired at {utc(expired)}", "voms-proxy-init")
    assert utc(expired).endswith(" UTC")


def test_a_proxy_that_expires_before_the_lifetime_is_refused_and_a_shorter_lifetime_passes(
    worker_config, tmp_path
):
    # Given a proxy with one hour left
    proxy = tmp_path / "x509up_u1000"
    write_proxy(proxy, expires=now() + timedelta(hours=1))
    # When workers meant to run for the default two hours, or for eight, are submitted with it
    for lifetime in ([], ["--lifetime", "8h"]):
        result = submit(worker_config, "--x509-proxy", str(proxy), *lifetime)
        # Then it is refused, with when it expires and what to do
        assert_says(refusal(result), "expires at", "before the workers' lifetime", "--valid")
    # When they are meant to run for 30 minutes, then it goes
    result = submit(worker_config, "--x509-proxy", str(proxy), "--lifetime", "30m")
    assert result.exit_code == 0, result.output
    assert "valid until" in result.stderr


def test_a_valid_proxy_goes_as_x509userproxy_and_its_content_is_nowhere_in_the_description(
    worker_config, tmp_path
):
    # Given a proxy valid for a day
    proxy = tmp_path / "x509up_u1000"
    key = write_proxy(proxy, expires=now() + timedelta(days=1))
    # When workers are submitted with it
    result = submit(worker_config, "--x509-proxy", str(proxy))
    # Then condor is told to send the file, and neither its key nor its certificates show
    assert result.exit_code == 0, result.output
    assert f"x509userproxy = {proxy}" in result.stdout
    assert key not in result.stdout.encode() and b"BEGIN" not in result.stdout.encode()
    body = b"".join(key.splitlines()[1:-1]).decode()
    assert body[:40] not in result.stdout and "environment" not in result.stdout
    assert_says(result.stderr, "x509 proxy", "valid until", " UTC")


def test_a_chain_is_valid_only_until_its_first_certificate_expires(tmp_path):
    # Given a proxy valid for a day, issued by a CA whose certificate expires in an hour
    proxy = tmp_path / "x509up_u1000"
    ca_expires = now().replace(microsecond=0) + timedelta(hours=1)
    write_proxy(proxy, expires=now() + timedelta(days=1), ca_expires=ca_expires)
    # Then the proxy expires with the CA
    assert check_proxy(proxy, lifetime=0, now=now()).expires == ca_expires
    with pytest.raises(CredentialError, match=f"expires at {utc(ca_expires)}"):
        check_proxy(proxy, lifetime=2 * HOUR, now=now())


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"", "holds no PEM certificate"),
        (b"not a proxy\n", "holds no PEM certificate"),
        ("certificate only", "holds no private key"),
    ],
)
def test_a_file_that_is_no_proxy_is_refused_for_what_it_lacks(tmp_path, content, complaint):
    # Given a file that is not a proxy: empty, text, or a certificate without its key
    path = tmp_path / "x509up_u1000"
    if isinstance(content, str):
        write_proxy(path, expires=now() + timedelta(days=1))
        pem = path.read_bytes()
        content = pem[: pem.index(b"-----BEGIN EC PRIVATE KEY")]
    write_file(path, content)
    # Then it is refused, saying what it lacks
    with pytest.raises(CredentialError, match=complaint):
        check_proxy(path, lifetime=HOUR, now=now())


def test_an_empty_bearer_token_file_is_refused_at_submit(worker_config, tmp_path):
    # Given an empty token file (0600)
    token = write_file(tmp_path / "bt_u1000", "\n")
    # When workers are submitted with it, then it is refused as empty
    result = submit(worker_config, "--bearer-token-file", str(token))
    assert_says(refusal(result), str(token), "is empty")


def test_an_unreadable_token_file_is_refused_saying_why(tmp_path):
    with pytest.raises(CredentialError, match="No such file or directory"):
        check_token(tmp_path / "missing", lifetime=HOUR, now=now())
    directory = tmp_path / "a-directory"
    directory.mkdir(mode=0o700)
    with pytest.raises(CredentialError, match="not a regular file"):
        check_token(directory, lifetime=HOUR, now=now())


def test_a_fifo_planted_where_the_proxy_should_be_is_refused_without_hanging(tmp_path):
    # Given a named pipe at the proxy's path, which nobody will ever write to
    fifo = tmp_path / "x509up_u1000"
    os.mkfifo(fifo, 0o600)
    # Then it is refused at once, not read
    with within(5), pytest.raises(CredentialError, match="not a regular file"):
        check_proxy(fifo, lifetime=HOUR, now=now())


def test_a_jwts_expiry_is_checked_like_a_proxys_and_an_opaque_token_names_none(tmp_path):
    # Given tokens: a JWT that expired, one that expires in an hour, and an opaque one
    past = now().replace(microsecond=0) - timedelta(minutes=5)
    expired = write_file(tmp_path / "expired", jwt(past) + "\n")
    soon = write_file(tmp_path / "soon", jwt(now() + timedelta(hours=1)))
    opaque = write_file(tmp_path / "opaque", "an-opaque-access-token")
    # Then the expired one is refused with its expiry, the other only for a longer lifetime
    with pytest.raises(CredentialError, match=f"expired at {utc(past)}.*htgettoken"):
        check_token(expired, lifetime=0, now=now())
    assert check_token(soon, lifetime=30 * 60, now=now()).expires is not None
    with pytest.raises(CredentialError, match="before the workers' lifetime"):
        check_token(soon, lifetime=2 * HOUR, now=now())
    assert check_token(opaque, lifetime=2 * HOUR, now=now()).expires is None
    # And what only looks like a JWT names no expiry rather than failing
    assert token_expiry("a.b.c") is None and token_expiry(jwt(None)) is None


def test_a_token_goes_in_the_transferred_files_and_the_worker_is_told_only_its_name(
    worker_config, tmp_path
):
    # Given a valid JWT in a 0600 file
    token_text = jwt(now() + timedelta(days=1))
    token = write_file(tmp_path / "bt_u1000", token_text)
    # When workers are submitted with it
    result = submit(worker_config, "--bearer-token-file", str(token))
    # Then the file is sent, the worker gets its name, and the token itself shows nowhere
    assert result.exit_code == 0, result.output
    lines = dict(line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    assert str(token) in lines["transfer_input_files"].split(", ")
    assert "--bearer-token-file bt_u1000" in lines["arguments"]
    assert token_text not in result.output and token_text.split(".")[1] not in result.output


@pytest.mark.parametrize("option", ["--x509-proxy", "--bearer-token-file"])
def test_a_credential_others_may_read_is_refused_with_the_chmod_to_run(
    worker_config, tmp_path, option
):
    # Given a credential that its group may read
    path = tmp_path / "credential"
    if option == "--x509-proxy":
        write_proxy(path, expires=now() + timedelta(days=1), mode=0o640)
    else:
        write_file(path, jwt(now() + timedelta(days=1)), mode=0o640)
    # When workers are submitted with it, then it is refused
    assert_says(refusal(submit(worker_config, option, str(path))), "0640", f"chmod 600 {path}")


def test_a_link_to_someone_elses_proxy_is_refused_as_theirs(worker_config, tmp_path):
    # Given another user's valid proxy (0600, theirs), and a link to it named like one's own
    theirs = tmp_path / "x509up_u12345"
    write_proxy(theirs, expires=now() + timedelta(days=1))
    os.chown(theirs, 12345, 12345)  # the tests run as root, as CI does
    link = tmp_path / f"x509up_u{os.getuid()}"
    link.symlink_to(theirs)
    # When workers are submitted with the link, then it is refused as someone else's
    message = refusal(submit(worker_config, "--x509-proxy", str(link)))
    assert_says(message, "belongs to uid 12345", "a credential of your own")


def test_the_settings_name_the_credentials_when_the_command_line_does_not(
    worker_config, tmp_path, monkeypatch
):
    # Given a proxy and a token named by RHC_X509_PROXY and RHC_BEARER_TOKEN_FILE
    proxy, token = tmp_path / "x509up", tmp_path / "token"
    write_proxy(proxy, expires=now() + timedelta(days=1))
    write_file(token, "opaque-token")
    monkeypatch.setenv("RHC_X509_PROXY", str(proxy))
    monkeypatch.setenv("RHC_BEARER_TOKEN_FILE", str(token))
    # When workers are submitted without the options, then both go
    result = submit(worker_config)
    assert result.exit_code == 0, result.output
    assert f"x509userproxy = {proxy}" in result.stdout and str(token) in result.stdout
    # And an expired proxy named by the settings is refused like one given on the command line
    write_proxy(proxy, expires=now() - timedelta(hours=1))
    assert_says(refusal(submit(worker_config)), "expired at")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7200", 7200),
        ("90m", 5400),
        ("8h", 28800),
        ("1h30m", 5400),
        ("2d", 172800),
        ("12:00", 43200),
    ],
)
def test_a_lifetime_is_seconds_or_units_or_voms_proxy_inits_hh_mm(text, seconds):
    assert duration(text) == seconds


def test_a_lifetime_that_is_no_duration_is_refused_before_anything_is_read(worker_config):
    result = submit(worker_config, "--lifetime", "forever")
    assert result.exit_code == 2 and "'forever' is not a duration" in result.output
    with pytest.raises(ArgumentError, match="not negative"):
        duration("-5")


def test_two_files_sent_under_one_name_are_refused(worker_config, tmp_path):
    # Given a token file named like the workers' config file, in another directory
    (tmp_path / "elsewhere").mkdir()
    token = write_file(tmp_path / "elsewhere" / "worker.toml", "opaque-token")
    job = WorkerJob(
        redis_url="redis://h:6379", config_file=worker_config, image="rhc/worker:0.1.0",
        bearer_token_file=token,
    )  # fmt: skip
    # Then the description is refused: one would overwrite the other in the scratch directory
    with pytest.raises(SubmitDescriptionError, match="two files sent with the job"):
        describe(job)


def test_on_the_worker_the_token_is_found_in_the_scratch_directory_and_made_private(
    tmp_path, monkeypatch
):
    # Given a job's scratch directory where condor left the token as it was sent (0640)
    monkeypatch.chdir(tmp_path)
    write_file(tmp_path / "bt_u1000", "opaque-token", mode=0o640)
    # When the worker is given its name, then it gets the absolute path of a 0600 file
    path = job_token_file(Path("bt_u1000"))
    assert path == tmp_path / "bt_u1000" and path.is_absolute()
    assert path.stat().st_mode & 0o777 == 0o600
    # And a token that did not arrive, or arrived empty, stops the worker with why
    with pytest.raises(CredentialError, match="was it sent with the job"):
        job_token_file(Path("missing"))
    write_file(tmp_path / "empty", "")
    with pytest.raises(CredentialError, match="is empty"):
        job_token_file(Path("empty"))
