#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Build every rhc image, tagged rhc/<name>:<version> and rhc/<name>:<version>-<git sha>.
# The bases come from BASE_IMAGE and DEBIAN_IMAGE; unset, the public python/debian slim images
# are used when a registry answers, else equivalents are built from Debian packages
# (images/base/build.sh), so this works on a host with no registry at all.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' rhc/_version.py)
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The commit's time, not the build's: the same sources give the same labels, so a rebuild with
# nothing changed is all cache hits (as SOURCE_DATE_EPOCH does for reproducible builds).
created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)

if [ -z "${BASE_IMAGE:-}" ] || [ -z "${DEBIAN_IMAGE:-}" ]; then
    if docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1 \
        || docker pull -q python:3.11-slim-bookworm >/dev/null 2>&1; then
        docker image inspect debian:bookworm-slim >/dev/null 2>&1 \
            || docker pull -q debian:bookworm-slim >/dev/null
        : "${BASE_IMAGE:=python:3.11-slim-bookworm}" "${DEBIAN_IMAGE:=debian:bookworm-slim}"
    else
        echo "no container registry answers: building the base images from Debian packages"
        images/base/build.sh >/dev/null
        : "${BASE_IMAGE:=rhc/python:3.11-bookworm}" "${DEBIAN_IMAGE:=rhc/debian:bookworm}"
    fi
fi

# pip inside the build trusts what this host trusts (some networks inspect TLS)
mkdir -p images/.build
cp /etc/ssl/certs/ca-certificates.crt images/.build/ca.crt

requirements() {  # name [extra...]: what images/<name> installs, from pyproject.toml
    name=$1
    shift
    python3 - "$@" >"images/.build/$name.requirements" <<'PY'
import sys
import tomllib

with open("pyproject.toml", "rb") as handle:
    project = tomllib.load(handle)["project"]
extras = [req for extra in sys.argv[1:] for req in project["optional-dependencies"][extra]]
print("\n".join([*project["dependencies"], *extras]))
PY
}
requirements worker xrootd
requirements worker-coffea xrootd coffea
requirements manager notebook condor dashboard xrootd coffea
requirements minicondor minipool

build() {  # name base [dockerfile dir] [build-arg...]: rhc/<name> from images/<dir>/Dockerfile
    name=$1 base=$2 dir=${3:-$1}
    shift $(($# < 3 ? $# : 3))
    # A multi-stage image's build stage is tagged too: untagged, the prune below would delete
    # it, and with it the cache of its dependency layer, reinstalled on every build.
    if grep -q '^FROM .* AS build$' "images/$dir/Dockerfile"; then
        docker build --quiet -f "images/$dir/Dockerfile" --target build \
            -t "rhc/$name-build:$version" --build-arg BASE_IMAGE="$base" "$@" . \
            >"images/.build/$name-build.log" 2>&1 || return 1
    fi
    docker build --quiet -f "images/$dir/Dockerfile" \
        -t "rhc/$name:$version" -t "rhc/$name:$version-$revision" \
        --build-arg BASE_IMAGE="$base" "$@" \
        --label org.opencontainers.image.version="$version" \
        --label org.opencontainers.image.revision="$revision" \
        --label org.opencontainers.image.created="$created" \
        --label org.opencontainers.image.base.name="$base" . >"images/.build/$name.log" 2>&1
}

# All at once: on the vfs storage driver a build mostly waits on the disk
echo "building rhc/{worker,worker-coffea,manager,minicondor,redis,nginx,xrootd}:$version" \
    "(logs in images/.build/) ..."
started=$(date +%s)
failed=""
build worker "$BASE_IMAGE" & worker=$!
build manager "$BASE_IMAGE" & manager=$!
build minicondor "$BASE_IMAGE" & minicondor=$!
build redis "$DEBIAN_IMAGE" & redis=$!
build nginx "$DEBIAN_IMAGE" & nginx=$!
build xrootd "$DEBIAN_IMAGE" & xrootd=$!
# the worker with coffea (rhc/worker-coffea): the worker's Dockerfile with more requirements
build worker-coffea "$BASE_IMAGE" worker --build-arg REQUIREMENTS=worker-coffea.requirements \
    --label org.opencontainers.image.title="rhc worker with coffea" &
worker_coffea=$!
for name in worker worker_coffea manager minicondor redis nginx xrootd; do
    eval "pid=\$$name"
    wait "$pid" || failed="$failed $name"
done
if [ -n "$failed" ]; then
    for name in $failed; do
        name=$(echo "$name" | tr _ -)
        echo "--- rhc/$name failed to build; images/.build/$name.log ends:" >&2
        tail -30 "images/.build/$name.log" >&2
    done
    exit 1
fi
echo "built in $(($(date +%s) - started)) s"
# Other commits' tags of the same version: on vfs each keeps gigabytes alive. An image docker
# refuses to remove (a container still uses it) is kept, and said so.
docker image ls --format '{{.Repository}}:{{.Tag}}' "rhc/*" | grep -F ":$version-" \
    | grep -v ":$version-$revision\$" | while read -r stale; do
        docker image rm "$stale" >/dev/null || echo "kept $stale: docker would not remove it" >&2
    done
docker image prune --force >/dev/null  # dangling layers of earlier builds: vfs copies every one
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "rhc/*:$version"
