"""Large chains with the matrix-free (Lanczos) trajectory path: time, jumps and memory.

Issue 7 target: (200, 100, 50, 20) -- 2.2e7 coupled Dicke states, sectors of up to 1.08e5
states -- 100 trajectories in under 30 minutes on 2 MPI ranks of this 2-core machine, peak
memory under 4 GB per rank.

    # single process: a few trajectories, time per trajectory, jumps, products G x, peak RSS
    OPENBLAS_NUM_THREADS=1 python analysis/benchmarks/bench_large.py --ntraj 3
    # the real run: indices split statically by rank, sums reduced on rank 0
    OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python analysis/benchmarks/bench_large.py --ntraj 100

Grid: 200 log-spaced points 1e-4 .. 1e2 (units 1/gamma).  The kernel rebuilds each sector's
tables in place at every visit (counted in the trajectory time).  mpi4py is
imported only when more than one rank runs (or --mpi is given).  Results go to
``analysis/benchmarks/results/bench_large[_mpi].json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

import trajspin
from trajspin.resources import choose_method, krylov_memory_estimate
from trajspin.trajectories.lanczos import KrylovOptions, krylov_trajectory, run_chunk_krylov

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def single(chain, times, ntraj, seed, options):
    t0 = time.perf_counter()
    krylov_trajectory(chain, times[:2], seed, 10**9, options=options)   # JIT warm-up only
    warm = time.perf_counter() - t0
    rows = []
    for idx in range(ntraj):
        t0 = time.perf_counter()
        tr = krylov_trajectory(chain, times, seed, idx, options=options)
        wall = time.perf_counter() - t0
        rows.append(dict(index=idx, seconds=wall,
                         jumps=len(tr.jump_times), dark=tr.dark, left=tr.excitation_left,
                         matvecs=tr.matvecs, segments=tr.segments,
                         p_error_bound=tr.p_error_bound))
        print(f"  trajectory {idx}: {wall:6.2f} s, "
              f"{rows[-1]['jumps']} jumps, {tr.matvecs} products G x, {tr.segments} Krylov "
              f"spaces, {'dark' if tr.dark else 'ground'} with K = {tr.excitation_left}, "
              f"p error bound {tr.p_error_bound:.1e}", flush=True)
    later = [r["seconds"] for r in rows[1:]] or [rows[0]["seconds"]]
    return dict(warmup_seconds=warm, trajectories=rows, seconds_per_trajectory=float(np.mean(later)),
                jumps_per_trajectory=float(np.mean([r["jumps"] for r in rows])),
                first_trajectory_seconds=rows[0]["seconds"], peak_rss_bytes=peak_rss_bytes())


def mpi_run(chain, times, ntraj, seed, options):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    # static split: rank r takes indices [r n / P, (r + 1) n / P)
    start, stop = rank * ntraj // size, (rank + 1) * ntraj // size
    krylov_trajectory(chain, times[:2], seed, 10**9, options=options)   # JIT warm-up
    comm.Barrier()
    t0 = time.perf_counter()
    part = run_chunk_krylov(chain, times, seed, start, stop, options=options)
    busy = time.perf_counter() - t0
    comm.Barrier()
    wall = time.perf_counter() - t0
    sums = [comm.reduce(np.asarray(p), op=MPI.SUM, root=0) for p in part]
    info = comm.gather(dict(rank=rank, indices=[start, stop], busy_seconds=busy,
                            peak_rss_bytes=peak_rss_bytes()), root=0)
    if rank != 0:
        return None
    jz_sum, jz_sumsq, counts, ndark, njumps = sums
    mean = jz_sum / ntraj
    err = np.sqrt(np.maximum(jz_sumsq / ntraj - mean**2, 0.0) / max(ntraj - 1, 1))
    sizes = np.asarray(chain.sizes, float)
    return dict(ranks=size, ntraj=ntraj, wall_seconds=wall,
                seconds_per_trajectory_per_rank=wall * size / ntraj, per_rank=info,
                njumps_per_trajectory=int(njumps) / ntraj, ndark=int(ndark),
                final_excitation_counts={int(k): int(c) for k, c in enumerate(counts) if c},
                jz_over_n_final=(mean[-1] / sizes).tolist(),
                jz_over_n_err_final=(err[-1] / sizes).tolist())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 100, 50, 20])
    ap.add_argument("--ntraj", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--points", type=int, default=200)
    ap.add_argument("--tmin", type=float, default=1e-4)
    ap.add_argument("--tmax", type=float, default=1e2)
    ap.add_argument("--mpi", action="store_true", help="use mpi4py even on one rank")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    chain = trajspin.Chain(args.sizes)
    times = np.logspace(np.log10(args.tmin), np.log10(args.tmax), args.points)
    options = KrylovOptions()
    use_mpi = args.mpi or int(os.environ.get("PMI_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))) > 1
    dims = trajspin.sectors.sector_dims(chain.sizes)[: chain.sizes[0] + 1]
    head = dict(sizes=list(chain.sizes), hilbert_dim=chain.hilbert_dim, max_sector_dim=int(dims.max()),
                states_in_sectors_0_to_K0=int(dims.sum()), method=choose_method(chain),
                memory_estimate_bytes=krylov_memory_estimate(chain),
                memory_estimate_records_bytes=krylov_memory_estimate(chain, records=True),
                options=repr(options), points=args.points, tmin=args.tmin, tmax=args.tmax,
                seed=args.seed, versions=trajspin.results.versions(),
                load_average=os.getloadavg())
    if use_mpi:
        res = mpi_run(chain, times, args.ntraj, args.seed, options)
        if res is None:
            return
        res = {**head, **res}
        print(f"{chain!r}: {args.ntraj} trajectories on {res['ranks']} ranks in "
              f"{res['wall_seconds']:.1f} s ({res['seconds_per_trajectory_per_rank']:.2f} s per "
              f"trajectory per rank), {res['njumps_per_trajectory']:.1f} jumps per trajectory, "
              f"{res['ndark']} dark")
        for r in res["per_rank"]:
            print(f"  rank {r['rank']}: indices {r['indices']}, busy {r['busy_seconds']:.1f} s, "
                  f"peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB")
        print("  final <J_i^z>/N_i:", np.round(res["jz_over_n_final"], 4).tolist(), "+-",
              np.round(res["jz_over_n_err_final"], 4).tolist())
        out = args.out or RESULTS / "bench_large_mpi.json"
    else:
        print(f"{chain!r}: {chain.hilbert_dim:.3g} states, sectors up to {int(dims.max())}, "
              f"method {head['method']}, estimate {head['memory_estimate_bytes'] / 2**30:.2f} GiB")
        res = {**head, **single(chain, times, args.ntraj, args.seed, options)}
        s = res["seconds_per_trajectory"]
        print(f"  {s:.2f} s per trajectory (warm-up: JIT "
              f"{res['warmup_seconds']:.1f} s), {res['jumps_per_trajectory']:.1f} jumps "
              f"per trajectory; peak RSS {res['peak_rss_bytes'] / 2**30:.2f} GiB")
        res["extrapolated_100_on_2_ranks_seconds"] = 50 * s
        print(f"  extrapolated: 100 trajectories on 2 ranks ~ "
              f"{res['extrapolated_100_on_2_ranks_seconds'] / 60:.1f} min")
        out = args.out or RESULTS / "bench_large.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=float))
    print("  wrote", out)


if __name__ == "__main__":
    sys.exit(main())
