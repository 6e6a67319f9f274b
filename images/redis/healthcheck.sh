#!/bin/sh
# Healthy when Redis answers an authenticated PING; the password is read from the secret file,
# so it appears in no command line and in no `docker inspect` output.
REDISCLI_AUTH=$(sed -n 's/^requirepass //p' /run/secrets/redis_conf) redis-cli ping | grep -q PONG
