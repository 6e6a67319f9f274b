import time, operator, functools
from rhc import Manager
from tests import fixtures

def measure(m, f, n, **kw):
    before = sum(w.done for w in m.workers().workers)
    t0 = time.monotonic()
    m.remote_map(f, range(n), progress=False, **kw)
    ended = time.monotonic()
    samples = []
    while (s := sum(w.done for w in m.workers().workers) - before) < n:
        samples.append(s)
        time.sleep(0.02)
        if time.monotonic() - ended > 30:
            return None
    return round(ended - t0, 2), round(time.monotonic() - ended, 2), samples[:1]

def test_lag(make_cluster):
    c = make_cluster(heartbeat_interval=1.0, heartbeat_ttl=10.0)
    c.start_workers(2)
    m = Manager()
    for kw in ({}, {"reduce": operator.add}):
        for f, n in ((fixtures.sleep_square, 300), (functools.partial(fixtures.sleep_square, seconds=0.3), 20), (fixtures.square, 5000)):
            for _ in range(2):
                print(kw, n, measure(m, f, n, **kw))
