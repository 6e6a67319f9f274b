#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The worker image's entrypoint. `docker run rhc/worker [URL] [options]` runs `rhc worker`; a
# command naming rhc itself runs as given: HTCondor's docker universe puts the job's executable
# (rhc) and arguments (worker URL ...) after the image, behind this entrypoint.
case "${1:-}" in
    rhc | */rhc) shift; exec rhc "$@" ;;
esac
exec rhc worker "$@"
