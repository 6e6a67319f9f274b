# SPDX-License-Identifier: BSD-3-Clause
"""Named defaults. Every duration is in seconds."""

DEFAULT_HEARTBEAT_INTERVAL = 1.0
"""How often a worker refreshes its heartbeat and sweeps for dead workers."""

DEFAULT_HEARTBEAT_TTL = 10.0
"""How long a heartbeat lives: a worker silent this long is dead and its tasks are redelivered."""

DEFAULT_MAX_ATTEMPTS = 3
"""How many times a task may crash its process or time out before it is failed."""

DEFAULT_MAX_PAYLOAD_BYTES = 64 * 2**20
"""The largest serialized function, argument batch or result accepted (Redis allows 512 MB)."""

DEFAULT_RECONNECT_TIMEOUT = 60.0
"""How long a manager waits for a lost Redis to come back before it gives up with an error."""

DEFAULT_WORKER_RECONNECT_TIMEOUT = 600.0
"""How long a worker waits for a lost Redis before it exits non-zero (the batch system sees it)."""

DEFAULT_RESULT_TTL = 24 * 3600.0
"""How long a job's results stay in Redis, so that a restarted notebook can re-attach to it."""

DEFAULT_READ_BLOCK = 0.5
"""How long one blocking read waits: under the socket timeout, so idle reads never time out."""

IDLE_READ_BLOCK = 4.0
"""How long one blocking read waits once a worker has been idle IDLE_FLUSH_READS reads (2 s):
a pool at rest then sends a read per worker every 4 s instead of two a second, and a task
still reaches a waiting worker at once. Under the socket timeout too."""

DEFAULT_SOCKET_TIMEOUT = 10.0
"""Socket timeout of every Redis connection; longer than any blocking read rhc issues."""

RESULT_BYTES_PER_READ = 64 * 2**20
"""About the most bytes one read of a job's results asks Redis for (results pile up while no
notebook reads them): past the first read, the count of entries is sized from the largest seen."""

DEFAULT_TARGET_BATCH_SECONDS = 0.05
"""How long one batch should take: long enough to hide messaging, short enough to balance."""

DEFAULT_MAX_BATCH_TASKS = 4096
"""The most tasks one batch may carry, however fast they are."""

DEFAULT_MERGE_FLUSH_INTERVAL = 60.0
"""How long a worker may keep a partial reduction unsent: the work a worker's death can cost."""

IDLE_FLUSH_READS = 4
"""Empty blocking reads in a row (2 s) after which an idle worker stores its partial reductions
unasked: their job's manager may be gone. A pause mid-run (a manager slow to send) is shorter, and
the manager asks for them the moment its tasks all ran."""

DEFAULT_INTERRUPT_GRACE = 2.0
"""How long an interrupted task process may take to stop before it is killed."""

CACHE_SHARE_OF_MEMORY = 0.5
"""The share of a worker's memory (condor's RequestMemory, or its cgroup limit) its in-process
cache may fill by default (rhc.get_worker().cache); never more than this is allowed."""

DEFAULT_DISK_CACHE_BYTES = 20 * 2**30
"""The budget of the byte ranges a worker keeps of remote files, on its scratch disk."""

MIN_SECRET_BYTES = 16
"""The shortest secret accepted: HMAC keys shorter than this are guessable."""

DEFAULT_CREDENTIAL_LIFETIME = 2 * 3600.0
"""How long `rhc condor submit` wants a worker's grid credentials (x509 proxy, bearer token) to
stay valid: a notebook session; one that expires sooner is refused (`--lifetime`)."""
