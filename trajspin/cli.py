"""The ``trajspin`` command line."""
from __future__ import annotations

import argparse
import os
import sys

PHYSICS = """\
physics words:
  domain       an ensemble of N_i identical spin-1/2; only its collective spin matters
               (Dicke ladder j = N_i/2, states |j, m>, excitation n_i = j + m in 0..N_i).
  reservoir c  a zero-temperature bath shared by neighbouring domains c and c+1; it takes
               energy quanta through the collective jump operator L_c = J_c^- + J_{c+1}^-
               at rate gamma_c (times are in units of 1/gamma).
  <J_i^z>/N_i  relative excitation of domain i: +1/2 all spins up, -1/2 all down.
  sector K     the states with K excitations in total; every quantum jump lowers K by 1.
  dark state   a state no reservoir can de-excite further (L_c psi = 0 for all c): energy
               trapped there stays forever, which is how excitation "migrates" along the chain.
  initial      default: paper eq. (4), domain 1 fully excited, the others in the ground state;
               --initial n_1 .. n_M sets the excitation of each domain's Dicke state.
  trajectory   one run of the quantum-jump (Monte Carlo wavefunction) unravelling: the record
               of which reservoir took a quantum and when; averages over many reproduce the
               master equation.
"""


def _common(p, grid=True):
    p.add_argument("--sizes", type=int, nargs="+", required=True, metavar="N",
                   help="spins per domain, N_1 .. N_M (M >= 2)")
    p.add_argument("--gamma", type=float, nargs="+", default=[1.0], metavar="G",
                   help="reservoir rates: one value, or M-1 values (default 1)")
    p.add_argument("--initial", type=int, nargs="+", default=None, metavar="n",
                   help="initial excitation n_i of each domain (default: N_1 0 .. 0)")
    if grid:
        p.add_argument("--tmax", type=float, default=1000.0, help="last time, units of 1/gamma (default 1000)")
        p.add_argument("--tmin", type=float, default=1e-4, help="first nonzero time (default 1e-4)")
        p.add_argument("--points", type=int, default=400, help="number of output times (default 400)")
        p.add_argument("--spacing", choices=["log", "linear"], default="log", help="time spacing (default log)")
    p.add_argument("--out", default=None, help="write the result to this .npz (atomically)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, table only")


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
    return parser


def main(argv=None):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    import trajspin
    from trajspin.grids import time_grid
    from trajspin.model import InputError
    try:
        if args.out is not None and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
            raise InputError(f"--out: folder {os.path.dirname(os.path.abspath(args.out))} does not exist")
        chain = trajspin.Chain(args.sizes, gamma=args.gamma)
        if args.command == "steady":
            result = trajspin.steady_state(chain, initial=args.initial)
        else:
            times = time_grid(args.tmax, args.points, args.tmin, args.spacing, include_zero=True)
            if args.command == "master":
                result = trajspin.solve_master(chain, times, initial=args.initial,
                                               progress=not args.quiet)
            else:
                result = trajspin.run_trajectories(chain, times, args.ntraj, seed=args.seed,
                                                   initial=args.initial, progress=not args.quiet,
                                                   target_err=args.target_err)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result)
    if args.out:
        result.save(args.out)
        print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
