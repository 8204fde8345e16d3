"""Fit the cost constants of ``trajspin.estimate`` (``COSTS``) to runs measured on this machine.

    python analysis/benchmarks/calibrate_estimate.py           # ~2-3 min, one core
    python analysis/benchmarks/calibrate_estimate.py --quick   # ~30 s
    python analysis/benchmarks/calibrate_estimate.py --steady  # ~1 min: steady_state only

Measures, on one core (BLAS pinned to one thread, numba kernels loaded first):

- trajectory set-up: first ``run_trajectories`` call (one trajectory, 2 output times) on a
  fresh Chain, minus the time of one trajectory;
- time per trajectory with 400 log-spaced output times in [1e-4, 1e3] and with 2 (the jump
  work alone), about ``--seconds`` of trajectories each;
- ``solve_master`` wall time and its number of sweeps (from ``meta["solver"]``) on 400 and
  40 output times; ``steady_state`` wall time;

then fits each group of constants by non-negative least squares on the *relative* error
(rows divided by the measured time) with the features of ``trajspin.estimate``, and prints
the new ``COSTS`` lines, the prediction / measurement ratio of every run, and the worst
factor.  Results go to ``results/calibrate_estimate.json``.  Paste the printed constants
into ``trajspin/estimate.py`` after a kernel change.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import importlib
import re
import time
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

import trajspin

# the module (``trajspin.estimate`` the attribute is the function of that name)
est = importlib.import_module("trajspin.estimate")
from bench_master import chain_name, load1, log_grid, machine_info, write_json

TRAJ_CHAINS = [(40, 2), (12, 6, 2), (8, 6, 5, 1), (4, 3, 3, 2), (160, 2), (30, 10, 3), (80, 10, 3),
               (6, 5, 4, 3), (6, 5, 4, 3, 2), (200, 10, 10), (150, 30, 15)]
MASTER_CHAINS = [(40, 2), (12, 6, 2), (4, 3, 3, 2), (20, 5, 2), (8, 6, 5, 1)]
STEADY_CHAINS = [(200, 30, 3), (400, 30, 3), (100, 20, 10), (1000, 30, 3), (150, 100, 10)]
QUICK = {"traj": [(40, 2), (12, 6, 2), (4, 3, 3, 2), (30, 10, 3), (6, 5, 4, 3), (100, 20, 10)],
         "master": [(40, 2), (12, 6, 2), (4, 3, 3, 2)],
         "steady": [(200, 30, 3), (100, 20, 10)]}


def time_trajectories(sizes, points, seconds):
    """(set-up s, per-trajectory s at `points` times, per-trajectory s at 2 times, jumps/traj)."""
    chain = trajspin.Chain(sizes)
    times = log_grid(points)
    t0 = time.perf_counter()
    trajspin.run_trajectories(chain, times[[0, -1]], 1, seed=1, progress=False)
    first = time.perf_counter() - t0
    out = {}
    for label, grid in (("grid", times), ("jumps", times[[0, -1]])):
        n = 5
        while True:
            t0 = time.perf_counter()
            r = trajspin.run_trajectories(chain, grid, n, seed=1, progress=False)
            wall = time.perf_counter() - t0
            if wall > 0.3 * seconds or n >= 200_000:
                break
            n = int(min(200_000, max(2 * n, n * seconds / max(wall, 1e-4))))
        out[label] = (wall / n, r.njumps_sum / n, n)
    return {"chain": list(sizes), "setup": max(first - out["jumps"][0], 0.0),
            "per_traj": out["grid"][0], "per_traj_jumps": out["jumps"][0],
            "jumps_per_traj": out["grid"][1], "ntraj": out["grid"][2], "points": points,
            "load1": load1()}


def time_master(sizes, points):
    chain = trajspin.Chain(sizes)
    t0 = time.perf_counter()
    r = trajspin.solve_master(chain, log_grid(points))
    wall = time.perf_counter() - t0
    sweeps = int(re.search(r"(\d+) sweeps", r.meta["solver"])[1])
    return {"chain": list(sizes), "points": points, "wall": wall, "sweeps": sweeps, "load1": load1()}


def time_steady(sizes):
    chain = trajspin.Chain(sizes)
    t0 = time.perf_counter()
    trajspin.steady_state(chain)
    return {"chain": list(sizes), "wall": time.perf_counter() - t0, "load1": load1()}


def fit(rows, targets):
    """NNLS of sum_j c_j f_ij = t_i on relative error; rows: list of feature dicts."""
    keys = list(rows[0])
    A = np.array([[r[k] for k in keys] for r in rows]) / np.asarray(targets)[:, None]
    scale = A.max(axis=0)
    scale[scale == 0] = 1.0
    c, _ = nnls(A / scale, np.ones(len(rows)))
    return dict(zip(keys, c / scale))


def dims_of(sizes):
    return trajspin.sectors.sector_dims(sizes)[: sizes[0] + 1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seconds", type=float, default=0.5, help="trajectory work per measurement")
    p.add_argument("--write", metavar="ESTIMATE_PY", default=None,
                   help="also write the fitted constants into this copy of trajspin/estimate.py")
    p.add_argument("--refit", action="store_true",
                   help="measure nothing: refit the features to results/calibrate_estimate.json")
    p.add_argument("--steady", action="store_true",
                   help="measure steady_state only (after a cascade change); the trajectory and "
                        "master rows come from results/calibrate_estimate.json")
    a = p.parse_args(argv)
    if a.refit or a.steady:
        import json
        from bench_master import RESULTS
        data = json.loads((RESULTS / "calibrate_estimate.json").read_text())
        if a.steady:
            data["steady"] = []
            trajspin.steady_state(trajspin.Chain((2, 1, 1)))        # kernels
            for s in STEADY_CHAINS:
                row = time_steady(s)
                data["steady"].append(row)
                print(f"steady {chain_name(s)}: {row['wall']:.3f} s", flush=True)
        return report(data, a.write)
    tc, mc, sc = ((QUICK["traj"], QUICK["master"], QUICK["steady"]) if a.quick
                  else (TRAJ_CHAINS, MASTER_CHAINS, STEADY_CHAINS))
    data = {"machine": machine_info(), "traj": [], "master": [], "steady": []}
    trajspin.run_trajectories(trajspin.Chain((2, 1)), log_grid(10), 2, progress=False)   # kernels
    trajspin.solve_master(trajspin.Chain((2, 1)), log_grid(10))
    for s in tc:
        row = time_trajectories(s, 400, a.seconds)
        data["traj"].append(row)
        print(f"traj {chain_name(s)}: set-up {row['setup']:.4f} s, {row['per_traj'] * 1e6:.1f} us/traj "
              f"(jumps only {row['per_traj_jumps'] * 1e6:.1f}), {row['jumps_per_traj']:.1f} jumps", flush=True)
    for s in mc:
        for pts in (400, 40):
            row = time_master(s, pts)
            data["master"].append(row)
            print(f"master {chain_name(s)} T={pts}: {row['wall']:.3f} s, {row['sweeps']} sweeps", flush=True)
    for s in sc:
        row = time_steady(s)
        data["steady"].append(row)
        print(f"steady {chain_name(s)}: {row['wall']:.3f} s", flush=True)
    report(data, a.write)


def write_constants(path, new):
    """Replace the values of the fitted keys in the COSTS table of an estimate.py."""
    text = Path(path).read_text()
    for k, v in new.items():
        text, n = re.subn(r'("%s": )[-0-9.e+]+(,)' % k, lambda m: f"{m.group(1)}{v:.3g}{m.group(2)}", text)
        if n != 1:
            raise SystemExit(f"{path}: key {k} not found once in COSTS")
    Path(path).write_text(text)


def report(data, write=None):
    """Fit, print the constants and the prediction / measurement ratios, write the JSON."""
    new = {}
    # set-up
    feats = [est.trajectory_features(dims_of(r["chain"]), len(r["chain"]), 2)[0] for r in data["traj"]]
    new.update(fit(feats, [max(r["setup"], 1e-4) for r in data["traj"]]))
    # per trajectory: 2-point and 400-point runs together
    feats, targets = [], []
    for r in data["traj"]:
        d, M = dims_of(r["chain"]), len(r["chain"])
        for T, t in ((r["points"], r["per_traj"]), (2, r["per_traj_jumps"])):
            feats.append(est.trajectory_features(d, M, T)[1])
            targets.append(t)
    new.update(fit(feats, targets))
    # master: sweeps = base + per_point T (least squares in log space is overkill: plain LS)
    T = np.array([r["points"] for r in data["master"]], float)
    S = np.array([r["sweeps"] for r in data["master"]], float)
    b, a0 = np.polyfit(T, S, 1)
    new["sweeps_base"], new["sweeps_per_point"] = float(max(a0, 0.0)), float(max(b, 0.0))
    saved = dict(est.COSTS)
    est.COSTS.update(sweeps_base=new["sweeps_base"], sweeps_per_point=new["sweeps_per_point"])
    feats = [est.master_features(dims_of(r["chain"]), len(r["chain"]), r["points"]) for r in data["master"]]
    new.update(fit(feats, [r["wall"] for r in data["master"]]))
    # steady: d^3 and per-sector terms only.  A free M d^2 term trades off against d^3 on
    # these chains (the 2026-12-08 fit put 70 % of a 1111-state sector's time in it) and then
    # predicts half the time of sectors 8x larger, whose eigh alone grows as d^3.
    feats = [est.steady_features(dims_of(r["chain"]), len(r["chain"])) for r in data["steady"]]
    for f in feats:
        f.pop("steady_d2")
    new.update(fit(feats, [r["wall"] for r in data["steady"]]), steady_d2=0.0)
    est.COSTS.update(new)

    print("\nfitted constants (paste into trajspin/estimate.py COSTS):")
    for k, v in new.items():
        print(f'    "{k}": {v:.3g},')
    print("\nprediction / measurement with the fitted constants:")
    ratios = []
    for r in data["traj"]:
        d, M = dims_of(r["chain"]), len(r["chain"])
        su, per = est.trajectory_features(d, M, r["points"])
        ps, pt = est._cost(su), est._cost(per)
        ratios += [pt / r["per_traj"]]
        r["predicted_per_traj"], r["predicted_setup"] = pt, ps
        print(f"  traj   {chain_name(r['chain']):<18} per traj {pt / r['per_traj']:.2f}x, set-up "
              f"{ps / max(r['setup'], 1e-6):.2f}x")
    for r in data["master"]:
        pt = est._cost(est.master_features(dims_of(r["chain"]), len(r["chain"]), r["points"]))
        ratios.append(pt / r["wall"])
        r["predicted"] = pt
        print(f"  master {chain_name(r['chain']):<18} T={r['points']:<4} {pt / r['wall']:.2f}x")
    for r in data["steady"]:
        pt = est._cost(est.steady_features(dims_of(r["chain"]), len(r["chain"])))
        ratios.append(pt / r["wall"])
        r["predicted"] = pt
        print(f"  steady {chain_name(r['chain']):<18} {pt / r['wall']:.2f}x")
    worst = float(np.max(np.abs(np.log(ratios))))
    print(f"\nworst factor {np.exp(worst):.2f}x; load average {os.getloadavg()[0]:.2f}")
    if write:
        write_constants(write, new)
        print(f"constants written to {write}")
    data["fitted"] = new
    data["previous"] = saved
    data["worst_factor"] = float(np.exp(worst))
    data["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"written {write_json('calibrate_estimate', data)}")


if __name__ == "__main__":
    main()
