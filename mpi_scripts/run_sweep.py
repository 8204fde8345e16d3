#!/usr/bin/env python
"""Run a sweep (a TOML config with a [sweep] table) on any number of MPI ranks.

    mpiexec -n 2 python mpi_scripts/run_sweep.py mpi_scripts/configs/sweep_eq5.toml --out eq5.npz
    python mpi_scripts/run_sweep.py CONFIG.toml --out RESULT.npz     # one process, no mpiexec

Each point runs whole on one rank, largest predicted cost first; the result arrays do not
depend on the number of ranks and equal those of ``trajspin.sweep(CONFIG)``.  Every finished
point is kept in ``RESULT.points/`` until the sweep's file is written; after a kill, rerun
the same command with ``--resume``: finished points are not redone.  Read the result with
``trajspin.load(RESULT)``.

Exit status: 0 done, 2 bad input (config, paths, a point too big; nothing is written),
1 failure (or some points failed: the file marks them, ``--resume`` retries them).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import traceback

from run_ensemble import _import_trajspin, _placement, run_arguments


def _parser():
    p = argparse.ArgumentParser(
        prog="run_sweep.py",
        description="A sweep of trajspin points from a TOML config with a [sweep] table "
                    "(MPI ranks via mpiexec, or one process).",
        epilog="Keys: see trajspin/runners/sweep_spec.py and mpi_scripts/configs/sweep_*.toml.")
    return run_arguments(
        p, "TOML config file with a [sweep] table",
        "continue from RESULT.points/ (finished points are kept); exit at once if --out is "
        "already complete",
        "no progress bar, a final summary only", "solves points")


def _prepare(args, per_node):
    """Rank 0: ("run", spec, folder), ("done", None, None) or ("error", message, code)."""
    from trajspin import InputError
    from trajspin.runners.sweep import as_spec, prepare_sweep
    try:
        spec = as_spec(args.config)
        plan = prepare_sweep(spec, args.out, resume=args.resume, force=args.force,
                             ranks_per_node=per_node)
    except InputError as exc:
        return None, ("error", str(exc), 2)
    except Exception as exc:                         # never leave the other ranks waiting
        traceback.print_exc()
        return None, ("error", f"{type(exc).__name__}: {exc}", 1)
    if plan.finished is not None:
        return plan, ("done", None, None)
    return plan, ("run", spec, plan.store.folder)


@contextlib.contextmanager
def _one_fails_all_stop(comm, plan):
    """On a failure of this rank: release rank 0's plan; with other ranks running, print the
    traceback and abort them all (a point file already written stays for --resume)."""
    try:
        yield
    except BaseException as exc:
        if plan is not None:
            plan.close()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)) or comm is None \
                or comm.Get_size() == 1:
            raise
        traceback.print_exc()
        print(f"error: rank {comm.Get_rank()} failed; aborting all {comm.Get_size()} ranks",
              file=sys.stderr, flush=True)
        comm.Abort(1)


def main(argv=None):
    args = _parser().parse_args(argv)
    _import_trajspin()
    from trajspin.runners.batch import SerialTransport
    from trajspin.runners.sweep import run_sweep_root
    from trajspin.runners.sweep_store import PointFolder

    backend, comm, rank, size, per_node = _placement()
    plan, status = _prepare(args, per_node) if rank == 0 else (None, None)
    if comm is not None:
        status = comm.bcast(status, root=0)
    kind, spec, folder = status
    if kind == "error":
        if rank == 0:
            print(f"error: {spec}", file=sys.stderr)
        return folder
    if kind == "done":
        if rank == 0:
            print(f"{args.out} is already complete for this sweep; nothing to do")
        return 0
    with _one_fails_all_stop(comm, plan):
        if rank != 0:
            from trajspin.runners.mpi_sweep import worker_loop
            worker_loop(comm, spec, PointFolder(folder))
            return 0
        if comm is not None:
            from trajspin.runners.mpi_sweep import SweepTransport
            transport = SweepTransport(comm)
        else:
            transport = SerialTransport()
        extra = {"mpi_library": backend.library_version() if backend else None,
                 "ranks_per_node": per_node}
        root_computes = {"auto": None, "yes": True, "no": False}[args.root_computes]
        result = run_sweep_root(plan, transport, progress=not args.quiet, quiet=args.quiet,
                                root_computes=root_computes, extra_meta=extra)
    if not args.quiet:
        print(result)
    m = result.meta
    print(f"wrote {args.out}: {spec.size} points ({m['computed_points']} computed, "
          f"{m['resumed_points']} from {folder}) on {size} rank(s) in {m['wall_time']:.2f} s",
          flush=True)
    if result.failed.any():
        for i, text in m["failed"].items():
            print(f"error: point {i} failed: {text}", file=sys.stderr)
        print(f"error: {int(result.failed.sum())} point(s) failed; rerun with --resume to retry "
              f"them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
