# SPDX-License-Identifier: BSD-3-Clause
"""The Lua scripts rhc runs in Redis, each atomic; every one names its KEYS and ARGV.

The key names they receive are built by rhc.wire.keys.Keys; the fields they copy are the
task entry fields of rhc.wire.protocol.
"""

ACK_AND_STORE = """
-- Store a result message and acknowledge the task entries it covers, in one atomic step, and
-- mark its batches as run (a replayed entry of one is then never run again); count what it
-- covers for people to watch (rhc.wire.activity), exactly once as it is stored once.
-- If any entry is no longer pending (a sweeper presumed this worker dead and re-queued it),
-- nothing is stored and the entries this worker still held are re-queued too: a result is
-- stored only by the worker that still owns every task it covers, so it counts exactly once.
-- If any batch is marked as run already (a copy of it ran elsewhere), nothing is stored and the
-- entries are dropped: the sender, missing their other batches, sends those again.
-- KEYS[1] the job's result stream
-- KEYS[2] the job hash (its `done`, `failed` and `retried` counters)
-- KEYS[3] the job's marks of batches run (its sender sets their expiry)
-- KEYS[4] the shared task stream, where entries are re-queued
-- KEYS[5] the namespace's counters
-- KEYS[6] the job's spans
-- KEYS[7..] the task stream of each entry, in the order of the entry ids
-- ARGV[1] consumer group
-- ARGV[2] result TTL in milliseconds
-- ARGV[3] the sealed result message
-- ARGV[4] how many tasks the message covers
-- ARGV[5] this worker's name, the mark of what it ran
-- ARGV[6] how many of those tasks failed
-- ARGV[7] how many of them ran again after their worker was lost
-- ARGV[8] the runtime histogram field of their mean runtime
-- ARGV[9] seconds they ran, together
-- ARGV[10] their span "started finished first-last", or "" (recorded as each batch ran)
-- ARGV[11] what their tasks counted, as a JSON object name -> amount, or ""
-- ARGV[12] n, the number of batches the message covers
-- ARGV[13..12+n] their numbers
-- ARGV[13+n..] entry ids
-- Returns 1 if the result was stored, 0 if the entries were re-queued, 2 if they were dropped.
local first_id = 13 + tonumber(ARGV[12])
local ran = false
for i = 13, first_id - 1 do
  if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 1 then ran = true end
end
local held = {}
for i = first_id, #ARGV do
  local stream = KEYS[i - first_id + 7]
  if redis.call('XACK', stream, ARGV[1], ARGV[i]) == 1 then
    held[#held + 1] = {stream, ARGV[i]}
  end
end
local complete = #held == #ARGV - first_id + 1
for _, entry in ipairs(held) do
  if not complete and not ran then
    local found = redis.call('XRANGE', entry[1], entry[2], entry[2])[1]
    if found then redis.call('XADD', KEYS[4], '*', unpack(found[2])) end
  end
  redis.call('XDEL', entry[1], entry[2])
end
if ran then return 2 end
if not complete then return 0 end
redis.call('XADD', KEYS[1], '*', 'm', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 13, first_id - 1 do
  redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[5])
end
local tasks, failed, retried = tonumber(ARGV[4]), tonumber(ARGV[6]), tonumber(ARGV[7])
local counts = {}
if ARGV[11] ~= '' then counts = cjson.decode(ARGV[11]) end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'done', tasks)
  if failed > 0 then redis.call('HINCRBY', KEYS[2], 'failed', failed) end
  if retried > 0 then redis.call('HINCRBY', KEYS[2], 'retried', retried) end
  for name, amount in pairs(counts) do
    redis.call('HINCRBYFLOAT', KEYS[2], 'count:' .. name, amount)
  end
end
for name, amount in pairs(counts) do
  redis.call('HINCRBYFLOAT', KEYS[5], 'count:' .. name, amount)
end
if failed > 0 then redis.call('HINCRBY', KEYS[5], 'failed', failed) end
if retried > 0 then redis.call('HINCRBY', KEYS[5], 'retried', retried) end
redis.call('HINCRBY', KEYS[5], ARGV[8], tasks)
redis.call('HINCRBYFLOAT', KEYS[5], 'runtime_sum', ARGV[9])
if ARGV[10] ~= '' then
  local started, finished, span = string.match(ARGV[10], '(%S+) (%S+) (%S+)')
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', 10000, '*',
    'worker', ARGV[5], 'started', started, 'finished', finished, 'tasks', span)
  redis.call('PEXPIRE', KEYS[6], ARGV[2])
end
return 1
"""

REQUEUE = """
-- Move pending task entries back to a shared task stream for any free worker to take: a
-- stopping worker hands back what it holds, a sweeper re-queues what a dead worker held.
-- An entry moves only if still pending, so concurrent sweeps never duplicate it.
-- KEYS[1] the stream the entries are pending in
-- KEYS[2] the stream to re-queue them to
-- ARGV[1] consumer group
-- ARGV[2] '1' to count the move as a redelivery (the holder died), '0' for a hand-back
-- ARGV[3..] entry ids
-- Returns the number of entries moved.
local moved = 0
for i = 3, #ARGV do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])[1]
    if found then
      local fields = found[2]
      if ARGV[2] == '1' then
        for j = 1, #fields, 2 do
          if fields[j] == 'redeliveries' then
            fields[j + 1] = tostring(tonumber(fields[j + 1]) + 1)
          end
        end
      end
      redis.call('XADD', KEYS[2], '*', unpack(fields))
      moved = moved + 1
    end
    redis.call('XDEL', KEYS[1], ARGV[i])
  end
end
return moved
"""

DRAIN = """
-- Move every entry of a dead worker's own stream to the shared stream, then delete it.
-- Run after REQUEUE has moved the entries the worker had taken; these it never read.
-- KEYS[1] the dead worker's stream
-- KEYS[2] the shared task stream
-- Returns the number of entries moved.
local entries = redis.call('XRANGE', KEYS[1], '-', '+')
for _, entry in ipairs(entries) do
  redis.call('XADD', KEYS[2], '*', unpack(entry[2]))
end
redis.call('DEL', KEYS[1])
return #entries
"""

FORGET_CONSUMER = """
-- Delete a worker's consumer of a task stream once it holds nothing. A worker taken for dead
-- that is alive after all may have read entries since its sweeper listed what it held: deleted
-- with its consumer, they would stay delivered to no one and never be read again. It stays
-- then, and the next sweep, which finds it among the consumers, reclaims them if it is dead.
-- KEYS[1] the task stream
-- ARGV[1] consumer group
-- ARGV[2] the worker's name
-- Returns 1 if it was deleted, 0 if it holds entries.
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

FORGET_WORKER = """
-- Remove every trace of a worker but the record of its departure, which only the call that
-- removed its registration adds: two sweepers that both took it for dead record it once.
-- KEYS[1] the worker's set of merged entries
-- KEYS[2] its alive key
-- KEYS[3] the registry of workers
-- KEYS[4] the stream of departures
-- ARGV[1] the worker's name
-- ARGV[2] about how many departures the stream keeps
-- ARGV[3..] the departure's fields and values; none if there is nothing to record
-- Returns 1 if this call removed its registration, else 0.
redis.call('DEL', KEYS[1], KEYS[2])
local removed = redis.call('HDEL', KEYS[3], ARGV[1])
if removed == 1 and #ARGV > 2 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return removed
"""
