#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The local rhc cluster: `up` (the first time: generate the secrets), `down`, `token`, `status`,
# and `init` (secrets and .env only). Secrets go to compose/secrets/ (mode 0600, never committed):
# the Jupyter token, the mini pool's API token, and what follows. Nothing here prints them,
# except the Jupyter token, to whoever runs `up` (in the URL to open) or `token`. The
# Redis's TLS material, ACL users and client config files come from `rhc redis setup`, run in
# the manager image (the images must exist: `make images`).
# RHC_STATE_DIR moves the secrets, .env and the pool's job directories elsewhere (the e2e tests
# run a stack of their own that way); RHC_PROJECT names the stack, its network and labels.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
state=${RHC_STATE_DIR:-$here}
compose() { docker compose -f "$here/compose.yaml" --env-file "$state/.env" "$@"; }
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
version() { sed -n 's/^__version__ = "\(.*\)"/\1/p' "$root/rhc/_version.py"; }

write_secrets() {
    (
        umask 077
        mkdir -p "$state/secrets"
        cd "$state/secrets"
        [ -s jupyter_token ] || random >jupyter_token
        [ -s pool_token ] || random >pool_token
        [ -s dashboard_token ] || random >dashboard_token
    )
    if [ ! -s "$state/secrets/redis/users.acl" ]; then
        docker run --rm --user "$(id -u):$(id -g)" --network none \
            -v "$state/secrets:/out" "rhc/manager:$(version)" \
            rhc redis setup /out --namespace analysis \
            --host redis --host localhost --host 127.0.0.1 --seen-at /etc/rhc/redis \
            --worker-config /run/secrets/worker_config \
            --condor-pool http://minicondor:9618 >/dev/null
    fi
    if [ "$(id -u)" -eq 0 ]; then  # each file to the (non-root) uid of the container reading it
        chown -R "$(as_user redis)" "$state/secrets/redis" "$state/secrets/admin.toml"
        chown "$(as_user worker)" "$state/secrets/worker.toml"
    fi
}

as_user() {  # containers never run as root: as root, these fixed uids; else, the caller's own
    if [ "$(id -u)" -ne 0 ]; then echo "$(id -u):$(id -g)"
    elif [ "$1" = redis ]; then echo 6379:6379
    else echo 12345:12345
    fi
}

write_env() {
    samples=${RHC_SAMPLES:-$root/../shared/data/nanoaod}
    if [ ! -d "$samples" ]; then  # a clone without the samples: the notebook generates data
        samples="$state/.no-samples"
        mkdir -p "$samples"
    fi
    mkdir -p "$state/.pool"
    cat >"$state/.env" <<ENV
RHC_PROJECT=${RHC_PROJECT:-rhc}
RHC_VERSION=$(version)
RHC_UID=$(id -u)
RHC_GID=$(id -g)
RHC_WORKER_USER=$(as_user worker)
RHC_REDIS_USER=$(as_user redis)
RHC_REDIS_MAXMEMORY=${RHC_REDIS_MAXMEMORY:-1gb}
RHC_SAMPLES_HOST=$(cd "$samples" && pwd)
RHC_SECRETS_DIR=$(cd "$state/secrets" && pwd)
RHC_POOL_DIR=$(cd "$state/.pool" && pwd)
RHC_POOL_EVICT_EVERY=${RHC_POOL_EVICT_EVERY:-0}
RHC_JUPYTER_PORT=${RHC_JUPYTER_PORT:-8888}
RHC_DASHBOARD_PORT=${RHC_DASHBOARD_PORT:-8787}
ENV
}

case "${1:-}" in
    init)
        write_secrets
        write_env
        ;;
    up)
        write_secrets
        write_env
        started=$(date +%s)
        compose up -d --wait --wait-timeout 180
        echo "healthy in $(($(date +%s) - started)) s"
        port=$(sed -n 's/^RHC_JUPYTER_PORT=//p' "$state/.env")
        echo "JupyterLab: http://127.0.0.1:$port/lab?token=$(cat "$state/secrets/jupyter_token")"
        echo "  (this machine only; from another: ssh -L $port:127.0.0.1:$port" \
            "$(id -un 2>/dev/null || echo you)@$(hostname), then open the URL there)"
        echo "workers: in a JupyterLab terminal, rhc condor submit -n 2"
        port=$(sed -n 's/^RHC_DASHBOARD_PORT=//p' "$state/.env")
        echo "dashboard: http://127.0.0.1:$port/?token=$(cat "$state/secrets/dashboard_token")"
        ;;
    down)
        compose --profile workers down --volumes --remove-orphans
        # The pool removes its jobs' scratch directories (and the config files in them) as it
        # stops; should it have been killed first, none is left behind either.
        pool=$(sed -n 's/^RHC_POOL_DIR=//p' "$state/.env")
        [ -z "$pool" ] || find "$pool" -mindepth 1 -maxdepth 1 -regex '.*/[0-9]+\.[0-9]+' \
            -exec rm -rf {} +
        ;;
    token) cat "$state/secrets/jupyter_token" ;;
    status) compose ps ;;
    *)
        echo "usage: $0 up|down|token|status|init" >&2
        exit 2
        ;;
esac
