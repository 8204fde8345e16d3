"""The ``trajspin`` command line."""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import trajspin
import trajspin.demon as demon
from trajspin.errors import InputError, NumericalError
from trajspin.estimate import estimate
from trajspin.grids import time_grid
from trajspin.outputs import ReservedOutput
from trajspin.trajectories.feedback import Feedback

PHYSICS = """\
physics words:
  domain       an ensemble of N_i identical spin-1/2; only its collective spin matters
               (Dicke ladder j = N_i/2, states |j, m>, excitation n_i = j + m in 0..N_i).
  reservoir c  a bath shared by neighbouring domains c and c+1; it takes energy quanta
               through the collective jump operator L_c = J_c^- + J_{c+1}^- at rate
               gamma_c (n_c + 1) and, at finite temperature (--n-thermal or --temperature
               with --omega0), gives them back through L_c^dag at rate gamma_c n_c
               (times are in units of 1/gamma).  --kappa adds a bath of each domain's own
               (J_i^-); --switch-times/--factors switch reservoirs on and off in time.
  <J_i^z>/N_i  relative excitation of domain i: +1/2 all spins up, -1/2 all down.
  sector K     the states with K excitations in total; every quantum jump changes K by 1
               (down: emission into a reservoir, up: absorption from a warm one).
  dark state   a state no reservoir can de-excite further (L_c psi = 0 for all c): energy
               trapped there stays forever, which is how excitation "migrates" along the chain.
  initial      default: paper eq. (4), domain 1 fully excited, the others in the ground state;
               --initial takes one item per domain: n (Dicke state, n excitations), excited,
               ground, half, up:k (k of the N_i spins up), coherent:theta.
  trajectory   one run of the quantum-jump (Monte Carlo wavefunction) unravelling: the record
               of which reservoir took a quantum and when; averages over many reproduce the
               master equation.
  demon        an observer who reads that record (Minganti et al. 2021) knows the conditional
               state of the chain run by run; with feedback rules it closes or opens
               reservoirs on the record ("close R2 when D3 >= 0.3": after a jump that leaves
               domain 3 at <J_3^z>/N_3 >= 0.3).  Averages under feedback are not given by any
               master equation.
"""


def _common(p, grid=True):
    p.add_argument("--sizes", type=int, nargs="+", required=True, metavar="N",
                   help="spins per domain, N_1 .. N_M (M >= 2)")
    p.add_argument("--gamma", type=float, nargs="+", default=[1.0], metavar="G",
                   help="reservoir rates: one value, or M-1 values (default 1)")
    p.add_argument("--n-thermal", type=float, nargs="+", default=None, metavar="n",
                   help="thermal occupation of the shared reservoirs: one value or M-1 (default 0)")
    p.add_argument("--temperature", type=float, nargs="+", default=None, metavar="K",
                   help="reservoir temperature(s) in kelvin instead of --n-thermal (needs --omega0)")
    p.add_argument("--omega0", type=float, default=None, metavar="RAD_PER_S",
                   help="spin angular frequency in rad/s, e.g. 6.283e10 for 10 GHz")
    p.add_argument("--kappa", type=float, nargs="+", default=None, metavar="K",
                   help="rate of each domain's own reservoir: one value or M (default 0)")
    p.add_argument("--n-thermal-local", type=float, nargs="+", default=None, metavar="n",
                   help="thermal occupation of the local reservoirs: one value or M (default 0)")
    p.add_argument("--switch-times", type=float, nargs="+", default=None, metavar="T",
                   help="reservoir schedule: interval edges (units of 1/gamma), with --factors")
    p.add_argument("--factors", nargs="+", default=None, metavar="F1,F2,..",
                   help="reservoir schedule: per interval, the rate factor of each reservoir, "
                        "comma separated, e.g. --switch-times 2 --factors 1,0 0,1")
    p.add_argument("--initial", nargs="+", default=None, metavar="ITEM",
                   help="initial state of each domain: n (Dicke state with n excitations), excited, "
                        "ground, half, up:k (k of N spins up), coherent:theta "
                        "(default: excited ground .. ground)")
    p.add_argument("--initial-vector", default=None, metavar="PSI.npy",
                   help="initial state vector (coupled Dicke basis, numpy .npy) instead of --initial")
    p.add_argument("--observables", nargs="+", default=None, metavar="NAME",
                   help="also compute: jz2 jz_var n_dist coherence channel_rates reservoir_rates "
                        "(and log_negativity for master/steady)")
    if grid:
        p.add_argument("--tmax", type=float, default=1000.0, help="last time, units of 1/gamma (default 1000)")
        p.add_argument("--tmin", type=float, default=1e-4, help="first nonzero time (default 1e-4)")
        p.add_argument("--points", type=int, default=400, help="number of output times (default 400)")
        p.add_argument("--spacing", choices=["log", "linear"], default="log", help="time spacing (default log)")
    p.add_argument("--out", default=None, help="write the result to this .npz (atomically)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out file (never a directory, device or link)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, table only")
    p.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="refuse before any work if trajspin estimate predicts more than S seconds")


SWEEP_HELP = """\
a sweep config is an ensemble config ([chain], [times], [run]) plus a [sweep] table:
  [sweep]
  mode = "grid"          # every combination of the axes (or "list": their k-th values together)
  solver = "steady"      # steady, master, trajectories, mean_field (or a list: an axis)
  N1 = [4, 8, 16, 32]    # axes: sizes, N1..N9, gamma, n_thermal, temperature, kappa,
                         #       n_thermal_local, initial, seed, ntraj
read the result with trajspin.load(OUT): .values(domain), .to_table(), .plot(x=...)
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="trajspin", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Energy migration through a chain of spin domains coupled by shared reservoirs "
                    "(Dias et al. 2021): exact master equation and quantum trajectories.",
        epilog=PHYSICS)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("master", help="exact density-matrix evolution (sector blocks)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PHYSICS)
    _common(p)
    p = sub.add_parser("steady", help="exact t -> infinity state at zero temperature",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PHYSICS)
    _common(p, grid=False)
    p = sub.add_parser("trajectories", help="quantum-trajectory ensemble with error bars",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PHYSICS)
    _common(p)
    p.add_argument("--ntraj", type=int, default=1000, help="number of trajectories (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--target-err", type=float, default=None,
                   help="keep going until the largest standard error of <J_i^z>/N_i is below this")
    p.add_argument("--method", choices=["auto", "dense", "krylov"], default="auto",
                   help="sector propagation: dense spectral, matrix-free Lanczos for large sectors, "
                        "or auto (default)")
    p = sub.add_parser("demon", help="Maxwell's demon views: jump records, counting statistics, "
                                      "conditional states, feedback",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PHYSICS)
    _common(p, grid=False)
    p.add_argument("--ntraj", type=int, default=5000, help="number of trajectories (default 5000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--rule", action="append", default=[], metavar="TEXT",
                   help="feedback rule, repeatable: 'close R2 when D3 >= 0.3', "
                        "'close R1 after 6 quanta of R1', 'close R1 after 8 quanta', "
                        "'open R2 at t >= 5'; rules are checked right after each jump only")
    p.add_argument("--open", type=int, nargs="*", default=None, metavar="c",
                   help="reservoirs open at t = 0, counted from 1 (default: all)")
    p.add_argument("--show", type=int, default=4, help="trajectories in the raster view (default 4)")
    p.add_argument("--figures", default=".", help="folder for the PNGs (default: here)")
    p.add_argument("--prefix", default="demon_", help="file name prefix of the PNGs (default demon_)")
    p.add_argument("--tmax", type=float, default=1000.0, help="last time, units of 1/gamma (default 1000)")
    p.add_argument("--tmin", type=float, default=1e-3, help="first nonzero time (default 1e-3)")
    p.add_argument("--points", type=int, default=200, help="output times (default 200)")
    p = sub.add_parser("estimate", help="memory and time a run would need, before running it "
                                         "(exit code 2 if it does not fit)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PHYSICS)
    _common(p)
    p.add_argument("--solver", choices=["trajectories", "master", "steady"], default="trajectories",
                   help="which run to estimate (default trajectories)")
    p.add_argument("--ntraj", type=int, default=1000, help="number of trajectories (default 1000)")
    p.add_argument("--ranks", type=int, default=1, help="MPI ranks on this machine (default 1)")
    p = sub.add_parser("sweep", help="many points from a TOML config with a [sweep] table, "
                                      "in this process (mpi_scripts/run_sweep.py: on MPI ranks)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SWEEP_HELP)
    p.add_argument("config", help="TOML config with a [sweep] table "
                                  "(e.g. mpi_scripts/configs/sweep_eq5.toml)")
    p.add_argument("--out", required=True, help="result file (.npz), written atomically at the "
                                                "end; finished points wait in OUT.points/")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT.points/ (finished points are not redone)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out that another config wrote")
    p.add_argument("--quiet", action="store_true", help="no progress bar, summary only")
    return parser


def _estimate(args, chain):
    """Print the estimate; exit code 2 and a one-line message on stderr if it does not fit."""
    times = None
    if args.solver != "steady":
        times = time_grid(args.tmax, args.points, args.tmin, args.spacing, include_zero=True)
    est = estimate(chain, args.solver, ntraj=args.ntraj, times=times, initial=args.initial,
                   ranks=args.ranks)
    print(est)
    if not est.fits:
        print(f"error: {est.message()}", file=sys.stderr)
        return 2
    return 0


def _demon(args, chain):
    if not os.path.isdir(args.figures):
        raise InputError(f"--figures: folder {args.figures} does not exist")
    if args.ntraj < 2:
        raise InputError(f"--ntraj must be at least 2, got {args.ntraj}")
    try:                                   # the views are figures: fail before simulating
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("trajspin demon draws figures and needs matplotlib: "
                         "pip install 'trajspin[plot]'") from None
    fb = None
    if args.rule or args.open is not None:
        fb = Feedback(args.rule, None if args.open is None else [c - 1 for c in args.open])
    summary, ens = demon.make_views(chain, args.ntraj, args.seed, args.initial, fb, args.figures,
                                    args.prefix, args.show, args.tmax, args.tmin, args.points,
                                    progress=not args.quiet)
    print(ens)
    print(demon.counting_statistics(ens))
    print("conditional final <J_i^z>/N_i given n quanta (trajectories"
          + ("; exact steady-state block" if fb is None else "") + "):")
    exact = demon.exact_conditional_final_jz(chain, args.initial) if fb is None else {}
    for n, (count, mean, err) in demon.conditional_final_jz(ens).items():
        ex = exact.get(n)
        tail = "" if ex is None else "   exact " + " ".join(f"{v:+.5f}" for v in ex[1])
        print(f"  n = {n:3d} ({count:6d} runs): " + " ".join(f"{v:+.5f}" for v in mean) + tail)
    p, e = demon.probability_above(ens, -1, 0.25)
    print(f"P(<J_M^z>/N_M >= 0.25 at the end) = {p:.4f} ± {e:.4f}")
    print(f"energy balance: max |excitation left + quanta - initial| = "
          f"{summary['energy_balance_max_quanta_residual']}")
    if "photocurrent_max_z" in summary:
        print(f"photocurrent vs exact gamma_c <L_c^dag L_c>: max deviation "
              f"{summary['photocurrent_max_z']:.2f} standard errors")
    for name, path in summary["files"].items():
        print(f"wrote {path}")
    return ens


def _chain(args):
    """The Chain of the command-line flags (one-line InputError on bad values)."""
    schedule = None
    if (args.switch_times is None) != (args.factors is None):
        raise InputError("a schedule needs both --switch-times and --factors")
    if args.factors is not None:
        try:
            rows = [[float(x) for x in f.split(",")] for f in args.factors]
        except ValueError:
            raise InputError(f"--factors: each interval is comma-separated numbers, got {args.factors}") from None
        schedule = (args.switch_times, rows)
    return trajspin.Chain(args.sizes, gamma=args.gamma, n_thermal=args.n_thermal, kappa=args.kappa or 0.0,
                          n_thermal_local=args.n_thermal_local,
                          temperature=_scalar(args.temperature), omega0=args.omega0, schedule=schedule)


def _scalar(values):
    return values[0] if values is not None and len(values) == 1 else values


def _load_vector(path):
    try:
        return np.load(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"--initial-vector: cannot read {path}: {exc}") from None


def _initial_items(items):
    """Command-line initial items: integers stay integers, the rest are named requests."""
    if items is None:
        return None
    return [int(x) if x.lstrip("-").isdigit() else x for x in items]


def _sweep(args):
    """``trajspin sweep``: exit 0, or 1 when some points failed (the file marks them)."""
    result = trajspin.sweep(args.config, args.out, resume=args.resume, force=args.force,
                            progress=not args.quiet)
    print(result)
    print(f"result in {args.out}: {len(result.coords)} points")
    if result.failed.any():
        print(f"error: {int(result.failed.sum())} point(s) failed (see the warning above); "
              f"rerun with --resume to retry them", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    reserved = None
    try:
        if args.command == "sweep":                     # reserves its own output
            return _sweep(args)
        if getattr(args, "out", None) is not None:     # checked and created before any work
            reserved = ReservedOutput(args.out, "--out", overwrite=args.force)
        return _run(args, reserved)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NumericalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        kept = ("; finished points stay in the .points folder next to --out (rerun with "
                "--resume)") if args.command == "sweep" else ""
        print(f"interrupted; nothing was written{kept}", file=sys.stderr)
        return 130
    finally:
        if reserved is not None:
            reserved.discard()


def _run(args, reserved):
    """One command after its output is reserved; returns the exit code."""
    chain = _chain(args)
    args.initial = _initial_items(args.initial)
    if getattr(args, "initial_vector", None) is not None:
        if args.initial is not None:
            raise InputError("give --initial or --initial-vector, not both")
        args.initial = _load_vector(args.initial_vector)
    obs = {} if getattr(args, "observables", None) is None else {"observables": args.observables}
    if args.command == "estimate":
        return _estimate(args, chain)
    if args.command == "demon":
        result = _demon(args, chain)
        if reserved is not None:
            result.save(reserved)
            print(f"saved {args.out} (read it with trajspin.demon.load_records)")
        return 0
    budget = {"max_seconds": getattr(args, "max_seconds", None)}
    if args.command == "steady":
        result = trajspin.steady_state(chain, initial=args.initial, progress=not args.quiet,
                                       **budget, **obs)
    else:
        times = time_grid(args.tmax, args.points, args.tmin, args.spacing, include_zero=True)
        if args.command == "master":
            result = trajspin.solve_master(chain, times, initial=args.initial,
                                           progress=not args.quiet, **budget, **obs)
        else:
            result = trajspin.run_trajectories(chain, times, args.ntraj, seed=args.seed,
                                               initial=args.initial, progress=not args.quiet,
                                               target_err=args.target_err, method=args.method,
                                               **budget, **obs)
    print(result)
    if reserved is not None:
        try:
            result.save(reserved)
        except OSError as exc:
            print(f"error: could not write {args.out}: {exc}", file=sys.stderr)
            return 2
        print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
