#!/usr/bin/env python
"""Run a quantum-trajectory ensemble from a TOML config, on any number of MPI ranks.

    mpiexec -n 4 python mpi_scripts/run_ensemble.py mpi_scripts/configs/fig2b.toml --out fig2b.npz
    python mpi_scripts/run_ensemble.py CONFIG.toml --out RESULT.npz       # one process, no mpiexec

The result arrays do not depend on the number of ranks and are bitwise those of
``trajspin.trajectories.run_trajectories`` with the same seed and chunk.  Rank 0
writes a checkpoint every ``checkpoint.interval_seconds``; after a kill, rerun the
same command with ``--resume``.  Read the result with ``trajspin.load(RESULT)``.

Exit status: 0 done, 2 bad input (config, paths, checkpoint; nothing is written), 1 failure.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback


def run_arguments(p, config, resume, quiet, work):
    """The options every batch script takes (run_ensemble.py, run_sweep.py); the texts say
    what ``config``, ``--resume``, ``--quiet`` and the root's ``work`` mean for this script."""
    p.add_argument("config", help=config)
    p.add_argument("--out", required=True, help="result file (.npz), written atomically at the end")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out written by another config")
    p.add_argument("--resume", action="store_true", help=resume)
    p.add_argument("--quiet", action="store_true", help=quiet)
    p.add_argument("--root-computes", choices=("auto", "yes", "no"), default="auto",
                   help=f"whether rank 0 also {work} (auto: yes up to 16 ranks)")
    return p


def _parser():
    p = argparse.ArgumentParser(
        prog="run_ensemble.py",
        description="Quantum-trajectory ensemble of a trajspin chain from a TOML config "
                    "(MPI ranks via mpiexec, or one process).",
        epilog="Config keys: see mpi_scripts/configs/default.toml and trajspin/runners/config.py.")
    return run_arguments(
        p, "TOML config file",
        "continue from the checkpoint if there is one (else start); exit at once if --out is "
        "already complete",
        "no progress bar: one log line per checkpoint and a final summary", "computes chunks")


def _import_trajspin():
    try:
        import trajspin  # noqa: F401
    except ImportError:                    # run from a source tree that is not installed
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _world():
    """COMM_WORLD, or None for a single process without mpi4py."""
    try:
        import trajspin.runners.mpi as mpi_backend
    except ImportError:
        launched = any(int(os.environ.get(k, "1") or 1) > 1
                       for k in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"))
        if launched:
            print("error: mpi4py is not installed, but this looks like an MPI launch; "
                  "pip install mpi4py mpich", file=sys.stderr)
            sys.exit(2)
        return None, None
    return mpi_backend, mpi_backend.world()


def _placement():
    """(MPI backend, comm, rank, size, ranks on this node); one process without MPI."""
    backend, comm = _world()
    if comm is None:
        return backend, None, 0, 1, 1
    return backend, comm, comm.Get_rank(), comm.Get_size(), backend.ranks_on_this_node(comm)


def main(argv=None):
    args = _parser().parse_args(argv)
    _import_trajspin()
    from trajspin import InputError
    from trajspin.runners.config import load_config
    from trajspin.runners.batch import EnsembleTask, SerialTransport, prepare_run, run_root

    backend, comm, rank, size, per_node = _placement()

    plan = None
    if rank == 0:
        try:
            cfg = load_config(args.config)
            plan = prepare_run(cfg, args.out, resume=args.resume, ranks_per_node=per_node,
                               force=args.force)
            status = ("done", None) if plan.done else ("run", (cfg, plan.method))
        except InputError as exc:
            status = ("error", (str(exc), 2))
        except Exception as exc:                     # never leave the other ranks waiting
            traceback.print_exc()
            status = ("error", (f"{type(exc).__name__}: {exc}", 1))
    else:
        status = None
    if comm is not None:
        status = comm.bcast(status, root=0)
    kind, payload = status
    if kind == "error":
        if rank == 0:
            print(f"error: {payload[0]}", file=sys.stderr)
        return payload[1]
    if kind == "done":
        if rank == 0:
            print(f"{args.out} is already complete for this config; nothing to do")
        return 0

    cfg, method = payload            # the engine the root resolved, the same on every rank
    try:
        t0 = time.monotonic()
        task = EnsembleTask(cfg.chain(), cfg.times, cfg.seed, cfg.initial_request(),
                            records=cfg.records, observables=cfg.observables, method=method)
        if comm is not None:
            comm.Barrier()
        setup = time.monotonic() - t0
        if rank != 0:
            backend.worker_loop(comm, task)
            return 0
        transport = backend.MPITransport(comm) if comm is not None else SerialTransport()
        extra = {"mpi_library": backend.library_version() if backend else None,
                 "ranks_per_node": per_node}
        if backend is not None:
            import mpi4py
            extra["mpi4py"] = mpi4py.__version__
        root_computes = {"auto": None, "yes": True, "no": False}[args.root_computes]
        result = run_root(plan, task, transport, progress=not args.quiet, quiet=args.quiet,
                          root_computes=root_computes, setup_time=setup, extra_meta=extra)
    except BaseException as exc:
        if rank == 0 and plan is not None:
            plan.close(remove_lock=True)
        if isinstance(exc, (SystemExit, KeyboardInterrupt)) or size == 1:
            raise
        traceback.print_exc()
        print(f"error: rank {rank} failed; aborting all {size} ranks", file=sys.stderr, flush=True)
        comm.Abort(1)
    m = result.meta
    if not args.quiet:
        print(result)
    print(f"wrote {args.out}: {result.ntraj} trajectories on {size} rank(s) in "
          f"{m['wall_time']:.2f} s (work {m['work_wall_time']:.2f} s, parallel efficiency "
          f"{100 * m['parallel_efficiency']:.1f}%, {m['checkpoint']['written']} checkpoint(s))",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
