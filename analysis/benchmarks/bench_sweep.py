"""Sweep target of issue 14: two shipped sweeps on ``mpiexec -n 2`` in under 2 minutes.

    python analysis/benchmarks/bench_sweep.py              # -n 2, then -n 1 for the identity check
    python analysis/benchmarks/bench_sweep.py --ranks 2 --no-identity

What is measured: the wall time of each whole ``mpiexec -n P python mpi_scripts/run_sweep.py``
command (process start, imports and numba loading included), for

- ``mpi_scripts/configs/sweep_eq5.toml``: 40 two-domain steady states (N_1 = 4..80, N_2 = 2,
  domain 1 excited or half excited), and
- ``mpi_scripts/configs/sweep_fig4.toml``: 12 points of a (12, 6, 2) family, 2000 trajectories
  each (60 log-spaced times in [1e-3, 1e3]),

summed and printed against the 120 s target.  Unless ``--no-identity``, both sweeps run again
on one rank and the result arrays are compared bit for bit.  The 1-minute load average before
and after is printed (the machine is shared: a busy one makes every number larger).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "mpi_scripts" / "run_sweep.py"
CONFIGS = ("sweep_eq5.toml", "sweep_fig4.toml")
TARGET = 120.0
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def run(ranks, config, out):
    """Wall seconds of one mpiexec command (raises if it fails)."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    cmd = [str(mpiexec), "-n", str(ranks), sys.executable, str(SCRIPT),
           str(ROOT / "mpi_scripts" / "configs" / config), "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return wall


def identical(a, b):
    import trajspin
    ra, rb = trajspin.load(a), trajspin.load(b)
    return all(np.array_equal(getattr(ra, n), getattr(rb, n), equal_nan=True)
               for n in ra._arrays)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--no-identity", action="store_true", help="skip the one-rank comparison")
    args = p.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for config in CONFIGS:
            out = Path(tmp) / f"{config[:-5]}.{args.ranks}.npz"
            wall = run(args.ranks, config, out)
            total += wall
            print(f"{config:<18} mpiexec -n {args.ranks}: {wall:6.1f} s")
        verdict = "meets" if total < TARGET else "MISSES"
        print(f"{'total':<18} {total:6.1f} s  ({verdict} the {TARGET:.0f} s target)")
        if not args.no_identity:
            for config in CONFIGS:
                one = Path(tmp) / f"{config[:-5]}.1.npz"
                wall = run(1, config, one)
                same = identical(one, Path(tmp) / f"{config[:-5]}.{args.ranks}.npz")
                print(f"{config:<18} mpiexec -n 1: {wall:6.1f} s; arrays identical to "
                      f"-n {args.ranks}: {same}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if total < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
