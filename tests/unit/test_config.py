# SPDX-License-Identifier: BSD-3-Clause
"""Settings: where each value comes from, what is refused, and that secrets never show."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rhc.config import (
    BatchEnvironment,
    Settings,
    batch_environment,
    read_config_file,
    resolve_settings,
    worker_environment,
    write_config_file,
)
from rhc.errors import ConfigurationError
from rhc.urls import mask_url, strip_password, url_has_password

SECRET = "a-shared-secret-of-32-characters"
OTHER_SECRET = "another-secret-of-32-characters!"


def private_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def use_config_file(monkeypatch, path: Path) -> None:
    monkeypatch.setenv("RHC_CONFIG_FILE", str(path))


# --- precedence ---------------------------------------------------------------------------------


def test_an_explicit_argument_beats_the_environment(monkeypatch):
    # Given the environment names one namespace and URL
    monkeypatch.setenv("RHC_NAMESPACE", "from-env")
    monkeypatch.setenv("RHC_REDIS_URL", "redis://env-host:6379")
    monkeypatch.setenv("RHC_SECRET", SECRET)
    # When the caller passes another namespace (and None for the URL: "not given")
    settings = resolve_settings(namespace="from-argument", redis_url=None)
    # Then the argument wins, and the environment fills in what was not given
    assert settings.namespace == "from-argument"
    assert settings.redis_url == "redis://env-host:6379"
    assert settings.secret == SECRET.encode()


def test_the_environment_beats_the_config_file(tmp_path, monkeypatch):
    config = private_file(
        tmp_path / "rhc.toml",
        f'redis_url = "redis://file-host:6379"\nnamespace = "from-file"\nsecret = "{SECRET}"\n',
    )
    use_config_file(monkeypatch, config)
    monkeypatch.setenv("RHC_NAMESPACE", "from-env")

    settings = resolve_settings()

    assert settings.namespace == "from-env"
    assert settings.redis_url == "redis://file-host:6379"
    assert settings.secret == SECRET.encode()


def test_the_config_file_beats_the_legacy_config_py(tmp_path, monkeypatch):
    # Given both a config file and the original tool's ./config.py (the cwd is tmp_path)
    private_file(
        tmp_path / "config.py",
        f'REDIS_URL = "redis://legacy-host:6379"\nRHC_SECRET = "{OTHER_SECRET}"\n',
    )
    config = private_file(tmp_path / "rhc.toml", 'redis_url = "redis://file-host:6379"\n')
    use_config_file(monkeypatch, config)

    settings = resolve_settings()

    # Then the file's URL wins, and config.py still supplies the secret the file lacks
    assert settings.redis_url == "redis://file-host:6379"
    assert settings.secret == OTHER_SECRET.encode()


def test_the_legacy_config_py_is_read_without_being_executed(tmp_path):
    # Given a config.py that would leave a trace and then fail if it were run
    private_file(
        tmp_path / "config.py",
        "import pathlib\n"
        "pathlib.Path('executed').touch()\n"
        "REDIS_URL = 'redis://legacy-host:6379'\n"
        f"RHC_SECRET = '{SECRET}'\n"
        "OTHER = 1\n"
        "raise RuntimeError('config.py was executed')\n",
    )

    settings = resolve_settings()

    assert settings.redis_url == "redis://legacy-host:6379"
    assert settings.secret == SECRET.encode()
    assert not (tmp_path / "executed").exists()


def test_a_computed_redis_url_in_config_py_is_refused(tmp_path):
    private_file(tmp_path / "config.py", "import os\nREDIS_URL = os.environ['X']\n")

    with pytest.raises(ConfigurationError, match="REDIS_URL must be a plain string literal"):
        resolve_settings(secret=SECRET)


# --- files that are refused ---------------------------------------------------------------------


def test_a_config_file_with_a_secret_readable_by_others_is_refused(tmp_path, monkeypatch):
    tmp_path.chmod(0o755)  # a directory others may enter, like a home directory
    config = tmp_path / "rhc.toml"
    config.write_text(f'redis_url = "redis://host:6379"\nsecret = "{SECRET}"\n')
    config.chmod(0o644)
    use_config_file(monkeypatch, config)

    with pytest.raises(ConfigurationError, match="chmod 600") as caught:
        resolve_settings()
    assert SECRET not in str(caught.value)


def test_a_config_file_with_a_password_in_its_url_readable_by_others_is_refused(tmp_path):
    tmp_path.chmod(0o755)  # a directory others may enter, like a home directory
    config = tmp_path / "rhc.toml"
    config.write_text('redis_url = "redis://:hunter2hunter2@host:6379"\n')
    config.chmod(0o640)

    with pytest.raises(ConfigurationError, match="chmod 600") as caught:
        read_config_file(config)
    assert "hunter2hunter2" not in str(caught.value)


def test_a_legacy_config_py_with_a_secret_readable_by_others_is_refused(tmp_path):
    tmp_path.chmod(0o755)  # a directory others may enter, like a home directory
    legacy = tmp_path / "config.py"
    legacy.write_text(f'REDIS_URL = "redis://host:6379"\nRHC_SECRET = "{SECRET}"\n')
    legacy.chmod(0o644)

    with pytest.raises(ConfigurationError, match="chmod 600"):
        resolve_settings()


def test_a_readable_config_file_in_a_private_directory_is_accepted(tmp_path):
    # Given a 0644 secrets file in a 0700 directory, as condor's job scratch directory is
    tmp_path.chmod(0o700)
    config = tmp_path / "rhc.toml"
    config.write_text(f'redis_url = "redis://host:6379"\nsecret = "{SECRET}"\n')
    config.chmod(0o644)
    # Then nobody else can reach it, and it is read
    assert read_config_file(config)["secret"] == SECRET


def test_a_config_file_without_secrets_may_be_readable_by_others(tmp_path):
    config = tmp_path / "rhc.toml"
    config.write_text('redis_url = "redis://host:6379"\nnamespace = "shared"\n')
    config.chmod(0o644)

    assert read_config_file(config) == {"redis_url": "redis://host:6379", "namespace": "shared"}


def test_an_unknown_key_in_the_config_file_is_refused_by_name(tmp_path):
    config = private_file(tmp_path / "rhc.toml", 'redis_url = "redis://h:1"\nheartbeat_tll = 5\n')

    with pytest.raises(ConfigurationError, match="heartbeat_tll"):
        read_config_file(config)


def test_a_config_file_that_is_not_toml_is_refused(tmp_path):
    config = private_file(tmp_path / "rhc.toml", "REDIS_URL = redis://h:1\n")

    with pytest.raises(ConfigurationError, match="not valid TOML"):
        read_config_file(config)


# --- values that are refused --------------------------------------------------------------------


def test_a_too_short_secret_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv("RHC_SECRET", "tooshort-1234")

    with pytest.raises(ConfigurationError, match="at least 16") as caught:
        resolve_settings(redis_url="redis://host:6379")
    message = str(caught.value)
    assert "tooshort-1234" not in message
    assert "secret" in message and "environment" in message


def test_an_invalid_number_is_refused_naming_the_setting_and_its_origin(monkeypatch):
    monkeypatch.setenv("RHC_MAX_ATTEMPTS", "many")

    with pytest.raises(ConfigurationError, match="max_attempts='many' from environment"):
        resolve_settings(redis_url="redis://host:6379", secret=SECRET)


def test_an_invalid_namespace_is_refused():
    for namespace in ("", "has space", "colon:separated", "x" * 65):
        with pytest.raises(ConfigurationError, match="namespace"):
            Settings(redis_url="redis://h:1", secret=SECRET.encode(), namespace=namespace)
    # The allowed punctuation and the longest allowed name pass
    Settings(redis_url="redis://h:1", secret=SECRET.encode(), namespace="a_b.c@d-e")
    Settings(redis_url="redis://h:1", secret=SECRET.encode(), namespace="x" * 64)


def test_the_heartbeat_ttl_must_exceed_twice_the_interval():
    common = {"redis_url": "redis://h:1", "secret": SECRET.encode(), "namespace": "ns"}

    with pytest.raises(ConfigurationError, match="twice heartbeat_interval"):
        Settings(**common, heartbeat_interval=5.0, heartbeat_ttl=10.0)
    settings = Settings(**common, heartbeat_interval=5.0, heartbeat_ttl=10.5)
    assert settings.heartbeat_ttl == 10.5


def test_a_missing_url_error_says_what_to_set():
    with pytest.raises(ConfigurationError) as caught:
        resolve_settings(secret=SECRET)
    assert "RHC_REDIS_URL" in str(caught.value)
    assert "RHC_CONFIG_FILE" in str(caught.value)


def test_a_missing_secret_error_says_what_to_set():
    with pytest.raises(ConfigurationError) as caught:
        resolve_settings(redis_url="redis://host:6379")
    assert "RHC_SECRET" in str(caught.value)
    assert "RHC_CONFIG_FILE" in str(caught.value)


def test_a_secret_is_optional_when_not_required():
    settings = resolve_settings(redis_url="redis://host:6379", require_secret=False)

    assert settings.secret == b""


def test_a_url_with_another_scheme_is_refused_with_its_password_masked():
    with pytest.raises(ConfigurationError, match="redis://") as caught:
        resolve_settings(redis_url="http://:hunter2hunter2@host:6379", secret=SECRET)
    assert "hunter2hunter2" not in str(caught.value)


# --- secrets never show -------------------------------------------------------------------------


def test_the_repr_of_settings_shows_neither_password_nor_secret():
    settings = Settings(
        redis_url="redis://user:url-password@host:6379/0",
        secret=SECRET.encode(),
        namespace="ns",
        redis_password="field-password",
    )

    text = repr(settings)

    assert "url-password" not in text and "field-password" not in text and SECRET not in text
    assert "redis://user:***@host:6379/0" in text and "secret=<set>" in text


def test_mask_url_replaces_the_password_and_keeps_the_rest():
    assert mask_url("redis://user:pw123@host:6379/2") == "redis://user:***@host:6379/2"
    assert mask_url("rediss://:pw123@host:6380") == "rediss://:***@host:6380"
    assert mask_url("redis://host:6379") == "redis://host:6379"


def test_strip_password_drops_the_password_and_keeps_the_user():
    assert strip_password("redis://user:pw123@host:6379/2") == "redis://user@host:6379/2"
    assert strip_password("redis://:pw123@host:6379") == "redis://host:6379"
    assert strip_password("redis://host:6379") == "redis://host:6379"


# --- writing ------------------------------------------------------------------------------------


def test_write_config_file_creates_a_file_only_its_owner_can_read(tmp_path):
    # Given an existing file readable by everyone
    path = tmp_path / "rhc.toml"
    path.write_text("")
    path.chmod(0o644)
    previous = os.umask(0)
    try:
        write_config_file(path, {"redis_url": "redis://h:1", "secret": SECRET})
    finally:
        os.umask(previous)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_written_config_file_reads_back_the_same_values(tmp_path, monkeypatch):
    values = {
        "redis_url": "redis://host:6379/1",
        "redis_password": 'quote"back\\slash',
        "secret": SECRET.encode(),
        "namespace": "round-trip",
        "heartbeat_interval": 0.25,
        "max_attempts": 5,
    }
    path = write_config_file(tmp_path / "rhc.toml", {**values, "result_ttl": None})

    read = read_config_file(path)

    assert read == {**values, "secret": SECRET}
    use_config_file(monkeypatch, path)
    settings = resolve_settings()
    assert settings.redis_password == 'quote"back\\slash'
    assert settings.secret == SECRET.encode()
    assert settings.heartbeat_interval == 0.25 and settings.max_attempts == 5


def test_write_config_file_refuses_an_unknown_key(tmp_path):
    with pytest.raises(ConfigurationError, match="colour"):
        write_config_file(tmp_path / "rhc.toml", {"colour": "blue"})
    assert not (tmp_path / "rhc.toml").exists()


def test_a_password_in_the_url_query_is_masked_and_counts_as_a_password():
    url = "redis://host:6379/0?password=hunter2hunter2"
    assert "hunter2hunter2" not in mask_url(url)
    assert "hunter2hunter2" not in strip_password(url)
    assert url_has_password(url)
    assert "hunter2hunter2" not in repr(Settings(redis_url=url, secret=b"s" * 32, namespace="ns"))


def test_a_config_file_with_a_password_in_its_url_query_readable_by_others_is_refused(tmp_path):
    tmp_path.chmod(0o755)  # a directory others may enter, like a home directory
    config = tmp_path / "rhc.toml"
    config.write_text('redis_url = "redis://host:6379?password=hunter2hunter2"\n')
    config.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        read_config_file(config)


def test_masking_keeps_the_brackets_of_an_ipv6_host():
    assert mask_url("redis://:pw@[::1]:6379") == "redis://:***@[::1]:6379"
    assert strip_password("redis://:pw@[::1]:6379") == "redis://[::1]:6379"


def test_a_broken_config_py_is_not_read_when_explicit_settings_suffice(tmp_path):
    (tmp_path / "config.py").write_text("this is not python (\n")
    settings = resolve_settings(redis_url="redis://h:1", secret="s" * 32)
    assert settings.redis_url == "redis://h:1"


def test_the_batch_environment_is_what_condor_tells_the_job(monkeypatch, tmp_path):
    monkeypatch.setenv("_CONDOR_JOB_AD", str(tmp_path / ".job.ad"))
    monkeypatch.setenv("_CONDOR_SCRATCH_DIR", str(tmp_path))
    monkeypatch.setenv("TMPDIR", "/elsewhere")
    assert batch_environment() == BatchEnvironment(tmp_path / ".job.ad", tmp_path)


def test_outside_condor_there_is_no_job_ad_and_the_scratch_is_the_temporary_directory(
    monkeypatch,
):
    monkeypatch.setenv("_CONDOR_JOB_AD", "")
    monkeypatch.delenv("_CONDOR_SCRATCH_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", "/var/tmp/mine")
    assert batch_environment() == BatchEnvironment(None, Path("/var/tmp/mine"))
    monkeypatch.delenv("TMPDIR")
    assert batch_environment().scratch_dir == Path("/tmp")


def test_a_worker_started_here_inherits_no_setting_of_the_notebook(monkeypatch):
    monkeypatch.setenv("RHC_TASK_KEY", "ed25519-private:notebook-only")
    monkeypatch.setenv("RHC_REDIS_PASSWORD", "manager-password")
    monkeypatch.setenv("RHC_SAMPLES", "/data")

    environment = worker_environment(RHC_CONFIG_FILE="/w/worker.toml")

    assert "RHC_TASK_KEY" not in environment and "RHC_REDIS_PASSWORD" not in environment
    assert environment["RHC_SAMPLES"] == "/data"
    assert environment["RHC_CONFIG_FILE"] == "/w/worker.toml"
