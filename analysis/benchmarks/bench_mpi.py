"""Parallel efficiency, checkpoint overhead and oversubscription of MPI batch ensembles.

Starts ``mpi_scripts/run_ensemble.py`` with the pip-installed ``mpiexec`` (next to
``sys.executable``) and reads the timings the result files carry:

- speedup efficiency  T_work(1) / (P * T_work(P))   (work phase: after the sector tables)
- runner efficiency   sum of per-rank busy seconds / (P * T_work(P))   (from the result meta):
                      the share of rank time spent computing chunks, not waiting or talking
- cpu/busy            CPU seconds / wall seconds inside the kernels: below 100% the ranks were
                      waiting for a core (other processes on a shared machine), which lowers
                      the speedup but is not an overhead of the runner
- checkpoint overhead: mean seconds per checkpoint write / interval (measured with a short
  interval, quoted for the default 60 s), and directly in the long runs
- oversubscribed ranks (P > cores): messages, root service time per message, bytes per chunk

    OPENBLAS_NUM_THREADS=1 python analysis/benchmarks/bench_mpi.py            # everything (~10 min)
    OPENBLAS_NUM_THREADS=1 python analysis/benchmarks/bench_mpi.py --big-ntraj 0   # skip (1000, 30, 3)

Timings on a shared machine vary with what else runs: the load average is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import trajspin

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "mpi_scripts" / "run_ensemble.py"
MPIEXEC = Path(sys.executable).parent / "mpiexec"
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}

CONFIG = """[chain]
sizes = {sizes}
[times]
start = 1e-4
stop = 1e3
points = 400
[run]
ntraj = {ntraj}
seed = 1
chunk = {chunk}
[checkpoint]
interval_seconds = {interval}
"""


def run(folder, name, P, sizes, ntraj, chunk, interval=60.0, root_computes="auto"):
    cfg = Path(folder) / f"{name}.toml"
    cfg.write_text(CONFIG.format(sizes=list(sizes), ntraj=ntraj, chunk=chunk, interval=interval))
    out = Path(folder) / f"{name}-P{P}.npz"
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([str(MPIEXEC), "-n", str(P), sys.executable, str(SCRIPT), str(cfg),
                           "--out", str(out), "--quiet", "--root-computes", root_computes],
                          env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{name} P={P} failed:\n{proc.stderr}")
    res = trajspin.load(out)
    m = res.meta
    return {"name": name, "P": P, "ntraj": res.ntraj, "chunk": chunk, "process_wall": wall,
            "work": m["work_wall_time"], "setup": m["setup_time"], "busy": m["busy_time_per_rank"],
            "cpu": m["cpu_time_per_rank"], "idle": m["idle_time_per_rank"],
            "eff": m["parallel_efficiency"], "ckpt": m["checkpoint"], "messages": m["messages"],
            "service": m["root_service_time"], "chunks": m["chunks_per_rank"], "load": load,
            "root_computes": m["root_computes"], "sums": (res.jz_sum, res.jz_sumsq), "T": res.times.size,
            "M": len(res.chain.sizes)}


def row(r, base=None):
    speed = ""
    if base is not None:
        speed = f"{100 * base['work'] / (r['P'] * r['work']):6.1f}%"
    return (f"{r['name']:<16} {r['P']:>2} {r['ntraj']:>7} {r['chunk']:>5} {r['process_wall']:>8.2f} "
            f"{r['work']:>8.2f} {r['setup']:>6.2f} {sum(r['busy']):>8.2f} {100 * r['eff']:>6.1f}% "
            f"{speed:>7} {sum(r['cpu']):>8.2f} {100 * sum(r['cpu']) / sum(r['busy']):>5.0f}% "
            f"{r['ckpt']['written']:>4} {r['load']:>5.2f}")


HEAD = (f"{'case':<16} {'P':>2} {'ntraj':>7} {'chunk':>5} {'wall[s]':>8} {'work[s]':>8} "
        f"{'setup':>6} {'busy[s]':>8} {'runner':>7} {'speedup':>7} {'cpu[s]':>8} {'cpu/busy':>6} "
        f"{'ckpt':>4} {'load':>5}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ntraj", type=int, default=100_000, help="(12, 6, 2) trajectories")
    ap.add_argument("--big-ntraj", type=int, default=1000,
                    help="(1000, 30, 3) trajectories (0: skip; ~0.14 s each on one core)")
    ap.add_argument("--big-chunk", type=int, default=8)
    ap.add_argument("--oversub", type=int, default=8, help="ranks for the oversubscribed run")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}, mpiexec: {MPIEXEC}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print("\n== parallel efficiency (speedup = T_work(1) / (P T_work(P)); runner = sum busy / (P T_work))")
        print(HEAD)
        a1 = run(tmp, "a(12,6,2)", 1, (12, 6, 2), args.ntraj, 256)
        print(row(a1), flush=True)
        a2 = run(tmp, "a(12,6,2)", 2, (12, 6, 2), args.ntraj, 256)
        print(row(a2, a1), flush=True)
        assert all(np.array_equal(x, y) for x, y in zip(a1["sums"], a2["sums"]))
        rows += [a1, a2]
        if args.big_ntraj:
            b2 = run(tmp, "b(1000,30,3)", 2, (1000, 30, 3), args.big_ntraj, args.big_chunk)
            print(row(b2), flush=True)
            b1 = run(tmp, "b(1000,30,3)", 1, (1000, 30, 3), args.big_ntraj, args.big_chunk)
            print(row(b1), flush=True)
            print(row(b2, b1), "  <- P=2 against P=1")
            assert all(np.array_equal(x, y) for x, y in zip(b1["sums"], b2["sums"]))
            rows += [b1, b2]
            for r in (b1, b2):
                c = r["ckpt"]
                if c["written"]:
                    print(f"   {r['name']} P={r['P']}: {c['written']} checkpoint(s) at 60 s took "
                          f"{1e3 * c['seconds'] / c['written']:.2f} ms each = "
                          f"{100 * c['seconds'] / r['work']:.3f}% of the run")

        print("\n== checkpoint overhead ((12, 6, 2), P = 2, interval 0.05 s to get many writes)")
        c2 = run(tmp, "a-ckpt", 2, (12, 6, 2), args.ntraj, 256, interval=0.05)
        ck = c2["ckpt"]
        per = ck["seconds"] / max(ck["written"], 1)
        print(HEAD)
        print(row(c2, a1))
        print(f"{ck['written']} checkpoints of {ck['bytes']} bytes, {1e3 * per:.2f} ms each; "
              f"at the default 60 s interval: {100 * per / 60:.4f}% of run time "
              f"(work time with 0.05 s interval vs 60 s: {c2['work']:.2f} s vs {a2['work']:.2f} s)")
        rows.append(c2)

        print(f"\n== oversubscribed: P = {args.oversub} ranks on {os.cpu_count()} cores, (12, 6, 2)")
        print(HEAD)
        o1 = run(tmp, "a-oversub", args.oversub, (12, 6, 2), args.ntraj, 256)
        print(row(o1))
        o2 = run(tmp, "a-oversub-coord", args.oversub, (12, 6, 2), args.ntraj, 256, root_computes="no")
        print(row(o2), "  <- rank 0 only coordinates")
        rows += [o1, o2]
        part = (np.zeros((400, 3)), np.zeros((400, 3)), np.zeros(13, dtype=np.int64), 0, 0)
        nbytes = len(pickle.dumps(("result", 0, part, 0.0), protocol=pickle.HIGHEST_PROTOCOL))
        for r in (a2, o1, o2):
            nres = sum(r["chunks"][1:])
            print(f"P={r['P']} root computes={r['root_computes']}: {r['messages']} messages to rank 0 "
                  f"({nres} results), rank 0 service {1e3 * r['service']:.1f} ms total = "
                  f"{1e6 * r['service'] / max(r['messages'], 1):.1f} us per message, "
                  f"{100 * r['service'] / r['work']:.2f}% of the work time; chunks per rank {r['chunks']}; "
                  f"throughput {r['ntraj'] / r['work']:.0f} traj/s")
        print(f"one chunk result = {nbytes} bytes pickled (T = 400, M = 3) = "
              f"{nbytes / 256:.0f} bytes per trajectory at chunk 256")
        if args.json:
            Path(args.json).write_text(json.dumps(
                [{k: v for k, v in r.items() if k != "sums"} for r in rows], indent=1))


if __name__ == "__main__":
    main()
