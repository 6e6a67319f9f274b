#!/bin/sh
# Healthy when Redis answers a PING over TLS, verified against the stack's CA, from the admin
# user: its name and password are read from the mounted admin.toml, so they appear in no
# command line and in no `docker inspect` output.
config=/etc/rhc/admin.toml
setting() { sed -n "s/^$1 = \"\(.*\)\"$/\1/p" "$config"; }
REDISCLI_AUTH=$(setting redis_password) redis-cli --tls --cacert /etc/rhc/redis/tls/ca.crt \
    -h localhost --user "$(setting redis_username)" ping | grep -q PONG
