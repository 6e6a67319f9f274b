# SPDX-License-Identifier: BSD-3-Clause
"""A real XRootD server (Debian's xrootd-server) exporting a directory on loopback, for
root:// tests and benchmarks. It refuses to run as root, so it runs as `daemon` then: in a run
directory of its own, exporting hard links to the files (the directories above them, such as
pytest's, need not be open to that user)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from rhc.errors import ConfigurationError, RhcError
from rhc.local.ports import free_port

_RUN_AS = "daemon"


class XRootDServer:
    """xrootd exporting `root` as /store on 127.0.0.1 (so that a CMS logical file name,
    /store/..., finds it through a redirector list), one process stopped by its PID."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="rhc-xrootd-"))
        self.process: subprocess.Popen | None = None

    def url(self, path: Path) -> str:
        return f"root://127.0.0.1:{self.port}//store/{path.relative_to(self.root)}"

    @property
    def address(self) -> str:
        """What a redirector list names this server by."""
        return f"root://127.0.0.1:{self.port}/"

    def start(self) -> XRootDServer:
        executable = shutil.which("xrootd") or "/usr/bin/xrootd"
        if not Path(executable).exists():
            raise ConfigurationError(
                "xrootd is not installed: `apt-get install xrootd-server` (Debian)"
            )
        config = self.directory / "xrootd.cfg"
        config.write_text(
            f"xrd.port {self.port}\n"
            "all.export /store\n"
            f"oss.localroot {self._localroot()}\n"
            "xrd.allow host 127.0.0.1\n"
        )
        command = [executable, "-c", str(config), "-l", str(self.directory / "xrootd.log")]
        command += ["-s", str(self.directory / "xrootd.pid"), "-n", f"rhc{self.port}"]
        if os.getuid() == 0:
            command += ["-R", _RUN_AS]
            self.directory.chmod(0o755)
            _give_to(_RUN_AS, self.directory)
        self.process = subprocess.Popen(
            command, cwd=self.directory, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_until_listening()
        return self

    def _localroot(self) -> Path:
        """oss.localroot: a directory whose store/ holds the files of `root` (all.export /store),
        hard links where they can be (a copy on another file system)."""
        localroot = self.directory / "localroot"
        for source in self.root.rglob("*"):
            if source.is_file():
                target = localroot / "store" / source.relative_to(self.root)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copy2(source, target)
        return localroot

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RhcError(
                        f"xrootd exited: {self.process.stderr.read().decode()[-2000:]} "
                        f"(log: {self.directory / 'xrootd.log'})"
                    ) from None
                if time.monotonic() > deadline:
                    raise RhcError(f"xrootd did not listen on port {self.port}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def _give_to(user: str, directory: Path) -> None:
    """Let `user` write its run directory (xrootd drops root's privileges on start)."""
    account = pwd.getpwnam(user)
    for path in (directory, *directory.rglob("*")):
        os.lchown(path, account.pw_uid, account.pw_gid)
