#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Builds the base images from Debian packages, for a host that reaches no container registry:
#   rhc/debian:bookworm       debootstrap --variant=minbase, imported (BASE for redis and nginx)
#   rhc/python:3.11-bookworm  Debian's Python 3.11 with venv (BASE_IMAGE for rhc's images)
# With a registry, debian:bookworm-slim and python:3.11-slim-bookworm serve instead.
# Usage: images/base/build.sh   (as root; skips what already exists)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if ! docker image inspect rhc/debian:bookworm >/dev/null 2>&1; then
    rootfs=$(mktemp -d /tmp/rhc-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    echo "debootstrap bookworm into $rootfs (about a minute) ..."
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/*
    chmod 755 "$rootfs"  # mktemp made it 0700: the image's / must be open to any uid
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' - rhc/debian:bookworm >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
fi
if ! docker image inspect rhc/python:3.11-bookworm >/dev/null 2>&1; then
    docker build --quiet -t rhc/python:3.11-bookworm -f "$here/python.Dockerfile" "$here" >/dev/null
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^rhc/(debian|python):'
