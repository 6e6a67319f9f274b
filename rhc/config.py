# SPDX-License-Identifier: BSD-3-Clause
"""Settings, resolved in one place: explicit arguments, then RHC_* environment variables,
then the config file named by RHC_CONFIG_FILE, then REDIS_URL in ./config.py.

This is the one module (with the command line) that reads the environment: settings, the
samples directory, what HTCondor tells a job (batch_environment) and what child processes
inherit. Nothing here runs at import time; constructors and the CLI call resolve_settings().
Secrets (the Redis password, the rhc secret, the task key) are never shown by repr() or in
messages.
"""

from __future__ import annotations

import ast
import getpass
import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from rhc import defaults
from rhc.errors import ConfigurationError
from rhc.urls import mask_url, url_has_password
from rhc.values import PARSERS

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

CONFIG_FILE_VARIABLE = "RHC_CONFIG_FILE"
LEGACY_CONFIG = "config.py"
_SECRET_FIELDS = ("redis_password", "secret", "task_key", "pool_token")
_NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class Settings:
    """Everything a manager or worker needs to reach Redis and trust what it reads."""

    redis_url: str = field(repr=False)
    secret: bytes = field(repr=False)
    namespace: str
    task_key: str | None = field(default=None, repr=False)
    """The notebook side's private Ed25519 key (rhc.wire.signing), that signs what workers run;
    never in a worker's config."""
    task_public_key: str | None = None
    """The public half of the task key: what workers verify tasks with."""
    previous_task_public_key: str | None = None
    """During a key rotation, the public key before task_public_key, still accepted..."""
    previous_task_public_key_until: float | None = None
    """... until this time (epoch seconds), if set; after it, refused."""
    redis_username: str | None = None
    """The Redis ACL user to log in as (see rhc.wire.acl); without one, the default user."""
    redis_password: str | None = field(default=None, repr=False)
    redis_ca: str | None = field(default=None, repr=False)
    """The PEM text of the CA that signed the Redis server's TLS certificate (rediss://); without
    it, the system's CAs verify the server."""
    heartbeat_interval: float = defaults.DEFAULT_HEARTBEAT_INTERVAL
    heartbeat_ttl: float = defaults.DEFAULT_HEARTBEAT_TTL
    max_attempts: int = defaults.DEFAULT_MAX_ATTEMPTS
    max_payload_bytes: int = defaults.DEFAULT_MAX_PAYLOAD_BYTES
    reconnect_timeout: float = defaults.DEFAULT_RECONNECT_TIMEOUT
    result_ttl: float = defaults.DEFAULT_RESULT_TTL
    worker_config: str = ""
    """The config file `rhc condor submit` sends to workers: their own user, never this one."""
    condor_pool: str = ""
    """Where `rhc condor` submits workers: "" for the local schedd through htcondor2, or the
    http:// URL of a mini pool (`rhc minicondor serve`)."""
    pool_token: str | None = field(default=None, repr=False)
    pool_token_file: str = ""
    """The mini pool's API token, or its 0600 file (`rhc minicondor serve --token-file`)."""
    x509_proxy: str = ""
    bearer_token_file: str = ""
    """Grid credentials `rhc condor submit` sends with each worker job: an x509 proxy, a WLCG
    bearer token; files (0600), never values."""
    dashboard_url: str = ""
    """Where people open the namespace's dashboard (`rhc dashboard`), for notebooks to link."""
    xrootd_redirectors: tuple[str, ...] = ()
    """XRootD redirectors (root://host/) a NanoAOD run tries a file at in turn, when its own
    location does not answer: e.g. root://cmsxrootd.fnal.gov/, root://xrootd-cms.infn.it/."""

    def __post_init__(self) -> None:
        if not _NAMESPACE_PATTERN.match(self.namespace):
            raise ConfigurationError(
                f"namespace {self.namespace!r} is not valid: use 1-64 letters, digits, '_.@-'"
            )
        if self.heartbeat_ttl <= 2 * self.heartbeat_interval:
            raise ConfigurationError(
                f"heartbeat_ttl ({self.heartbeat_ttl} s) must exceed twice heartbeat_interval "
                f"({self.heartbeat_interval} s), or live workers would be declared dead"
            )
        if self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, not {self.max_attempts}")

    @property
    def masked_url(self) -> str:
        """The Redis URL with any password replaced by ***, safe to log."""
        return mask_url(self.redis_url)

    def __repr__(self) -> str:
        secret = "<set>" if self.secret else "<unset>"
        url, namespace = self.masked_url, self.namespace
        return f"Settings(redis_url={url!r}, namespace={namespace!r}, secret={secret})"


def resolve_settings(
    *, require_secret: bool = True, config_file: Path | None = None, **explicit: object
) -> Settings:
    """Build Settings from the sources in order of precedence.

    Parameters:
      require_secret: raise if no secret is found (everything that sends or runs tasks needs one).
      config_file: the config file to read, instead of the one RHC_CONFIG_FILE names.
      explicit: setting values given by the caller; None means "not given".

    Raises:
      ConfigurationError: a setting is missing, malformed, or a secrets file is readable by others.
    """
    unknown = set(explicit) - _FIELD_NAMES
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s): {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_FIELD_NAMES))}"
        )
    sources: list[tuple[str, Mapping[str, object]]] = [
        ("argument", {k: v for k, v in explicit.items() if v is not None}),
        ("environment", _from_environment()),
    ]
    config_file = config_file or config_file_path()
    if config_file:
        sources.append((str(config_file), read_config_file(Path(config_file))))
    found = {name for _, source in sources for name in source}
    legacy = Path(LEGACY_CONFIG)
    # The original tool's ./config.py is read only for what nothing else gave: an unrelated
    # project's config.py in the working directory must not break explicit settings.
    if not {"redis_url", "secret"} <= found and legacy.is_file():
        sources.append((str(legacy.resolve()), _read_legacy_config(legacy)))

    values: dict[str, object] = {}
    for name in _FIELD_NAMES:
        for origin, source in sources:
            if name in source:
                values[name] = _parse(name, source[name], origin)
                break
    return _build(values, require_secret)


def _build(values: dict[str, object], require_secret: bool) -> Settings:
    if "redis_url" not in values:
        raise ConfigurationError(
            "no Redis URL: pass one (Manager('redis://host:6379')), set RHC_REDIS_URL, or point "
            f"{CONFIG_FILE_VARIABLE} at a config file (`rhc init` writes one)"
        )
    url = str(values["redis_url"])
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"Redis URL {mask_url(url)!r} must start with redis://, rediss:// or unix://"
        )
    if not values.get("secret"):
        if require_secret:
            raise ConfigurationError(
                "no rhc secret: the notebook and the workers must share one to sign tasks. Set "
                f"RHC_SECRET, or `secret` in the file named by {CONFIG_FILE_VARIABLE} "
                "(`rhc init` writes one with a fresh secret)"
            )
        values["secret"] = b""
    values.setdefault("namespace", default_namespace())
    return Settings(**values)


def resolve_pool_token(*, config_file: Path | None = None) -> str | None:
    """pool_token, else what the file pool_token_file names holds, from the environment then
    the config file: what `rhc minicondor` clients need, without the Redis settings."""
    sources = [_from_environment()]
    if config_file := config_file or config_file_path():
        sources.append(read_config_file(Path(config_file)))
    token, token_file = (
        next((str(source[name]) for source in sources if name in source), "")
        for name in ("pool_token", "pool_token_file")
    )
    return pool_token(token, token_file)


def pool_token(token: str | None, token_file: str) -> str | None:
    """The token, else the content of token_file (which must be private), else None."""
    if token or not token_file:
        return token or None
    return token_from_file(Path(token_file), "pool_token_file")


def token_from_file(path: Path, setting: str) -> str:
    """The token a private file holds; `setting`: what names the file, for the errors.

    Raises:
      ConfigurationError: the file cannot be read, is readable by others, or is empty.
    """
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"{setting} {path}: {exc.strerror}") from exc
    _check_private(path, {"pool_token": text or "empty"})
    if not text:
        raise ConfigurationError(f"{setting} {path} is empty")
    return text


def dashboard_token(path: Path | None) -> tuple[Path, str]:
    """The dashboard's token file (by default in ~/.config/rhc) and its token, written with a
    new random one where there is no file yet."""
    path = path or Path.home() / ".config" / "rhc" / "dashboard_token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(path, new_secret() + "\n")
    return path, token_from_file(path, "the dashboard's token file")


def user_name() -> str | None:
    """The user this process runs as ($LOGNAME, $USER, or the passwd entry), if there is one."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry: arbitrary uids in containers
        return None


def default_namespace() -> str:
    """The user name, as the original tool keyed its queues by $USER."""
    user = user_name() or f"uid{os.getuid()}"
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", user)[:64] or "rhc"


def config_file_path() -> Path | None:
    """The config file RHC_CONFIG_FILE names, if any."""
    named = os.environ.get(CONFIG_FILE_VARIABLE)
    return Path(named) if named else None


def samples_directory() -> Path:
    """Where the real NanoAOD samples are: RHC_SAMPLES, else ../shared/data/nanoaod beside the
    repository this package runs from (the data is upstream's and is never committed)."""
    configured = os.environ.get("RHC_SAMPLES")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "nanoaod"


@dataclass(frozen=True)
class BatchEnvironment:
    """What the batch system tells a job about itself in its environment: the file HTCondor
    writes the job's ClassAd to (_CONDOR_JOB_AD) and the job's scratch directory
    (_CONDOR_SCRATCH_DIR; outside condor, the temporary directory)."""

    job_ad: Path | None
    scratch_dir: Path


def batch_environment() -> BatchEnvironment:
    """The batch environment of this process."""
    job_ad = os.environ.get("_CONDOR_JOB_AD")
    scratch = os.environ.get("_CONDOR_SCRATCH_DIR") or os.environ.get("TMPDIR") or "/tmp"
    return BatchEnvironment(Path(job_ad) if job_ad else None, Path(scratch))


def child_environment(**overrides: str) -> dict[str, str]:
    """The environment a child process of this one gets: this process's, with overrides."""
    return {**os.environ, **overrides}


def worker_environment(**overrides: str) -> dict[str, str]:
    """The environment of a worker this process starts: its own, without the RHC_* settings
    (a worker reads its own config file, never the notebook's task key or user), with
    overrides."""
    settings = {"RHC_" + name.upper() for name in _FIELD_NAMES}
    inherited = {name: value for name, value in os.environ.items() if name not in settings}
    return {**inherited, **overrides}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def read_config_file(path: Path) -> dict[str, object]:
    """Read a TOML config file, refusing one that holds secrets and is readable by others."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from exc
    unknown = set(data) - _FIELD_NAMES
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(sorted(unknown))} in {path}; "
            f"known: {', '.join(sorted(_FIELD_NAMES))}"
        )
    _check_private(path, data)
    return data


def write_config_file(path: Path, values: Mapping[str, object]) -> Path:
    """Write values as a TOML config file readable only by its owner (mode 0600)."""
    unknown = set(values) - _FIELD_NAMES
    if unknown:
        raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    lines = [f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None]
    return write_private(path, "\n".join(lines) + "\n")


def write_private(path: Path, content: str | bytes) -> Path:
    """Write a file only its owner may read (mode 0600), whole or not at all (no reader sees
    it half written)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content.encode() if isinstance(content, str) else content)
    os.replace(temporary, path)
    return path


def _toml_value(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(str(value))


def _check_private(path: Path, data: Mapping[str, object]) -> None:
    holds_secret = any(data.get(name) for name in _SECRET_FIELDS) or url_has_password(
        str(data.get("redis_url", "") or data.get("REDIS_URL", ""))
    )
    if not holds_secret:
        return
    info = path.stat()
    # A file in a directory nobody else may enter is private whatever its mode: condor's job
    # scratch directory is such a place, and file transfer does not always keep modes.
    directory_private = not path.resolve().parent.stat().st_mode & (stat.S_IXGRP | stat.S_IXOTH)
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and not directory_private:
        raise ConfigurationError(
            f"{path} holds a password or secret but is readable by others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}): run `chmod 600 {path}`"
        )
    if info.st_uid != os.getuid():
        raise ConfigurationError(
            f"{path} holds a password or secret but belongs to uid {info.st_uid}, "
            f"not to this process (uid {os.getuid()})"
        )


def _read_legacy_config(path: Path) -> dict[str, object]:
    """Read REDIS_URL (and RHC_SECRET) from the original tool's ./config.py without running it."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        raise ConfigurationError(f"{path} is not valid Python: {exc}") from exc
    found: dict[str, object] = {}
    wanted = {"REDIS_URL": "redis_url", "RHC_SECRET": "secret"}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in wanted:
                try:
                    found[wanted[target.id]] = ast.literal_eval(node.value)
                except ValueError as exc:
                    raise ConfigurationError(
                        f"{path}: {target.id} must be a plain string literal"
                    ) from exc
    _check_private(path, found)
    return found


def _from_environment() -> dict[str, object]:
    return {
        name: os.environ[variable]
        for name in _FIELD_NAMES
        if (variable := "RHC_" + name.upper()) in os.environ and os.environ[variable] != ""
    }


def _parse(name: str, value: object, origin: str) -> object:
    parser = PARSERS[name]
    try:
        return parser(value)
    except (TypeError, ValueError) as exc:
        shown = "<hidden>" if name in (*_SECRET_FIELDS, "redis_ca") else repr(value)
        raise ConfigurationError(f"setting {name}={shown} from {origin} is invalid: {exc}") from exc


_FIELD_NAMES = frozenset(f.name for f in fields(Settings))
assert set(PARSERS) == _FIELD_NAMES
