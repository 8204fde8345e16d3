"""Trajectory engine benchmarks: trajectories per second, numba compile time, QuTiP ``mcsolve``.

    python analysis/benchmarks/bench_trajectories.py            # trajspin only (~1 min + (1000, 30, 3))
    python analysis/benchmarks/bench_trajectories.py --qutip    # + QuTiP mcsolve, 1000 trajectories per chain

What is measured (one core: BLAS threads pinned to 1, numba kernels are serial):

- numba compile time: ``import trajspin`` and a first tiny ``run_trajectories`` + ``trajectory``
  in a fresh process with an empty numba cache directory (cold: compiles and writes the cache),
  then in a second fresh process with that same directory (warm: loads the cache); the third
  number is the same call once compiled (the work itself).
- (40, 2), (12, 6, 2), (8, 6, 5, 1) on 400 log-spaced times in [1e-4, 1e3], 10^4 trajectories
  (seed 1): kernels are loaded first (compile excluded); the sector set-up is timed on a fresh
  Chain (first call with one trajectory, minus one trajectory's time), then 10^4 trajectories on
  the same Chain (tables cached).  Rate = ntraj / run time.
- (1000, 30, 3): the same with ``--big-ntraj`` trajectories (default 40), extrapolated to 10^4:
  set-up + 10^4 x (run time / ntraj).
- agreement with the exact solver: max over grid and domains of |mean - solve_master| / standard error.
- ``--qutip``: ``qutip.mcsolve`` (serial map, default ODE tolerances atol 1e-8 rtol 1e-6) on the same
  chain, grid and initial state with ``--qutip-ntraj`` trajectories (default 1000) in a fresh
  process killed after ``--qutip-budget`` s.  Speed ratio of per-trajectory rates
  (trajspin traj/s) / (QuTiP traj/s); difference of the two means in units of their combined
  standard error, max over grid and domains (two-sample test with pooled variance):

      z = |m_ts - m_qt| / sqrt(s^2 (1/n_ts + 1/n_qt) + floor^2),
      s^2 = (n_ts s_ts^2 + n_qt s_qt^2) / (n_ts + n_qt)      (s_x: spread of one trajectory)

  Pooling matters at early times: with 1000 QuTiP trajectories often none has jumped yet at
  gamma t ~ 1e-3, so QuTiP's own spread is 0 there although the jump probability is not.
  floor = 1e-6 N_i is QuTiP's ODE rtol.  The same s is used for |QuTiP - exact| (s / sqrt(n_qt)).
  With ~10^3 correlated comparisons, a max |z| up to ~3.5 is what pure noise gives -- if the
  spread is well estimated: at gamma t ~ 0.5 in (40, 2) the distribution of <J_1^z> has a heavy
  tail (rare trajectories that keep their excitation), 10^4 samples underestimate the standard
  error and |z| of 5-20 against the exact solver occur for seeds whose mean over 2 10^5
  trajectories is within 0.2 standard errors.
- ``--qutip-omega0 1,0``: QuTiP's H = omega0 sum_i J_i^z.  The brief's omega0 = 1 makes each
  QuTiP trajectory follow a phase turning at frequency ~K up to gamma t = 1e3 (it does not change
  <J_z>); omega0 = 0 is the rotating frame, which a QuTiP user would choose.  Both are reported.

Results go to ``analysis/benchmarks/results/bench_trajectories.json``.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import subprocess
import sys
import tempfile
import time

import numpy as np

import trajspin
from bench_master import (HEADER, chain_name, fmt_s, load1, log_grid, machine_info, print_report,
                          write_json)

CHAINS = [(40, 2), (12, 6, 2), (8, 6, 5, 1), (4, 3, 3, 2)]
BIG_CHAIN = (1000, 30, 3)
SEED = 1

_COMPILE_CHILD = """
import time
t0 = time.perf_counter()
import numpy as np, trajspin
t1 = time.perf_counter()
chain = trajspin.Chain((3, 2, 1))
times = np.logspace(-4, 3, 50)
trajspin.run_trajectories(chain, times, 4, progress=False)
trajspin.trajectory(chain, times, seed=1, index=0)
t2 = time.perf_counter()
trajspin.run_trajectories(trajspin.Chain((3, 2, 1)), times, 4, progress=False)
trajspin.trajectory(chain, times, seed=1, index=0)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def compile_times():
    """Import and first-call times in a cold (empty numba cache) and a warm fresh process."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for name in ("cold", "warm"):
            proc = subprocess.run([sys.executable, "-c", _COMPILE_CHILD], env=env,
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode:
                raise RuntimeError(proc.stderr)
            imp, first, again = map(float, proc.stdout.split())
            out[name] = {"import": imp, "first_call": first, "compiled_call": again}
    return out


def compare(m1, se, m2, floor):
    """max |m1 - m2| / sqrt(se^2 + floor^2) over grid and domains, and where (time index, domain)."""
    z = np.abs(m1 - m2) / np.sqrt(se**2 + floor**2)
    k = np.unravel_index(np.argmax(z), z.shape)
    return float(z[k]), int(k[0]), int(k[1])


def pooled_spread(se1, n1, se2, n2):
    """Spread s of one trajectory's <J_z> from two samples' standard errors (pooled variance)."""
    return np.sqrt((n1 * n1 * se1**2 + n2 * n2 * se2**2) / (n1 + n2))


def time_chain(sizes, times, ntraj):
    """Set-up and run time of ``ntraj`` trajectories (kernels already compiled)."""
    chain = trajspin.Chain(sizes)
    t0 = time.perf_counter()
    trajspin.run_trajectories(chain, times, 1, seed=SEED, progress=False)
    first = time.perf_counter() - t0
    load = load1()
    t0 = time.perf_counter()
    r = trajspin.run_trajectories(chain, times, ntraj, seed=SEED, progress=False)
    run = time.perf_counter() - t0
    per = run / ntraj
    return chain, r, {"chain": list(sizes), "ntraj": ntraj, "points": int(times.size),
                      "setup": max(first - per, 0.0), "run": run, "per_traj": per, "rate": 1.0 / per,
                      "jumps_per_traj": r.njumps_sum / ntraj, "ndark": r.ndark,
                      "max_sector_dim": int(chain.sectors.dims[: sizes[0] + 1].max()),
                      "table_bytes": trajspin.trajectories.trajectory_memory_estimate(chain),
                      "load1": load}


def run(qutip=False, qutip_budget=900.0, qutip_ntraj=1000, ntraj=10_000, big_ntraj=40,
        chains=None, points=400, verbose=True, exact=True, qutip_omega0=(1.0,)):
    say = print if verbose else (lambda *a, **k: None)
    times = log_grid(points)
    data = {"machine": machine_info(), "grid": {"points": points, "tmin": 1e-4, "tmax": 1e3},
            "seed": SEED, "chains": [], "big": None}
    data["compile"] = compile_times()
    c = data["compile"]
    say(f"numba: cold first call {fmt_s(c['cold']['first_call'])}, warm (cached) "
        f"{fmt_s(c['warm']['first_call'])}, compiled {fmt_s(c['warm']['compiled_call'])}; "
        f"import {fmt_s(c['cold']['import'])} / {fmt_s(c['warm']['import'])}", flush=True)
    trajspin.run_trajectories(trajspin.Chain((2, 1)), times, 2, progress=False)   # load kernels
    for sizes in [tuple(s) for s in (chains or CHAINS)]:
        chain, r, row = time_chain(sizes, times, ntraj)
        if exact:
            m = trajspin.solve_master(chain, times)
            row["z_vs_exact"] = compare(r.jz, r.jz_err, m.jz, 1e-9 * np.asarray(sizes))[0]
        say(f"trajectories {chain_name(sizes)}: {ntraj} in {fmt_s(row['run'])} "
            f"({row['rate']:.0f}/s), set-up {fmt_s(row['setup'])}, "
            f"{row['jumps_per_traj']:.1f} jumps/traj"
            + (f", max |mean - exact|/se {row['z_vs_exact']:.2f}" if exact else ""), flush=True)
        if qutip:
            # the same number of trajectories as QuTiP, same seed, same grid (tables built)
            t0 = time.perf_counter()
            rq = trajspin.run_trajectories(chain, times, qutip_ntraj, seed=SEED, progress=False)
            row["same_n"] = {"ntraj": qutip_ntraj, "wall": time.perf_counter() - t0}
            row["qutip"] = []
            for omega0 in qutip_omega0:
                entry = _mcsolve_entry(sizes, times, rq, qutip_ntraj, m if exact else None,
                                       row["same_n"]["wall"], qutip_budget, qutip_ntraj, omega0, say,
                                       spread_from=r)
                row["qutip"].append(entry)
        data["chains"].append(row)
    if big_ntraj:
        chain, r, row = time_chain(BIG_CHAIN, times, big_ntraj)
        row["extrapolated_1e4"] = row["setup"] + 1e4 * row["per_traj"]
        data["big"] = row
        say(f"trajectories {chain_name(BIG_CHAIN)}: set-up {fmt_s(row['setup'])}, {big_ntraj} in "
            f"{fmt_s(row['run'])} ({fmt_s(row['per_traj'])}/traj, {row['jumps_per_traj']:.0f} jumps/traj); "
            f"10^4 extrapolated {fmt_s(row['extrapolated_1e4'])}", flush=True)
    data["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return data


def _mcsolve_entry(sizes, times, r, ntraj, m, wall_ts, budget, qntraj, omega0, say, spread_from=None):
    """Run qutip.mcsolve (budgeted, fresh process) and compare it with the trajspin ensemble r.

    ``r`` holds ``ntraj`` (= ``qntraj``) trajspin trajectories that took ``wall_ts`` seconds;
    the speed ratio is QuTiP's wall time / trajspin's for the same number of trajectories.
    The spread of one trajectory's <J_i^z> (the standard error's numerator) is pooled from
    QuTiP's run and ``spread_from`` (the 10^4-trajectory trajspin run of the same chain): with
    a few hundred trajectories neither sample has jumped at gamma t ~ 1e-4, so their own
    spread is 0 there although the jump probability is not.
    """
    from qutip_reference import run_budgeted
    say(f"qutip.mcsolve {chain_name(sizes)}, omega0={omega0:g}, {qntraj} trajectories "
        f"(budget {budget:.0f} s) ...", flush=True)
    load_before = load1()
    q = run_budgeted("mcsolve", sizes, times, budget, ntraj=qntraj, seed=SEED, omega0=omega0)
    entry = {"status": q["status"], "wall": q.get("wall"), "ntraj": q.get("ntraj", qntraj),
             "omega0": omega0, "load1_before": load_before, "load1_after": load1(),
             "tolerances": q.get("tolerances"), "failed_wall": q.get("failed_wall")}
    if q["status"] == "ok":
        rate_q = q["ntraj"] / q["wall"]
        floor = 1e-6 * np.asarray(sizes, float)
        nq = q["ntraj"]
        big = spread_from if spread_from is not None else r
        spread = pooled_spread(big.jz_err, big.ntraj, q["jz_err"], nq)
        z, kt, ki = compare(r.jz, spread * np.sqrt(1 / ntraj + 1 / nq), q["jz"], floor)
        entry.update(rate=rate_q, per_traj=1.0 / rate_q, ratio=q["wall"] / wall_ts, z=z,
                     trajspin_wall=wall_ts, trajspin_ntraj=ntraj,
                     z_at=[float(times[kt]), ki + 1],
                     max_abs_diff=float(np.max(np.abs(r.jz_over_n - q["jz"] / np.asarray(sizes)))))
        if m is not None:
            entry["z_vs_exact"] = compare(q["jz"], spread / np.sqrt(nq), m.jz, floor)[0]
    elif q["status"] == "timeout":
        entry.update(ratio_lower_bound=budget / wall_ts, trajspin_wall=wall_ts, trajspin_ntraj=ntraj)
    else:
        entry.update(error=q.get("error"))
    say("   " + _qutip_text(entry), flush=True)
    return entry


def _qutip_text(q):
    if q["status"] == "ok":
        return (f"mcsolve {q['ntraj']} traj in {fmt_s(q['wall'])} ({q['rate']:.1f}/s): ratio "
                f"{q['ratio']:.0f}x; max |diff|/combined se {q['z']:.2f} at t={q['z_at'][0]:.3g}, "
                f"D{q['z_at'][1]}")
    if q["status"] == "timeout":
        return f"mcsolve > {q['wall']:.0f} s (budget): ratio > {q['ratio_lower_bound']:.0f}x"
    return f"mcsolve failed: {q.get('error')}"


def rows(data):
    out = []
    c = data.get("compile")
    if c:
        out.append(["numba compile", "(3, 2, 1) first call", f"cold {fmt_s(c['cold']['first_call'])}",
                    "-", "-", "-", f"cached {fmt_s(c['warm']['first_call'])}, compiled "
                    f"{fmt_s(c['warm']['compiled_call'])}; import {fmt_s(c['warm']['import'])}"])
    for r in data["chains"]:
        qs = r.get("qutip") or []
        if isinstance(qs, dict):
            qs = [qs]
        note = f"set-up {fmt_s(r['setup'])}, {r['jumps_per_traj']:.1f} jumps/traj, load {r['load1']}"
        agree = f"|ts-exact|/se {r['z_vs_exact']:.1f}" if "z_vs_exact" in r else "-"
        out.append(["trajectories", chain_name(r["chain"]),
                    f"{r['rate']:.0f}/s ({r['ntraj']} in {fmt_s(r['run'])})", "-", "-", agree, note])
        for q in qs:
            qt, ratio, agree = "-", "-", []
            ts = (f"{q['trajspin_ntraj']} in {fmt_s(q['trajspin_wall'])}" if q.get("trajspin_wall")
                  else "")
            if q["status"] == "ok":
                qt = f"{q['ntraj']} in {fmt_s(q['wall'])}"
                ratio = f"{q['ratio']:.0f}x"
                agree.append(f"|ts-qt|/se {q['z']:.1f}")
                if "z_vs_exact" in q:
                    agree.append(f"|qt-exact|/se {q['z_vs_exact']:.1f}")
                if "max_abs_diff" in q:
                    agree.append(f"max|d(Jz/N)| {q['max_abs_diff']:.2g}")
            elif q["status"] == "timeout":
                qt, ratio = f"> {q['wall']:.0f} s for {q['ntraj']}", f"> {q['ratio_lower_bound']:.0f}x"
            else:
                qt = "failed: " + " ".join(q.get("error") or [])[:60]
            qnote = f"QuTiP load {q['load1_before']}; {q.get('tolerances') or 'qutip default tolerances'}"
            if q.get("failed_wall"):
                qnote += f" (defaults failed after {fmt_s(q['failed_wall'])}: collapse time not found)"
            out.append([f"  vs mcsolve w0={q.get('omega0', 1.0):g}", chain_name(r["chain"]), ts, qt,
                        ratio, ", ".join(agree) or "-", qnote])
    b = data.get("big")
    if b:
        out.append(["trajectories", chain_name(b["chain"]),
                    f"{b['rate']:.1f}/s ({b['ntraj']} in {fmt_s(b['run'])})", "-", "-", "-",
                    f"set-up {fmt_s(b['setup'])}; 10^4 extrapolated {fmt_s(b['extrapolated_1e4'])}; "
                    f"{b['jumps_per_traj']:.0f} jumps/traj, load {b['load1']}"])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--qutip", action="store_true", help="also run qutip.mcsolve")
    p.add_argument("--qutip-budget", type=float, default=900.0, metavar="SECONDS")
    p.add_argument("--qutip-ntraj", type=int, default=1000)
    p.add_argument("--qutip-omega0", default="1", metavar="LIST",
                   help="comma-separated omega0 of QuTiP's H = omega0 sum J_z, one mcsolve run each "
                        "(default 1; '1,0' adds the rotating frame, see qutip_reference.py)")
    p.add_argument("--ntraj", type=int, default=10_000)
    p.add_argument("--big-ntraj", type=int, default=40, help="trajectories of (1000, 30, 3); 0 skips")
    p.add_argument("--chains", type=str, default=None, help="e.g. '4,2;3,2,1'")
    p.add_argument("--points", type=int, default=400)
    p.add_argument("--no-exact", action="store_true", help="skip the comparison with solve_master")
    p.add_argument("--out", default="bench_trajectories")
    a = p.parse_args(argv)
    chains = [tuple(int(x) for x in c.split(",")) for c in a.chains.split(";")] if a.chains else None
    data = run(a.qutip, a.qutip_budget, a.qutip_ntraj, a.ntraj, a.big_ntraj, chains, a.points,
               exact=not a.no_exact, qutip_omega0=[float(w) for w in a.qutip_omega0.split(",")])
    path = write_json(a.out, data)
    print_report(HEADER, rows(data), data, path)


if __name__ == "__main__":
    main()
