"""Old-vs-new timing of trajspin across a restructuring, in one run on one machine.

The code at a git revision (``--base``, default 19498c2, the commit before the restructuring)
is timed against the working tree (or ``--new REV``) through the public API only, on 100
log-spaced times in [1e-4, 1e3] (the dynamics is over by then): ``solve_master`` on (40, 2),
(12, 6, 2), (8, 6, 5, 1); 10^4 trajectories of (12, 6, 2) (seed 1, default method); 100 Lanczos
trajectories of (40, 20, 10, 4) (``method="krylov"``, seed 1).

Each side is one long-lived worker process (this file with ``--worker``) that imports its own
``trajspin`` through PYTHONPATH (a ``git archive`` extraction, or the repository root for the
working tree; the path is printed and checked), with its own NUMBA_CACHE_DIR in a temp dir and
BLAS/OpenMP/numba threads pinned to 1.  Both workers first compile every kernel on a tiny chain
of each workload (in parallel), then the timed runs alternate between the sides, one worker busy
at a time, in the order old new new old old new ... (``--repeats`` per side), and the minimum
per side is kept.  Wall and CPU time (``time.process_time`` of the serial worker) are both
measured; CPU time leaves out the waits for a core, so it drifts less when other processes load
the 2 cores.  Noise (``--new 19498c2``, load 2-4): cpu ratios 0.90-1.04, wall 0.87-1.17; on a
busy machine use ``--repeats 5`` or more.

    .venv/bin/python analysis/benchmarks/bench_architecture.py               # base vs working tree
    .venv/bin/python analysis/benchmarks/bench_architecture.py --new 19498c2 # same code: noise level

Output: per workload the old and new minimum wall and CPU times with their ratio new/old, PASS
when the ``--clock`` ratio (default cpu) is <= ``--target`` (1.10), else MISS (exit status 0
either way), and max|d jz|, the largest difference between the two sides' <J_i^z> arrays (same
seed: ~0 expected; reported, not checked).  The 1-minute load average is printed at start and
end: above ~1, other processes shared the 2 cores.  Everything also goes to ``--json``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
POINTS, TMAX = 100, 1e3
WORKLOADS = {  # name -> (chain sizes, kind, tiny chain that compiles the same kernels)
    "master 40,2": ((40, 2), "master", (3, 1)),
    "master 12,6,2": ((12, 6, 2), "master", (3, 2, 1)),
    "master 8,6,5,1": ((8, 6, 5, 1), "master", (2, 2, 1, 1)),
    "traj 12,6,2": ((12, 6, 2), "traj", (3, 2, 1)),
    "krylov 40,20,10,4": ((40, 20, 10, 4), "krylov", (3, 2, 2, 1)),
}


def run_workload(ts, sizes, kind, points=POINTS):
    """Run one workload with the imported package ``ts`` on a fresh Chain (set-up included).

    Parameters
    ----------
    ts : module
        The ``trajspin`` package of this side.
    sizes : tuple of int
    kind : {"master", "traj", "krylov"}
        Exact solver, 10^4 default trajectories, or 100 Lanczos trajectories.
    points : int

    Returns
    -------
    dict
        ``wall`` and ``cpu`` seconds of the solver call, ``jz`` the (points, M) <J_i^z> list.
    """
    chain, times = ts.Chain(list(sizes)), ts.time_grid(TMAX, points)
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    if kind == "master":
        res = ts.solve_master(chain, times)
    else:
        ntraj, method = (10000, "auto") if kind == "traj" else (100, "krylov")
        res = ts.run_trajectories(chain, times, ntraj, seed=1, progress=False, method=method)
    return {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0, "jz": res.jz.tolist()}


def worker(root, names):
    """Compile the workloads ``names`` on their tiny chains, then run the ones named on stdin.

    Parameters
    ----------
    root : str
        Directory that must hold the imported ``trajspin`` (exits otherwise).
    names : list of str
        Keys of WORKLOADS to warm up.

    Replies are JSON lines on the original stdout; whatever the package prints goes to stderr.
    """
    out, sys.stdout = sys.stdout, sys.stderr
    import trajspin as ts
    if not Path(ts.__file__).resolve().is_relative_to(Path(root).resolve()):
        sys.exit(f"worker imported {ts.__file__}, not the trajspin under {root}")
    t0 = time.perf_counter()
    for name in names:
        run_workload(ts, WORKLOADS[name][2], WORKLOADS[name][1], points=10)
    print(json.dumps({"file": ts.__file__, "warmup_s": time.perf_counter() - t0}), file=out, flush=True)
    for line in sys.stdin:
        sizes, kind, _ = WORKLOADS[line.strip()]
        print(json.dumps(run_workload(ts, sizes, kind)), file=out, flush=True)


def start_side(label, rev, tmp, names):
    """Extract ``rev`` into ``tmp/label`` (None: use the working tree) and start its worker.

    Parameters
    ----------
    label : {"old", "new"}
    rev : str or None
        Git revision for ``git archive``; None imports the repository root.
    tmp : Path
        Temp dir for the extraction and this side's numba cache; the worker's cwd.
    names : list of str
        Workloads the worker will be asked for (it compiles those first).

    Returns
    -------
    subprocess.Popen
        The worker, with text pipes on stdin and stdout (stderr is inherited).
    """
    root = REPO
    if rev is not None:
        root = tmp / label
        root.mkdir()
        tar = subprocess.run(["git", "archive", rev, "trajspin"], cwd=REPO, check=True,
                             capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=tar, check=True)
    env = dict(os.environ, PYTHONPATH=str(root), NUMBA_CACHE_DIR=str(tmp / f"numba_{label}"),
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, __file__, "--worker", str(root), "--only", ";".join(names)],
                            cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            bufsize=1)


def ask(proc, name=None):
    """Send a workload name to a worker (None: only read) and return its JSON reply."""
    if name is not None:
        proc.stdin.write(name + "\n")
    line = proc.stdout.readline()
    if not line:
        sys.exit(f"a worker exited with status {proc.wait()} (its traceback is above)")
    return json.loads(line)


def describe(rev):
    """Identity of a side: the commit of ``rev``, or HEAD plus the count of changed trajspin/ paths."""
    git = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()
    if rev is not None:
        return git("rev-parse", "--short", rev)
    dirty = len(git("status", "--porcelain", "--", "trajspin").splitlines())
    return f"working tree (HEAD {git('rev-parse', '--short', 'HEAD')} + {dirty} changed trajspin/ paths)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="19498c2", help="old revision (default 19498c2)")
    ap.add_argument("--new", default=None, help="new revision (default: the working tree)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per side and workload (3)")
    ap.add_argument("--target", type=float, default=1.10, help="PASS when new/old <= this (1.10)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="time the verdict uses")
    ap.add_argument("--only", help="';'-separated subset of: " + "; ".join(WORKLOADS))
    ap.add_argument("--json", default=str(REPO / "analysis/benchmarks/results/bench_architecture.json"))
    ap.add_argument("--worker", metavar="ROOT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(";")] if args.only else list(WORKLOADS)
    if set(names) - set(WORKLOADS):
        ap.error(f"unknown workload(s) {sorted(set(names) - set(WORKLOADS))}")
    if args.worker:
        return worker(args.worker, names)
    import numpy as np
    sides = {"old": describe(args.base), "new": describe(args.new)}
    load = {"start": os.getloadavg()[0]}
    print(f"old: {sides['old']}\nnew: {sides['new']}\nload average at start: {load['start']:.2f}",
          flush=True)
    runs = {n: {"old": [], "new": []} for n in names}
    with tempfile.TemporaryDirectory(prefix="bench_arch_") as tmp:
        procs = {k: start_side(k, rev, Path(tmp), names)
                 for k, rev in (("old", args.base), ("new", args.new))}
        try:
            t0 = time.perf_counter()
            ready = {k: ask(p) for k, p in procs.items()}  # both compile at the same time
            for k, r in ready.items():
                print(f"{k} imports {r['file']} (compile/warm-up {r['warmup_s']:.0f} s)", flush=True)
            for rep in range(args.repeats):
                order = ("old", "new") if rep % 2 == 0 else ("new", "old")  # linear drifts cancel
                for n in names:
                    for k in order:
                        runs[n][k].append(ask(procs[k], n))
                print(f"repeat {rep + 1}/{args.repeats} done ({time.perf_counter() - t0:.0f} s)", flush=True)
        except BaseException:  # a side failed or Ctrl-C: stop both workers (ours)
            for p in procs.values():
                p.kill()
            raise
        for p in procs.values():
            p.stdin.close()
            p.wait()
    load["end"] = os.getloadavg()[0]
    print(f"\n{'workload':<19}{'old wall':>9}{'new wall':>9}{'ratio':>7}{'old cpu':>9}{'new cpu':>9}"
          f"{'ratio':>7}  {args.clock:<5}{'max|d jz|':>10}")
    rows = []
    for n in names:
        best = {k: {c: min(r[c] for r in runs[n][k]) for c in ("wall", "cpu")} for k in ("old", "new")}
        ratio = {c: best["new"][c] / best["old"][c] for c in ("wall", "cpu")}
        jz = [np.array(runs[n][k][-1]["jz"]) for k in ("old", "new")]
        diff = float(np.max(np.abs(jz[0] - jz[1])))
        verdict = "PASS" if ratio[args.clock] <= args.target else "MISS"
        print(f"{n:<19}{best['old']['wall']:9.3f}{best['new']['wall']:9.3f}{ratio['wall']:7.3f}"
              f"{best['old']['cpu']:9.3f}{best['new']['cpu']:9.3f}{ratio['cpu']:7.3f}"
              f"  {verdict:<5}{diff:10.1e}")
        rows.append({"workload": n, "best": best, "ratio": ratio, "verdict": verdict, "max_abs_diff_jz": diff,
                     **{f"{k}_{c}": [r[c] for r in runs[n][k]] for k in runs[n] for c in ("wall", "cpu")}})
    print(f"load average at end: {load['end']:.2f}")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sides": sides, "workers": ready, "repeats": args.repeats,
                                "target": args.target, "clock": args.clock, "load_1min": load,
                                "grid": [1e-4, TMAX, POINTS, "log"], "rows": rows,
                                "date": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
    print(f"written {path}")


if __name__ == "__main__":
    main()
