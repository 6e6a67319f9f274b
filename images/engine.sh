#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# A Docker engine for hosts without systemd (CI, build boxes): `start` runs dockerd with the vfs
# storage driver when no engine answers, `stop` stops only a dockerd this script started.
# Usage: images/engine.sh start|stop
set -eu
state=${RHC_ENGINE_DIR:-/tmp/rhc-dockerd}
pidfile=$state/dockerd.pid

answers() { docker info >/dev/null 2>&1; }

case "${1:-}" in
    start)
        answers && exit 0
        if [ "$(id -u)" -ne 0 ]; then
            echo "no Docker engine answers: start one (as root: $0 start)" >&2
            exit 1
        fi
        command -v dockerd >/dev/null || { echo "dockerd is missing: apt-get install docker.io" >&2; exit 1; }
        mkdir -p "$state"
        # It outlives whoever started it: it must not keep their open files (a lock) too.
        dockerd --storage-driver=vfs </dev/null >"$state/dockerd.log" 2>&1 \
            3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
        echo $! >"$pidfile"
        waited=0
        until answers; do
            if ! kill -0 "$(cat "$pidfile")" 2>/dev/null || [ $waited -ge 60 ]; then
                echo "dockerd did not come up; its log:" >&2
                tail -20 "$state/dockerd.log" >&2
                exit 1
            fi
            sleep 1
            waited=$((waited + 1))
        done
        echo "started dockerd (pid $(cat "$pidfile"), log $state/dockerd.log)"
        ;;
    stop)
        [ -s "$pidfile" ] || exit 0
        pid=$(cat "$pidfile")
        if kill "$pid" 2>/dev/null; then
            while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
            echo "stopped dockerd (pid $pid)"
        fi
        rm -f "$pidfile"
        ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
