"""The trajspin chain built in QuTiP, for side-by-side benchmarks.

Each domain i is a Dicke ladder with j_i = N_i/2 (``qutip.jmat``), so the
Hilbert space is prod(N_i + 1) -- the same coupled Dicke basis trajspin uses,
without the excitation-sector split:

    H   = omega0 sum_i J_i^z                  (default omega0 = 1; commutes with everything, no effect on <J_z>)
    C_c = sqrt(gamma_c) (J_c^- + J_{c+1}^-)   c = 0 .. M-2
    psi0 = |j_1, m_1 = n_1 - j_1> (x) ...     default n = (N_1, 0, ..., 0): domain 1 fully excited
    e_ops = J_i^z

omega0 does not change <J_z>, but it does change QuTiP's cost in ``mcsolve``: a trajectory's
state lies in one excitation sector, where H is the number K - sum N_i/2, so its phase turns
at frequency ~K and the ODE solver follows those turns up to gamma t = 1e3 (in ``mesolve`` the
state is block diagonal in K and [H, rho] = 0).  The rotating frame, omega0 = 0, removes them.

QuTiP runs are slow (minutes to hours), so the benchmarks start each one in a fresh
process with a wall-clock budget (:func:`run_budgeted`); this file is that process's
entry point:

    python qutip_reference.py mesolve --sizes 12 6 2 --out r.npz [--atol 1e-10 --rtol 1e-8]
    python qutip_reference.py mcsolve --sizes 12 6 2 --ntraj 1000 --seed 1 --out r.npz

Times: the log grid of the benchmarks (``--tmin --tmax --points``); QuTiP integrates
from t = 0 (prepended to its tlist, dropped from the output).  ``wall`` is the time
of the ``mesolve``/``mcsolve`` call alone (operators built and ``qutip`` imported before).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"   # one core, same as trajspin (set before numpy is imported)

import numpy as np

__all__ = ["build", "mesolve", "mcsolve", "run_budgeted"]


def build(sizes, gamma=1.0, initial=None, omega0=1.0):
    """QuTiP operators of the chain.

    Returns
    -------
    H : Qobj, c_ops : list of Qobj (M-1), psi0 : Qobj ket, e_ops : list of Qobj (M), J_i^z
    """
    import qutip

    sizes = [int(n) for n in sizes]
    M = len(sizes)
    gamma = np.broadcast_to(np.asarray(gamma, dtype=float), (M - 1,))
    n0 = [sizes[0]] + [0] * (M - 1) if initial is None else [int(k) for k in initial]
    eyes = [qutip.qeye(n + 1) for n in sizes]

    def embed(op, i):
        ops = list(eyes)
        ops[i] = op
        return qutip.tensor(ops)

    jz = [embed(qutip.jmat(n / 2, "z"), i) for i, n in enumerate(sizes)]
    jm = [embed(qutip.jmat(n / 2, "-"), i) for i, n in enumerate(sizes)]
    H = omega0 * sum(jz[1:], jz[0])
    c_ops = [np.sqrt(gamma[c]) * (jm[c] + jm[c + 1]) for c in range(M - 1)]
    # jmat orders m = j, j-1, ..., -j: excitation n_i = j + m sits at index N_i - n_i
    psi0 = qutip.tensor([qutip.basis(N + 1, N - k) for N, k in zip(sizes, n0)])
    return H, c_ops, psi0, jz


def _tlist(times):
    times = np.asarray(times, dtype=float)
    return times if times[0] == 0 else np.concatenate([[0.0], times]), times[0] != 0


def mesolve(sizes, times, atol=1e-10, rtol=1e-8, gamma=1.0, initial=None, omega0=1.0):
    """<J_i^z>(t) from ``qutip.mesolve``: dict with jz (T, M), wall (s), build (s), dim."""
    import qutip

    t0 = time.perf_counter()
    H, c_ops, psi0, e_ops = build(sizes, gamma, initial, omega0)
    tlist, drop = _tlist(times)
    build_time = time.perf_counter() - t0
    opts = {"atol": atol, "rtol": rtol, "nsteps": 10**7, "store_states": False, "progress_bar": ""}
    t0 = time.perf_counter()
    res = qutip.mesolve(H, psi0, tlist, c_ops, e_ops=e_ops, options=opts)
    wall = time.perf_counter() - t0
    jz = np.column_stack([np.real(e) for e in res.expect])[int(drop):]
    return {"jz": jz, "wall": wall, "build": build_time, "dim": int(psi0.shape[0]), "omega0": omega0,
            "method": str(res.solver) if hasattr(res, "solver") else "mesolve",
            "qutip": qutip.__version__}


# QuTiP's mcsolve stops with "Could not find the collapse time within desired tolerance" for
# (40, 2) at its defaults (norm_steps 5, norm_t_tol 1e-6), also with atol 1e-10 / rtol 1e-8:
# the early jumps come at gamma t ~ 1e-3 on a stiff norm decay.  A longer, finer collapse-time
# search fixes it; the run is then repeated with these options (ODE tolerances unchanged).
RETRY_OPTIONS = {"norm_steps": 200, "norm_t_tol": 1e-9}


def mcsolve(sizes, times, ntraj, seed=1, gamma=1.0, initial=None, omega0=1.0):
    """Trajectory mean and standard error of <J_i^z>(t) from ``qutip.mcsolve`` (serial map).

    Returns dict with jz, jz_err (T, M), wall, build, ntraj, tolerances.  QuTiP's default ODE
    tolerances for mcsolve are used (atol 1e-8, rtol 1e-6); if QuTiP cannot locate a collapse
    time with its default search, the whole run is repeated with ``RETRY_OPTIONS`` and ``wall``
    is the time of the successful run (``failed_wall`` the time lost before the error).
    """
    import qutip

    t0 = time.perf_counter()
    H, c_ops, psi0, e_ops = build(sizes, gamma, initial, omega0)
    tlist, drop = _tlist(times)
    build_time = time.perf_counter() - t0
    opts = {"map": "serial", "progress_bar": "", "store_states": False, "nsteps": 10**7}
    tolerances, failed_wall = "qutip default (atol 1e-8, rtol 1e-6)", None
    t0 = time.perf_counter()
    try:
        res = qutip.mcsolve(H, psi0, tlist, c_ops, e_ops=e_ops, ntraj=int(ntraj), seeds=int(seed),
                            options=opts)
    except RuntimeError as exc:
        if "collapse time" not in str(exc):
            raise
        failed_wall = time.perf_counter() - t0
        tolerances += "; retried with " + ", ".join(f"{k} {v:g}" for k, v in RETRY_OPTIONS.items())
        t0 = time.perf_counter()
        res = qutip.mcsolve(H, psi0, tlist, c_ops, e_ops=e_ops, ntraj=int(ntraj), seeds=int(seed),
                            options={**opts, **RETRY_OPTIONS})
    wall = time.perf_counter() - t0
    n = int(res.num_trajectories)
    jz = np.column_stack([np.real(e) for e in res.expect])[int(drop):]
    std = np.column_stack([np.real(e) for e in res.std_expect])[int(drop):]
    # QuTiP's std_expect is the population standard deviation; standard error of the mean:
    err = std * np.sqrt(1.0 / max(n - 1, 1))
    return {"jz": jz, "jz_err": err, "wall": wall, "build": build_time, "ntraj": n,
            "dim": int(psi0.shape[0]), "omega0": omega0, "tolerances": tolerances, "failed_wall": failed_wall,
            "qutip": qutip.__version__}


def run_budgeted(kind, sizes, times, budget, **kwargs):
    """Run :func:`mesolve` or :func:`mcsolve` in a fresh process, killed after ``budget`` seconds.

    Returns
    -------
    dict
        The solver's dict, plus ``status`` ("ok", "timeout" or "failed") and ``process_wall``;
        on timeout ``wall`` is the budget (a lower bound on QuTiP's time).
    """
    times = np.asarray(times, dtype=float)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.npz"
        tfile = Path(tmp) / "times.npy"
        np.save(tfile, times)
        cmd = [sys.executable, str(Path(__file__).resolve()), kind, "--sizes",
               *map(str, sizes), "--times-file", str(tfile), "--out", str(out)]
        for k, v in kwargs.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        start = time.perf_counter()
        # own process group, so a timeout kills QuTiP and anything it started
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            return {"status": "timeout", "wall": float(budget), "process_wall": time.perf_counter() - start}
        wall = time.perf_counter() - start
        if proc.returncode or not out.exists():
            return {"status": "failed", "error": err.strip().splitlines()[-1:] or ["?"],
                    "process_wall": wall}
        with np.load(out, allow_pickle=False) as f:
            res = {k: f[k] for k in f.files}
    info = json.loads(str(res.pop("info")))
    info.update(res, status="ok", process_wall=wall)
    return info


def _main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=["mesolve", "mcsolve"])
    p.add_argument("--sizes", type=int, nargs="+", required=True)
    p.add_argument("--times-file", help=".npy with the output times (else a log grid)")
    p.add_argument("--tmin", type=float, default=1e-4)
    p.add_argument("--tmax", type=float, default=1e3)
    p.add_argument("--points", type=int, default=400)
    p.add_argument("--atol", type=float, default=1e-10)
    p.add_argument("--rtol", type=float, default=1e-8)
    p.add_argument("--ntraj", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--omega0", type=float, default=1.0, help="H = omega0 sum_i J_i^z (default 1)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    times = (np.load(a.times_file) if a.times_file
             else np.logspace(np.log10(a.tmin), np.log10(a.tmax), a.points))
    if a.kind == "mesolve":
        r = mesolve(a.sizes, times, a.atol, a.rtol, omega0=a.omega0)
    else:
        r = mcsolve(a.sizes, times, a.ntraj, a.seed, omega0=a.omega0)
    arrays = {k: v for k, v in r.items() if isinstance(v, np.ndarray)}
    info = {k: v for k, v in r.items() if not isinstance(v, np.ndarray)}
    tmp = a.out + ".tmp.npz"
    np.savez(tmp, info=np.array(json.dumps(info)), **arrays)
    os.replace(tmp, a.out)
    print(f"{a.kind} {a.sizes}: {r['wall']:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    _main()
