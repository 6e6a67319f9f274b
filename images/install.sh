#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The build stage of the Python images, in two steps so that a change to rhc's code (or to its
# README) does not reinstall its dependencies:
#   install.sh deps FILE   a venv at /opt/rhc with the requirements FILE lists (images/build.sh
#                          writes one per image from pyproject.toml), at the versions of
#                          images/constraints.txt
#   install.sh project     rhc itself, then pip leaves the venv
# Expects images/.build/ca.crt and constraints.txt in /src; for `project`, README.md,
# pyproject.toml and rhc/ too.
set -eu
export PIP_CERT=/src/ca.crt PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_QUIET=1
pip=/opt/rhc/bin/pip
case "${1:-}" in
    deps)
        python3 -m venv /opt/rhc
        $pip install "pip>=25"
        $pip install --requirement "$2" --constraint /src/constraints.txt
        ;;
    project)
        $pip install --no-deps /src
        $pip uninstall --yes pip setuptools
        ;;
    *)
        echo "usage: $0 deps REQUIREMENTS | project" >&2
        exit 2
        ;;
esac
