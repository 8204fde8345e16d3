"""Exact solver benchmarks: ``solve_master`` time traces, ``steady_state``, and QuTiP ``mesolve``.

    python analysis/benchmarks/bench_master.py                  # trajspin only (~1 min)
    python analysis/benchmarks/bench_master.py --qutip          # + QuTiP mesolve, up to 900 s per chain

What is measured (one core: BLAS threads are pinned to 1 before numpy is imported):

- ``solve_master`` on the paper's chains (40, 2), (12, 6, 2), (8, 6, 5, 1), (4, 3, 3, 2) and on
  (20, 10, 4), 400 log-spaced times in [1e-4, 1e3] (units of 1/gamma).  Each call gets a fresh
  ``Chain`` (sector set-up included); best and median of ``--repeat`` calls.
- ``steady_state`` of (1000, 30, 3), and a scan of N_1 for (N_1, 30, 3), doubling N_1, each in a
  fresh process (time, peak RSS) until the next point would exceed the remaining time budget
  (``--scan-budget``, default 600 s), the memory cap (``--max-mem-gb``) or trajspin's own memory check.
- ``--qutip``: ``qutip.mesolve`` of the same chain, grid, initial state, atol 1e-10, rtol 1e-8, in a
  fresh process killed after ``--qutip-budget`` seconds (then the ratio is a lower bound, "> ").
  Printed: speed ratio t_QuTiP / t_trajspin (best) and max over grid and domains of
  |<J_i^z>/N_i (trajspin) - <J_i^z>/N_i (QuTiP)|.

Results go to ``analysis/benchmarks/results/bench_master.json`` (and the table to stdout).
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"   # one core for both tools (before numpy is imported)

import argparse
import datetime
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import trajspin

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAPER_CHAINS = [(40, 2), (12, 6, 2), (8, 6, 5, 1), (4, 3, 3, 2)]
LARGE_CHAIN = (20, 10, 4)
STEADY_CHAIN = (1000, 30, 3)


# ---------------------------------------------------------------- shared helpers (other scripts import these)

def log_grid(points=400, tmin=1e-4, tmax=1e3):
    """The benchmark grid: ``points`` log-spaced times in [tmin, tmax]."""
    return np.logspace(np.log10(tmin), np.log10(tmax), points)


def machine_info():
    """Date, host, cores, load averages and package versions, for the results files."""
    import numba
    import scipy
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "host": platform.node(), "cpu": _cpu_name(), "cores": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "numba": numba.__version__,
            "trajspin": trajspin.__version__, "git": _git_state()}
    try:
        import qutip
        info["qutip"] = qutip.__version__
    except ImportError:
        info["qutip"] = None
    return info


def _git_state():
    """Commit of the trajspin checkout, with '+dirty' if trajspin/ has uncommitted changes.

    A run on a copy of the tree (``PYTHONPATH=<copy>``, so that other people's edits cannot
    change the code under a long run) says so in ``TRAJSPIN_BENCH_TREE``, which wins.
    """
    if os.environ.get("TRAJSPIN_BENCH_TREE"):
        return os.environ["TRAJSPIN_BENCH_TREE"]
    root = Path(trajspin.__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "trajspin"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (head + ("+dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def load1():
    return round(os.getloadavg()[0], 2)


def write_json(name, data):
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_jsonable))
    os.replace(tmp, path)
    return path


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x))


def fmt_s(sec):
    """Seconds in a short human form."""
    if sec is None:
        return "-"
    if sec < 1e-3:
        return f"{sec * 1e6:.1f} us"
    if sec < 1:
        return f"{sec * 1e3:.1f} ms"
    return f"{sec:.2f} s" if sec < 100 else f"{sec:.0f} s"


def chain_name(sizes):
    return "(" + ", ".join(map(str, sizes)) + ")"


def print_table(header, rows):
    """A fixed-width text table; rows are lists of strings."""
    widths = [max(len(str(r[k])) for r in [header] + rows) for k in range(len(header))]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(header, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------- trajspin timings

def time_master(sizes, times, repeat):
    """Best and median wall time of ``solve_master`` with a fresh Chain each call."""
    walls, res = [], None
    for _ in range(repeat):
        chain = trajspin.Chain(sizes)
        t0 = time.perf_counter()
        res = trajspin.solve_master(chain, times)
        walls.append(time.perf_counter() - t0)
    return {"chain": list(sizes), "points": int(times.size), "repeat": repeat,
            "best": min(walls), "median": float(np.median(walls)), "walls": walls,
            "solver": res.meta.get("solver"), "max_trace_error": float(np.max(np.abs(res.trace - 1))),
            "hilbert_dim": chain.hilbert_dim, "max_sector_dim": int(chain.sectors.dims.max()),
            "load1": load1()}, res


def time_steady(sizes):
    chain = trajspin.Chain(sizes)
    t0 = time.perf_counter()
    res = trajspin.steady_state(chain)
    wall = time.perf_counter() - t0
    return {"chain": list(sizes), "wall": wall, "jz_over_n": res.jz_over_n.tolist(), "load1": load1()}


_STEADY_CHILD = """
import os, json, resource, time, sys
import trajspin
chain = trajspin.Chain({sizes})
try:
    t0 = time.perf_counter()
    r = trajspin.steady_state(chain)
    wall = time.perf_counter() - t0
    out = {{"status": "ok", "wall": wall, "jz_over_n": r.jz_over_n.tolist()}}
except trajspin.InputError as exc:
    out = {{"status": "refused", "error": str(exc)}}
out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
try:    # the estimate steady_state checks (older trajspin: the solve_master one)
    from trajspin.exact.master import steady_memory_estimate as estimate
except ImportError:
    estimate = trajspin.master_memory_estimate
out["estimate_gb"] = estimate(chain) / 2**30
print(json.dumps(out))
"""


def steady_scan(rest=(30, 3), start=1000, budget=600.0, max_mem_gb=4.0):
    """steady_state of (N1, *rest) for N1 = start, 2 start, 4 start, ... in fresh processes.

    The next N1 runs only if its time (extrapolated with the log-log slope of the last two
    points) and peak RSS (extrapolated linearly) fit in the remaining budget and the memory cap.
    """
    points, used, n1 = [], 0.0, start
    stop_reason = None
    while True:
        if len(points) >= 2:
            (na, ta, ma), (nb, tb, mb) = [(p["N1"], p["wall"], p["peak_rss_gb"]) for p in points[-2:]]
            st = np.log(tb / ta) / np.log(nb / na)
            t_next = tb * (n1 / nb) ** st
            m_next = mb + (mb - ma) * (n1 - nb) / (nb - na)     # RSS = base + slope * N1
            if used + t_next > budget:
                stop_reason = f"N1={n1}: predicted {t_next:.0f} s exceeds the remaining budget {budget - used:.0f} s"
                break
            if m_next > max_mem_gb:
                stop_reason = f"N1={n1}: predicted peak RSS {m_next:.1f} GB exceeds the cap {max_mem_gb} GB"
                break
        remaining = budget - used
        if remaining <= 0:
            stop_reason = "time budget used up"
            break
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-c", _STEADY_CHILD.format(sizes=[n1, *rest])],
                                  capture_output=True, text=True, timeout=remaining)
        except subprocess.TimeoutExpired:
            stop_reason = f"N1={n1}: killed at the end of the budget"
            break
        used += time.perf_counter() - t0
        if proc.returncode:
            stop_reason = f"N1={n1}: failed: {proc.stderr.strip().splitlines()[-1:]}"
            break
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        if out["status"] != "ok":
            stop_reason = f"N1={n1}: trajspin refused: {out['error']}"
            break
        points.append({"N1": n1, "wall": out["wall"], "peak_rss_gb": out["peak_rss_gb"],
                       "estimate_gb": out["estimate_gb"], "jz3_over_n": out["jz_over_n"][-1],
                       "load1": load1()})
        print(f"  steady_state ({n1}, {', '.join(map(str, rest))}): {out['wall']:.2f} s, "
              f"peak RSS {out['peak_rss_gb']:.2f} GB", flush=True)
        n1 *= 2
    slope = None
    if len(points) >= 2:
        x = np.log([p["N1"] for p in points])
        slope = float(np.polyfit(x, np.log([p["wall"] for p in points]), 1)[0])
    last = points[-1] if points else None
    n1_10min = None
    if last and slope:
        n1_10min = int(last["N1"] * (600.0 / last["wall"]) ** (1.0 / slope))
    return {"rest": list(rest), "points": points, "budget": budget, "used": used,
            "max_mem_gb": max_mem_gb, "stop_reason": stop_reason, "time_exponent": slope,
            "n1_in_600s_time_only": n1_10min}


# ---------------------------------------------------------------- main

def run(qutip=False, qutip_budget=900.0, repeat=3, scan_budget=600.0, max_mem_gb=4.0,
        chains=None, points=400, verbose=True):
    say = print if verbose else (lambda *a, **k: None)
    times = log_grid(points)
    data = {"machine": machine_info(), "grid": {"points": points, "tmin": 1e-4, "tmax": 1e3},
            "master": [], "steady": None, "scan": None, "qutip_budget": qutip_budget if qutip else None}
    results = {}
    chains = [tuple(c) for c in (chains or PAPER_CHAINS + [LARGE_CHAIN])]
    for sizes in chains:
        row, res = time_master(sizes, times, 1 if sizes == LARGE_CHAIN else repeat)
        results[sizes] = res
        data["master"].append(row)
        say(f"solve_master {chain_name(sizes)}: best {fmt_s(row['best'])}, median {fmt_s(row['median'])}"
            f"  ({row['solver']})", flush=True)
    if scan_budget is not None and scan_budget > 0:
        data["steady"] = time_steady(STEADY_CHAIN)
        say(f"steady_state {chain_name(STEADY_CHAIN)}: {fmt_s(data['steady']['wall'])}", flush=True)
        data["scan"] = steady_scan(STEADY_CHAIN[1:], budget=scan_budget, max_mem_gb=max_mem_gb)
        say(f"  scan stopped: {data['scan']['stop_reason']}", flush=True)
    if qutip:
        from qutip_reference import run_budgeted
        for row in data["master"]:
            sizes = tuple(row["chain"])
            if sizes == LARGE_CHAIN:
                continue
            say(f"qutip.mesolve {chain_name(sizes)} (budget {qutip_budget:.0f} s) ...", flush=True)
            load_before = load1()
            q = run_budgeted("mesolve", sizes, times, qutip_budget, atol=1e-10, rtol=1e-8)
            entry = {"status": q["status"], "wall": q.get("wall"), "load1_before": load_before,
                     "load1_after": load1(), "dim": q.get("dim"), "atol": 1e-10, "rtol": 1e-8}
            if q["status"] == "ok":
                diff = np.abs(results[sizes].jz_over_n - q["jz"] / np.asarray(sizes, float))
                entry.update(max_abs_diff=float(diff.max()), ratio=q["wall"] / row["best"],
                             diff_at=float(times[np.unravel_index(diff.argmax(), diff.shape)[0]]))
            elif q["status"] == "timeout":
                entry.update(ratio_lower_bound=qutip_budget / row["best"])
            else:
                entry.update(error=q.get("error"))
            row["qutip"] = entry
            say("   " + _qutip_text(entry), flush=True)
    data["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return data


def attach_qutip(data, earlier):
    """Attach the QuTiP mesolve times of an earlier run (same grid) to a trajspin-only run.

    QuTiP's time does not depend on trajspin, so a new trajspin build can be compared with
    it without rerunning QuTiP for an hour.  Ratios are recomputed with the new trajspin
    times; the agreement is *not* re-measured (the earlier run kept no QuTiP arrays), and the
    table says where the QuTiP time came from.
    """
    if earlier["grid"] != data["grid"]:
        raise SystemExit(f"grids differ: {earlier['grid']} vs {data['grid']}")
    m = earlier["machine"]
    source = f"QuTiP run of {m['date']} (trajspin {m.get('git') or '?'})"
    src = {tuple(r["chain"]): r["qutip"] for r in earlier["master"] if r.get("qutip")}
    for r in data["master"]:
        q = src.get(tuple(r["chain"]))
        if not q or q.get("from"):
            continue
        e = {k: q.get(k) for k in ("status", "wall", "load1_before", "load1_after", "dim", "atol", "rtol")}
        e["from"] = source
        e["agreement_then"] = q.get("max_abs_diff")
        if q["status"] == "ok":
            e["ratio"] = q["wall"] / r["best"]
        elif q["status"] == "timeout":
            e["ratio_lower_bound"] = q["wall"] / r["best"]
        r["qutip"] = e
    data["qutip_from"] = source
    return data


def _qutip_text(q):
    if q["status"] == "ok":
        return (f"mesolve {fmt_s(q['wall'])}: ratio {q['ratio']:.0f}x, max |diff| of <Jz>/N "
                f"{q['max_abs_diff']:.1e}")
    if q["status"] == "timeout":
        return f"mesolve > {q['wall']:.0f} s (budget): ratio > {q['ratio_lower_bound']:.0f}x"
    return f"mesolve failed: {q.get('error')}"


def short_reason(reason):
    """The scan's stop reason without trajspin's full error text."""
    m = re.search(r"(N1=\d+): trajspin refused: .*needs about ([\d.]+ GiB) but only ([\d.]+ GiB)", reason or "")
    if m:
        return f"{m[1]} refused by trajspin's memory check (estimate {m[2]}, {m[3]} available)"
    return reason


def rows(data):
    """Rows [benchmark, chain, trajspin, QuTiP, ratio, agreement, note] for the combined table."""
    out = []
    for r in data["master"]:
        q = r.get("qutip")
        qt, ratio, agree = "-", "-", "-"
        if q and q.get("from") and q["status"] in ("ok", "timeout"):
            qt = fmt_s(q["wall"]) if q["status"] == "ok" else f"> {q['wall']:.0f} s"
            ratio = f"{q['ratio']:.0f}x" if q["status"] == "ok" else f"> {q['ratio_lower_bound']:.0f}x"
            agree = "not re-measured"
        elif q and q["status"] == "ok":
            qt, ratio, agree = fmt_s(q["wall"]), f"{q['ratio']:.0f}x", f"max|d(Jz/N)| {q['max_abs_diff']:.1e}"
        elif q and q["status"] == "timeout":
            qt, ratio = f"> {q['wall']:.0f} s", f"> {q['ratio_lower_bound']:.0f}x"
        elif q:
            qt = "failed"
        note = f"{r['points']} pts, best of {r['repeat']}, load {r['load1']}"
        if q and q.get("from"):
            note += "; QuTiP time from the earlier run (see bench_master_qutip.json)"
        elif q:
            note += f"; QuTiP load {q['load1_before']}, atol {q.get('atol', 1e-10):g} rtol {q.get('rtol', 1e-8):g}"
        out.append(["solve_master", chain_name(r["chain"]), fmt_s(r["best"]), qt, ratio, agree, note])
    s = data.get("steady")
    if s:
        out.append(["steady_state", chain_name(s["chain"]), fmt_s(s["wall"]), "-", "-",
                    f"Jz3/N3 {s['jz_over_n'][-1]:.4f}", f"load {s['load1']}"])
    sc = data.get("scan")
    if sc and sc["points"]:
        last = sc["points"][-1]
        slope = f"{sc['time_exponent']:.2f}" if sc["time_exponent"] else "?"
        out.append(["steady_state scan", f"(N1, {', '.join(map(str, sc['rest']))})",
                    f"N1={last['N1']}: {fmt_s(last['wall'])}", "-", "-",
                    f"t ~ N1^{slope}, {last['peak_rss_gb']:.1f} GB",
                    f"{fmt_s(sc['used'])} used of {sc['budget']:.0f} s; stop: {short_reason(sc['stop_reason'])}"])
    return out


HEADER = ["benchmark", "chain", "trajspin", "QuTiP", "ratio", "agreement", "note"]


def print_report(header, table_rows, data, path):
    """The table of a benchmark script, then the load average around the run and the JSON path."""
    print()
    print(print_table(header, table_rows))
    print(f"\nload average at start {data['machine']['loadavg']}, at end {data['machine']['loadavg_end']}; "
          f"written {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--qutip", action="store_true", help="also run qutip.mesolve (slow)")
    p.add_argument("--qutip-budget", type=float, default=900.0, metavar="SECONDS",
                   help="wall-clock limit of each QuTiP call (default 900)")
    p.add_argument("--repeat", type=int, default=3, help="solve_master calls per chain (best is reported)")
    p.add_argument("--scan-budget", type=float, default=600.0, metavar="SECONDS",
                   help="time for the steady-state N1 scan; 0 skips steady state (default 600)")
    p.add_argument("--max-mem-gb", type=float, default=4.0, help="peak RSS cap of the scan (default 4)")
    p.add_argument("--chains", type=str, default=None,
                   help="semicolon-separated chains instead of the defaults, e.g. '4,2;3,2,1'")
    p.add_argument("--points", type=int, default=400)
    p.add_argument("--qutip-times-from", metavar="JSON", default=None,
                   help="without --qutip: take QuTiP's mesolve times from an earlier results file "
                        "(ratios recomputed, agreement not re-measured)")
    p.add_argument("--out", default="bench_master", help="results/<out>.json")
    a = p.parse_args(argv)
    chains = [tuple(int(x) for x in c.split(",")) for c in a.chains.split(";")] if a.chains else None
    data = run(a.qutip, a.qutip_budget, a.repeat, a.scan_budget, a.max_mem_gb, chains, a.points)
    if a.qutip_times_from and not a.qutip:
        attach_qutip(data, json.loads(Path(a.qutip_times_from).read_text()))
    path = write_json(a.out, data)
    print_report(HEADER, rows(data), data, path)


if __name__ == "__main__":
    main()
