# SPDX-License-Identifier: BSD-3-Clause
# Debian's Python 3.11 on the debootstrapped base: what python:3.11-slim-bookworm provides.
FROM rhc/debian:bookworm
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
CMD ["python3"]
