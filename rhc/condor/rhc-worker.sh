#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The vanilla-universe executable of an rhc worker. Condor starts it in the job's scratch
# directory with the transferred files: the config file and, optionally, a tarball of a Python
# environment with rhc installed (a venv, or conda-pack output). Unpack that, then run rhc.
set -eu
for tarball in *.tar.gz; do
    [ -e "$tarball" ] || continue
    mkdir -p rhc-env
    tar -xzf "$tarball" -C rhc-env
    if [ -x rhc-env/bin/conda-unpack ]; then rhc-env/bin/conda-unpack; fi
    PATH="$PWD/rhc-env/bin:$PATH"
    export PATH
done
exec python3 -m rhc "$@"
