# SPDX-License-Identifier: BSD-3-Clause
"""What crosses Redis: the key schema and messages (protocol), the Lua scripts (scripts), signed
and compressed payloads (serialization), and connections that say what went wrong (connection).

It knows nothing of the parts above it, the manager, the worker and the NanoAOD layer; every
Redis key and message field rhc uses is defined here and nowhere else.
"""
