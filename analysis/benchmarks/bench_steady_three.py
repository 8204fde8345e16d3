"""Where the exact three-domain t -> infinity stops: measured cost per sector, extrapolated.

    python analysis/benchmarks/bench_steady_three.py          # ~4 min, both cores
    python analysis/benchmarks/bench_steady_three.py --quick  # ~1 min

Issue 13's target: ``steady_state(Chain([10**4, 100, 10]))`` in under 10 minutes, "or the
measured limit".  The stationary cascade (``trajspin.exact.cascade.stationary_blocks``) visits
every sector K = K0 .. 0 once; for (N_1, N_2, N_3) every sector with N_2 + N_3 <= K <= N_1 has
the full dimension d = (N_2 + 1)(N_3 + 1) (1111 here), so the run is K0 - N_2 - N_3 + 1 such
sectors plus the N_2 + N_3 smaller ones at the bottom, which are the same for every N_1 >= N_2
+ N_3.  This script runs the cascade of (K0_run, N_2, N_3) sector by sector, twice in one run: the
previous implementation (copied below: eigen-basis feed, six d^3 products per sector) and
``stationary_blocks`` (sparse Dicke-basis feed, four d^3 products, the eigh of the next sector
on a second thread), times every sector, and prints the ratio of their full-sector times, the
largest difference of the results, and the time of one eigh (one BLAS thread, so results are
bitwise the same whatever the thread settings), the part that no change of the feed removes.

The total for the target chain is then (full sectors) x (median full-sector time) + (the
measured bottom), printed beside the 10-minute target.  It also reports which sectors have a
dark subspace at all (only those keep population at t -> infinity).
Writes ``analysis/benchmarks/results/bench_steady_three.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import trajspin
from trajspin import Chain
from trajspin.exact.cascade import lowering_channels, stationary_blocks, to_eigenbasis
from trajspin.sectors import dark_exact_eigh

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = ((10**4, 100, 10), 600.0)        # sizes, seconds


def timed_cascade(sizes, blocks_of=stationary_blocks):
    """Seconds spent in each sector K (K0 .. 0) of the stationary cascade, and dark flags."""
    chain = Chain(list(sizes))
    basis, channels = chain.sectors, chain.channels()
    K0 = sizes[0]
    pos = basis.index_of([K0] + [0] * (len(sizes) - 1))[1]
    psi = np.zeros(basis.dim(K0))
    psi[pos] = 1.0
    seconds, dark, jz = {}, {}, -0.5 * np.asarray(sizes, dtype=float)
    last = time.perf_counter()
    for K, rho in blocks_of(basis, channels, 0, {K0: psi}):
        now = time.perf_counter()
        seconds[K], dark[K], last = now - last, rho is not None, now
        if rho is not None:
            jz += np.diag(rho) @ basis.number_diagonals(K)
    return seconds, dark, jz


def previous_stationary_blocks(basis, channels, piece, blocks):
    """The cascade as it was before the Dicke-basis feed (trajspin 0.1.0 up to 2026-12-02):
    eigen-basis feed B_k I B_k^T, B_k = V_K^T O_k V_{K+1} (six d^3 products per sector for
    two channels), eigh on the same thread.  Kept here as the baseline of the comparison."""
    rates = channels.rates[piece]
    low = lowering_channels(channels, piece)
    integral_up = V_up = None
    for K in range(max(blocks), -1, -1):
        lam, V = basis.channel_spectrum(K, channels, piece, cache=False)
        Z = to_eigenbasis(V, blocks[K]) if K in blocks else np.zeros((lam.size, lam.size))
        if integral_up is not None:
            for k in low:
                B = np.sqrt(rates[k]) * (V.T @ (basis.channel_matrix(channels, k, K + 1) @ V_up))
                Z += B @ integral_up @ B.T
        dark = lam == 0.0
        bright = ~dark
        integral_up = V_up = None
        if np.any(bright):
            rate = 0.5 * (lam[bright][:, None] + lam[bright][None, :])
            integral_up = Z[np.ix_(bright, bright)] / rate
            V_up = V[:, bright]
        if np.any(dark):
            Vd = V[:, dark]
            yield K, Vd @ Z[np.ix_(dark, dark)] @ Vd.T
        else:
            yield K, None


def eigh_seconds(sizes, K, repeats=3):
    """Best-of-``repeats`` seconds of one eigh of G_K (the part no feed change can remove)."""
    chain = Chain(list(sizes))
    G = chain.sectors.channel_generator(K, chain.channels(), chain.channels().rates[0])
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        dark_exact_eigh(G)
        best = min(best, time.perf_counter() - t0)
    return G.shape[0], best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a shorter run of full sectors")
    args = ap.parse_args(argv)
    (N1, N2, N3), target_s = TARGET
    bottom = N2 + N3                          # sectors below this are smaller than d
    K0_run = bottom + (10 if args.quick else 40)
    run_sizes = (K0_run, N2, N3)
    print(f"trajspin {trajspin.__version__}; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; load {os.getloadavg()[0]:.2f}")
    runs = {}
    for name, blocks_of in (("previous", previous_stationary_blocks), ("new", stationary_blocks)):
        t0 = time.perf_counter()
        seconds, dark, jz = timed_cascade(run_sizes, blocks_of)
        wall = time.perf_counter() - t0
        full = np.array([seconds[K] for K in range(bottom, K0_run + 1)])
        runs[name] = dict(seconds=wall, full_median=float(np.median(full)),
                          bottom=sum(seconds[K] for K in range(bottom)),
                          jz_over_n=(jz / np.asarray(run_sizes)).tolist(),
                          dark=sorted(K for K, v in dark.items() if v))
        print(f"{name:>8}: {run_sizes} in {wall:.1f} s; full sector (median) "
              f"{runs[name]['full_median']:.3f} s; D3 at t->inf {jz[-1] / N3:+.15f}")
    diff = float(np.max(np.abs(np.subtract(runs["new"]["jz_over_n"], runs["previous"]["jz_over_n"]))))
    d, t_eigh = eigh_seconds(run_sizes, bottom + 5)
    new = runs["new"]
    n_full_target = N1 - bottom + 1
    predicted = n_full_target * new["full_median"] + new["bottom"]
    est = trajspin.estimate(Chain([N1, N2, N3]), solver="steady")
    out = dict(run_sizes=list(run_sizes), runs=runs, max_abs_jz_over_n_difference=diff,
               full_dim=d, eigh_seconds=t_eigh, speedup=runs["previous"]["full_median"] /
               new["full_median"], target_sizes=[N1, N2, N3], target_seconds=target_s,
               predicted_seconds=predicted, estimate_seconds=float(est.seconds),
               load=os.getloadavg()[0])
    print(f"new / previous per full sector (d = {d}): {1 / out['speedup']:.2f}; one eigh "
          f"{t_eigh:.3f} s; |new - previous| <= {diff:.1e} in <J_i^z>/N_i")
    print(f"sectors with dark states: {len(new['dark'])} (K = {min(new['dark'])} .. "
          f"{max(new['dark'])}): only they keep population at t -> infinity")
    print(f"target {(N1, N2, N3)}: {n_full_target} full sectors + the bottom -> predicted "
          f"{predicted / 60:.1f} min (target {target_s / 60:.0f} min, ratio "
          f"{predicted / target_s:.1f}); trajspin.estimate says {est.seconds / 60:.1f} min")
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "bench_steady_three.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
