# SPDX-License-Identifier: BSD-3-Clause
"""coffea on rhc workers: an executor for coffea.processor.Runner (the optional extra
`rhc[coffea]`), so existing coffea processors run unchanged.

    from coffea import processor
    from coffea.nanoevents import NanoAODSchema
    from rhc import Manager
    import rhc.coffea

    executor = rhc.coffea.Executor(Manager())
    run = processor.Runner(executor=executor, schema=NanoAODSchema, chunksize=100_000)
    output = run(fileset, treename="Events", processor_instance=MyProcessor())
    executor.last_run.plot_timeline()

It sits above the manager, the worker and the NanoAOD layer (whose timeline it draws), and
uses only their public faces: Manager.submit to run, rhc.worker.get_worker() on the workers.
"""

from rhc.coffea.executor import Executor
from rhc.coffea.record import Phase, RunRecord
from rhc.coffea.task import RemoteExceptionError, worker_cache

__all__ = ["Executor", "Phase", "RemoteExceptionError", "RunRecord", "worker_cache"]
