#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The build stage of the Python images, in two steps so that a change to rhc's code does not
# reinstall its dependencies:
#   install.sh deps [EXTRA...]   a venv at /opt/rhc with rhc's dependencies and those of the
#                                extras named, at the versions of images/constraints.txt
#   install.sh project           rhc itself, then pip leaves the venv
# Expects the build context's README.md, pyproject.toml, rhc/ and images/.build/ca.crt in /src.
set -eu
export PIP_CERT=/src/ca.crt PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_QUIET=1
pip=/opt/rhc/bin/pip
case "${1:-}" in
    deps)
        shift
        python3 -m venv /opt/rhc
        $pip install "pip>=25"
        /opt/rhc/bin/python - "$@" >/src/requirements.txt <<'PY'
import sys
import tomllib

with open("/src/pyproject.toml", "rb") as handle:
    project = tomllib.load(handle)["project"]
extras = [req for extra in sys.argv[1:] for req in project["optional-dependencies"][extra]]
print("\n".join([*project["dependencies"], *extras]))
PY
        $pip install --requirement /src/requirements.txt --constraint /src/constraints.txt
        ;;
    project)
        $pip install --no-deps /src
        $pip uninstall --yes pip setuptools
        ;;
    *)
        echo "usage: $0 deps [EXTRA...] | project" >&2
        exit 2
        ;;
esac
