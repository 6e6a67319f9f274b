#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Regenerate images/constraints.txt: the exact versions the images install, resolved by the
# images' own Python (Debian's 3.11 may be older than yours: some releases need a newer patch).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
base=${BASE_IMAGE:-rhc/python:3.11-bookworm}
mkdir -p "$root/images/.build"
cp /etc/ssl/certs/ca-certificates.crt "$root/images/.build/ca.crt"
docker run --rm -v "$root:/src:ro" -e PIP_CERT=/src/images/.build/ca.crt \
    -e PIP_DISABLE_PIP_VERSION_CHECK=1 "$base" sh -c '
    python3 -m venv /tmp/lock >/dev/null && cp -r /src /tmp/rhc-src && rm -rf /tmp/rhc-src/.git
    /tmp/lock/bin/pip install --quiet "pip>=25"
    /tmp/lock/bin/pip install --quiet "/tmp/rhc-src[coffea,condor,dashboard,minipool,notebook,xrootd]"
    echo "# The exact versions the images install, resolved by their own Python ($(python3 -V))."
    echo "# Regenerate with images/lock.sh."
    /tmp/lock/bin/pip freeze --exclude rhc' > "$root/images/constraints.txt.new"
mv "$root/images/constraints.txt.new" "$root/images/constraints.txt"
wc -l "$root/images/constraints.txt"
