# SPDX-License-Identifier: BSD-3-Clause
# JupyterLab in the rhc manager image: never an open server. The token comes from a file (a
# compose secret), never from the command line or the environment, which `docker inspect` shows.
import os
import shutil
from pathlib import Path

TOKEN_FILE = Path("/run/secrets/jupyter_token")

c = get_config()  # noqa: F821 (provided by Jupyter when it reads this file)
token = TOKEN_FILE.read_text().strip() if TOKEN_FILE.is_file() else ""
if len(token) < 16:
    raise SystemExit(f"no Jupyter token in {TOKEN_FILE}: refusing to start an open server")
c.IdentityProvider.token = token
c.ServerApp.allow_remote_access = True
c.ServerApp.password_required = False
c.ServerApp.open_browser = False
# The stack runs Jupyter as the host user, so the mounted notebooks stay theirs; that is root
# only when the host user is root, and then the container holds nothing but this server.
c.ServerApp.allow_root = os.getuid() == 0
# Terminals: bash when the image has it (Debian's does), as a login shell like Jupyter's own
# default; /etc/profile.d/rhc.sh keeps the venv, and `rhc`, on its PATH.
bash = shutil.which("bash")
if bash:
    c.ServerApp.terminado_settings = {"shell_command": [bash, "-l"]}
# jupyter-server-proxy: /proxy/dashboard:8787/ reaches the stack's dashboard service
c.ServerProxy.host_allowlist = ["localhost", "127.0.0.1", "dashboard"]
