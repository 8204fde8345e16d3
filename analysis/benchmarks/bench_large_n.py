"""Issue 13 targets at 10^5-10^9 spins: measured figures beside each target, in one run.

    OPENBLAS_NUM_THREADS=1 python analysis/benchmarks/bench_large_n.py            # ~10 min
    OPENBLAS_NUM_THREADS=1 python analysis/benchmarks/bench_large_n.py --quick    # ~2 min
    OPENBLAS_NUM_THREADS=1 python analysis/benchmarks/bench_large_n.py --extras   # ~3 min

Per chain: a few trajectories of ``run_trajectories`` (the ensemble path, no records) after a
JIT warm-up, seconds per trajectory on one core, and the extrapolation to the target's count
on 2 ranks (ranks run trajectories independently: ceil(n / 2) x seconds per trajectory; the
start-up of a rank is the count table, included in the first trajectory).  Also: the latency
of the first trajectory of (10^5, 2) in a fresh process (numba cache warm), and the exact
t -> infinity of two domains at (10^9, 10^3).  Every trajectory is checked: final sector
N_2 for two domains (probability >= 0.9999 per trajectory), quanta conserved.
Writes ``analysis/benchmarks/results/bench_large_n.json``.

``--extras`` instead times one trajectory of (10^6, 10^2) (same seed and index) three ways side
by side: <J_i^z> only, with the observables jz_var, coherence and channel_rates, and with a
feedback rule checked after every jump that cannot fire before the trajectory ends (so the
record must be the plain one), and prints each time's ratio to the plain one.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import trajspin
from trajspin import Chain, run_trajectories, steady_state, time_grid

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = [  # sizes, trajectories, minutes on 2 ranks
    ((10**6, 100), 100, 30.0),
    ((10**7, 10), 20, 30.0),
    ((10**5, 100, 10), 100, 30.0),
]
FIRST = """
import time; t0 = time.perf_counter()
from trajspin import Chain, trajectory
tr = trajectory(Chain([100000, 2]), [0.0, 1e-4, 1.0], seed=1)
print(time.perf_counter() - t0, len(tr.jump_times))
"""


def grid():
    return time_grid(tmax=1e2, points=100, tmin=1e-8)


def ensemble(sizes, n):
    chain = Chain(list(sizes))
    run_trajectories(Chain([50, 2] if len(sizes) == 2 else [50, 5, 2]), grid(), 1, seed=0,
                     progress=False, method="krylov")                      # JIT warm-up
    t0 = time.perf_counter()
    res = run_trajectories(chain, grid(), n, seed=1, progress=False, chunk=1)
    wall = time.perf_counter() - t0
    K = np.nonzero(res.final_excitation_counts)[0]
    ok = bool(np.all(K == sizes[1])) if len(sizes) == 2 else True
    jumps = res.njumps_sum
    return dict(sizes=list(sizes), ntraj=n, seconds=wall, seconds_per_trajectory=wall / n,
                final_sectors=K.tolist(), final_sector_ok=ok, jumps=jumps,
                jz_over_n_final=(res.jz[-1] / np.asarray(sizes, float)).tolist(),
                sampler=res.meta.get("sampler"))


def first_latency():
    cmd = [sys.executable, "-c", FIRST]
    subprocess.run(cmd, capture_output=True, check=True)                   # numba cache warm
    out = subprocess.run(cmd, capture_output=True, check=True, text=True).stdout.split()
    return float(out[0]), int(out[1])


def extras(repeats=2):
    """Seconds of one (10^6, 10^2) trajectory: plain, with observables, with a feedback rule
    (best of ``repeats``, interleaved)."""
    chain, t = Chain([10**6, 100]), grid()
    trajspin.trajectory(Chain([50, 2]), t, seed=0, observables=["jz_var", "coherence"],
                        method="krylov", feedback=None)                      # JIT warm-up
    trajspin.trajectory(Chain([50, 2]), t, seed=0, feedback="close R1 at t >= 1e9",
                        method="krylov")
    cases = [("<J^z> only", {}), ("jz_var, coherence, channel_rates",
                                 dict(observables=["jz_var", "coherence", "channel_rates"])),
             ("rule 'close R1 at t >= 1e9'", dict(feedback="close R1 at t >= 1e9"))]
    best, jumps = [np.inf] * len(cases), [0] * len(cases)
    for _ in range(repeats):                 # interleaved: drifts of the machine hit all three
        for k, (label, kw) in enumerate(cases):
            t0 = time.perf_counter()
            tr = trajspin.trajectory(chain, t, seed=1, index=0, **kw)
            best[k] = min(best[k], time.perf_counter() - t0)
            jumps[k] = len(tr.jump_times)
    rows = []
    print(f"{'(1e6, 1e2), one trajectory, best of ' + str(repeats):<40}{'seconds':>10}"
          f"{'ratio':>8}{'jumps':>10}")
    for k, (label, _) in enumerate(cases):
        same = jumps[k] == jumps[0]
        rows.append(dict(case=label, seconds=best[k], ratio=best[k] / best[0], jumps=jumps[k],
                         same_jumps=same, repeats=repeats))
        print(f"{label:<40}{best[k]:>10.1f}{best[k] / best[0]:>8.2f}{jumps[k]:>10}"
              f"{'' if same else '  DIFFERENT RECORD'}", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one trajectory per chain, skip 10^7")
    ap.add_argument("--extras", action="store_true",
                    help="only: (1e6, 1e2) with observables and with a feedback rule")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.extras:
        info = dict(rows=extras(), load_average=os.getloadavg(),
                    versions=trajspin.results.versions())
        out = args.out or RESULTS / "bench_large_n_extras.json"
        out.write_text(json.dumps(info, indent=1, default=float))
        print(f"wrote {out}")
        return
    args.out = args.out or RESULTS / "bench_large_n.json"
    rows = []
    print(f"{'case':<34}{'target':>16}{'measured':>16}{'ratio':>8}")
    lat, nj = first_latency()
    rows.append(dict(case="(1e5, 2) first trajectory", target_seconds=5.0, seconds=lat, jumps=nj))
    print(f"{'(1e5, 2) first trajectory [s]':<34}{5.0:>16.1f}{lat:>16.2f}{lat / 5.0:>8.2f}")
    t0 = time.perf_counter()
    res = steady_state(Chain([10**9, 10**3]))
    st = time.perf_counter() - t0
    rows.append(dict(case="(1e9, 1e3) steady state", target_seconds=1.0, seconds=st,
                     jz=res.jz.tolist()))
    print(f"{'(1e9, 1e3) t -> inf [s]':<34}{1.0:>16.1f}{st:>16.4f}{st / 1.0:>8.4f}")
    for sizes, n_target, minutes in TARGETS:
        if args.quick and sizes[0] >= 10**7:
            continue
        n = 1 if args.quick else (2 if sizes[0] >= 10**7 else 4)
        r = ensemble(sizes, n)
        proj = -(-n_target // 2) * r["seconds_per_trajectory"] / 60
        r.update(target_trajectories=n_target, target_minutes_2_ranks=minutes,
                 extrapolated_minutes_2_ranks=proj)
        rows.append(r)
        label = f"{sizes} x{n_target} on 2 ranks [min]"
        print(f"{label:<34}{minutes:>16.1f}{proj:>16.1f}{proj / minutes:>8.2f}"
              f"   ({r['seconds_per_trajectory']:.1f} s/traj over {n}, final K {r['final_sectors']}"
              f"{'' if r['final_sector_ok'] else ' WRONG'})", flush=True)
    info = dict(rows=rows, peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                load_average=os.getloadavg(), versions=trajspin.results.versions())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(info, indent=1, default=float))
    print(f"peak RSS {info['peak_rss_bytes'] / 2**30:.2f} GiB; wrote {args.out}")


if __name__ == "__main__":
    main()
