# SPDX-License-Identifier: BSD-3-Clause
"""What a Redis for rhc needs, in a directory only its owner may enter: the ACL users
(rhc.wire.acl: the default user off; admin, monitor, and a manager and a worker user per
namespace), TLS material when it speaks TLS, and a config fragment that switches both on with
the hardening beside them; and the config files of its clients. `rhc local`, the test fixtures
and the compose stack (`rhc redis setup`) all start their Redis from it.

Passwords are random and written in clear only to the client config files (0600); the ACL file
holds their SHA-256. A namespace's notebook config holds its task key (rhc.wire.signing); its
workers' config only the public half, and neither the manager user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from rhc.config import new_secret, write_config_file, write_private
from rhc.errors import BrokerError
from rhc.local.tls import TlsFiles, generate
from rhc.wire.acl import ADMIN, MANAGER, MONITOR, WORKER, User, acl_line, rules, user_name
from rhc.wire.signing import TaskKey, new_task_key

HARDENING = (
    "enable-debug-command no",
    "enable-module-command no",
    "enable-protected-configs no",
)
"""What no client may do, whatever its user: DEBUG, MODULE, or change protected settings."""


def new_user(role: str, namespace: str | None = None) -> User:
    return User(user_name(role, namespace), new_secret())


@dataclass(frozen=True)
class NamespaceUsers:
    """The two users of one namespace: the notebook side's, and the workers'."""

    manager: User
    worker: User

    @classmethod
    def new(cls, namespace: str) -> NamespaceUsers:
        return cls(new_user(MANAGER, namespace), new_user(WORKER, namespace))

    def acl_users(self, namespace: str) -> list[tuple[User, str, str]]:
        return [(self.manager, MANAGER, namespace), (self.worker, WORKER, namespace)]


@dataclass(frozen=True)
class ServerFiles:
    """The files a redis-server reads from one directory: security.conf (to include),
    users.acl and tls/. `seen_at`: where the server sees that directory, if it runs elsewhere
    (in a container)."""

    directory: Path
    seen_at: Path | None = None

    @property
    def config(self) -> Path:
        return self.directory / "security.conf"

    @property
    def acl(self) -> Path:
        return self.directory / "users.acl"

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles.in_directory(self.directory / "tls")

    def exist(self) -> bool:
        return self.config.is_file() and self.acl.is_file()

    def write(
        self,
        *,
        port: int,
        users: Iterable[tuple[User, str, str | None]],
        tls_hosts: Sequence[str] = (),
    ) -> None:
        """Write them: users are (user, role, namespace); tls_hosts, the names in the
        certificate of a TLS-only server (none: plain TCP)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        seen = self.seen_at or self.directory
        if tls_hosts:
            generate(self.tls.ca.parent, tls_hosts)
            listen = TlsFiles.in_directory(seen / "tls").redis_config(port)
        else:
            listen = [f"port {port}"]
        lines = [*listen, f"aclfile {seen / self.acl.name}", *HARDENING]
        write_private(self.config, "\n".join(lines) + "\n")
        acl = ["user default off", *(acl_line(*user) for user in users)]
        write_private(self.acl, "\n".join(acl) + "\n")


def add_namespace(admin: redis.Redis, namespace: str) -> NamespaceUsers:
    """Create (or renew) the users of a namespace on a running Redis, through an admin client,
    and save them to its ACL file, so that a restart keeps them."""
    users = NamespaceUsers.new(namespace)
    try:
        for user, role, _ in users.acl_users(namespace):
            rule = rules(role, namespace)
            admin.execute_command("ACL", "SETUSER", user.name, "reset", *rule, f">{user.password}")
        admin.execute_command("ACL", "SAVE")
    except redis.ResponseError as exc:
        raise BrokerError(
            f"Redis refused to create the users of namespace {namespace!r}: {exc}. It takes the "
            "admin user (admin.toml), and an ACL file Redis may write (its aclfile setting)"
        ) from exc
    return users


def client_config(
    url: str, user: User, *, namespace: str, ca: str | None = None, **settings: object
) -> dict[str, object]:
    """The settings of a client of one role (for write_config_file)."""
    return {
        "redis_url": url,
        "redis_username": user.name,
        "redis_password": user.password,
        "redis_ca": ca,
        "namespace": namespace,
        **settings,
    }


def namespace_configs(
    url: str,
    users: NamespaceUsers,
    *,
    namespace: str,
    worker_file: Path,
    ca: str | None = None,
    **settings: object,
) -> tuple[dict[str, object], dict[str, object]]:
    """The settings of a namespace's two sides, with fresh keys: the notebook's (its manager
    user, the secret, the task key, and worker_file, where the workers' config is written) and
    the workers' (its worker user, the secret, the task key's public half). settings apply to
    both."""
    secret, task_key = new_secret(), new_task_key()
    common = {"namespace": namespace, "ca": ca, "secret": secret, **settings}
    notebook = client_config(
        url, users.manager, task_key=task_key, worker_config=str(worker_file), **common
    )
    public = TaskKey(task_key).public.text
    worker = client_config(url, users.worker, task_public_key=public, **common)
    return notebook, worker


def write_namespace_configs(
    url: str, users: NamespaceUsers, *, notebook_file: Path, worker_file: Path, **settings: object
) -> None:
    """Write namespace_configs() to notebook_file and worker_file (0600)."""
    notebook, worker = namespace_configs(url, users, worker_file=worker_file, **settings)
    write_config_file(notebook_file, notebook)
    write_config_file(worker_file, worker)


def operator_users() -> tuple[User, User]:
    """The users every server has, whatever its namespaces: admin and monitor."""
    return new_user(ADMIN), new_user(MONITOR)


def set_up(
    directory: Path,
    *,
    namespace: str,
    hosts: Sequence[str],
    port: int,
    tls: bool = True,
    seen_at: Path | None = None,
    **notebook_settings: object,
) -> Path:
    """Write everything a new Redis for rhc needs into directory: redis/ (what the server
    reads, seen by it at `seen_at`), and one config file per client: rhc.toml (the notebook's
    manager user, with notebook_settings), worker.toml, monitor.toml and admin.toml. The
    clients dial hosts[0]:port. Returns the directory."""
    admin, monitor = operator_users()
    users = NamespaceUsers.new(namespace)
    files = ServerFiles(directory / "redis", seen_at)
    files.write(
        port=port,
        users=[(admin, ADMIN, None), (monitor, MONITOR, None), *users.acl_users(namespace)],
        tls_hosts=hosts if tls else (),
    )
    url = f"{'rediss' if tls else 'redis'}://{hosts[0]}:{port}"
    ca = files.tls.ca.read_text() if tls else None
    notebook, worker = namespace_configs(
        url, users, namespace=namespace, worker_file=directory / "worker.toml", ca=ca
    )
    write_config_file(directory / "rhc.toml", {**notebook, **notebook_settings})
    write_config_file(directory / "worker.toml", worker)
    for name, user in (("monitor.toml", monitor), ("admin.toml", admin)):
        write_config_file(directory / name, client_config(url, user, namespace=namespace, ca=ca))
    return directory
