"""Regenerate the paper's Figs. 2(a)-(c), 3(a)-(b), 4(a)-(b) and S1(a)-(c).

    python analysis/make_figures.py              # full set, a few minutes on one core
    python analysis/make_figures.py --quick      # reduced set in seconds (used by the tests),
                                                 # written to analysis/figures/quick/
    python analysis/make_figures.py --out DIR --only fig2a fig3a

Each figure shows <J_i^z>/N_i against gamma*t on a log axis for the paper's chain:
exact master-equation curves (``trajspin.solve_master``) where the paper solved the
master equation, with quantum-trajectory means and +-2 standard-error bands
(``trajspin.trajectories.run_trajectories``) on top, and the mean field
(``trajspin.mean_field.solve_mean_field``) where the paper used the mean field.

Fig. S1 (T = 1.6 K, omega0/2pi = 10 GHz, n_th ~ 2.86): the exact finite-temperature
curves need ``Chain(sizes, n_thermal=...)`` (the physics-breadth work).  This script
tries it at run time; until it exists the figure shows the exact T = 0 curves and the
finite-T *mean field*, and says so on the plot.  ``figures/summary.json`` collects the
numbers quoted in analysis/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import trajspin as ts  # noqa: E402
from trajspin.mean_field import solve_mean_field  # noqa: E402
from trajspin.trajectories.ensemble import run_trajectories  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# the paper's colours and line styles per domain
COLORS = ["#c2187f", "#1f5fbf", "#d4a017", "#2fbf8f"]
STYLES = ["-", "--", ":", "-."]
NAMES = ["magenta", "blue", "gold", "mint"]

HBAR = 1.054571817e-34
KB = 1.380649e-23


def thermal_occupation(temperature, omega0):
    """Bose occupation n = 1/(exp(hbar omega0 / k_B T) - 1); T in K, omega0 in rad/s."""
    return 1.0 / np.expm1(HBAR * omega0 / (KB * temperature))


N_TH_S1 = float(thermal_occupation(1.6, 2 * np.pi * 10e9))


# ------------------------------------------------------------------------------------
# drawing helpers
# ------------------------------------------------------------------------------------

def _axes(title, chain_text):
    fig, ax = plt.subplots(figsize=(7.8, 4.2), constrained_layout=True)
    ax.set_xscale("log")
    ax.set_xlabel(r"$\gamma t$")
    ax.set_ylabel(r"$\langle J_i^z\rangle / N_i$")
    ax.set_ylim(-0.53, 0.53)
    ax.axhline(0.5, color="0.85", lw=0.8, zorder=0)
    ax.axhline(-0.5, color="0.85", lw=0.8, zorder=0)
    ax.axhline(0.0, color="0.92", lw=0.8, zorder=0)
    ax.set_title(f"{title}   {chain_text}", fontsize=10)
    return fig, ax


def _domain_lines(ax, t, y, sizes, lw=2.0, alpha=1.0, label=True, style=None):
    for i, N in enumerate(sizes):
        ax.plot(t, y[:, i], color=COLORS[i % 4], ls=style or STYLES[i % 4], lw=lw, alpha=alpha,
                label=(f"$D_{i + 1}$, $N_{i + 1}$ = {_fmt_n(N)}" if label else None))


def _traj_overlay(ax, ens, sizes, nmarks=22):
    t = ens.times
    y, e = ens.jz_over_n, ens.jz_over_n_err
    marks = np.unique(np.linspace(0, t.size - 1, nmarks).round().astype(int))
    for i in range(len(sizes)):
        ax.fill_between(t, y[:, i] - 2 * e[:, i], y[:, i] + 2 * e[:, i], color=COLORS[i % 4],
                        alpha=0.25, lw=0)
        ax.plot(t[marks], y[marks, i], "o", ms=3.5, mfc="white", mec=COLORS[i % 4], mew=1.0)


def _fmt_n(N):
    if N >= 1000 and np.log10(N).is_integer():
        return rf"$10^{{{int(np.log10(N))}}}$"
    return str(N)


def _chain_text(sizes):
    return "$(N_i)$ = (" + ", ".join(_fmt_n(n) for n in sizes) + ")"


def _legend(ax, entries, notes=()):
    """One legend outside the axes: the domains, then how each curve was made, then notes."""
    from matplotlib.lines import Line2D
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], ls="none", label=" "))
    for kind, text in entries:
        if kind == "line":
            handles.append(Line2D([], [], color="0.3", lw=2, label=text))
        elif kind == "thin":
            handles.append(Line2D([], [], color="0.3", lw=1.0, ls=(0, (1, 1)), label=text))
        elif kind == "dashed":
            handles.append(Line2D([], [], color="0.3", lw=1.6, ls=(0, (4, 2)), label=text))
        elif kind == "marker":
            handles.append(Line2D([], [], color="0.3", marker="o", mfc="white", ls="none", label=text))
    for text in notes:
        handles.append(Line2D([], [], ls="none", label=text))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False, handlelength=2.6)


def _check_exact(res):
    """Refuse to plot an exact run whose trace drifted (guards against solver trouble)."""
    err = float(np.max(np.abs(res.trace - 1)))
    if not err < 1e-8:
        raise RuntimeError(f"exact solver lost the trace ({err:.1e}) for {res.chain!r}")


def _save(fig, outdir, name):
    path = os.path.join(outdir, f"{name}.png")
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------

def exact_with_trajectories(name, title, sizes, tmin, tmax, cfg, initial=None):
    """Paper Figs. 2 and 4(a): exact master equation + trajectory means."""
    chain = ts.Chain(sizes)
    t = np.logspace(np.log10(tmin), np.log10(tmax), cfg["points"])
    ex = ts.solve_master(chain, t, initial=initial)
    ens = run_trajectories(chain, t, cfg["ntraj"], seed=cfg["seed"], initial=initial, progress=False)
    ss = ts.steady_state(chain, initial=initial)
    fig, ax = _axes(title, _chain_text(sizes))
    _domain_lines(ax, t, ex.jz_over_n, sizes)
    _traj_overlay(ax, ens, sizes)
    ax.set_xlim(tmin, tmax)
    _legend(ax, [("line", "exact master equation"),
                 ("marker", f"{ens.ntraj} trajectories,\nmean ± 2 s.e. (band)")])
    path = _save(fig, cfg["out"], name)
    _check_exact(ex)
    z_final = (ens.jz_over_n[-1] - ex.jz_over_n[-1]) / np.maximum(ens.jz_over_n_err[-1], 1e-300)
    return {"png": path, "sizes": list(sizes), "initial": ex.meta["initial"],
            "steady_state": ss.jz_over_n.tolist(), "final_exact": ex.jz_over_n[-1].tolist(),
            "max_exact": ex.jz_over_n.max(axis=0).tolist(), "ntraj": ens.ntraj,
            "traj_max_abs_dev": float(np.max(np.abs(ens.jz_over_n - ex.jz_over_n))),
            "traj_z_final": z_final.tolist()}


def mean_field_figure(name, title, sizes, tmin, tmax, cfg, initial=None):
    """Paper Figs. 3 and 4(b): mean field for 10^6 - 10^8 spins."""
    chain = ts.Chain(sizes)
    t = np.logspace(np.log10(tmin), np.log10(tmax), cfg["points_mf"])
    mf = solve_mean_field(chain, t, initial=initial, rtol=cfg["mf_rtol"])
    fig, ax = _axes(title, _chain_text(sizes))
    _domain_lines(ax, t, mf.jz_over_n, sizes)
    ax.set_xlim(tmin, tmax)
    _legend(ax, [("line", f"mean field\n({mf.meta['closure']} closure,\n{mf.meta['n_moments']} moments)")])
    y = mf.jz_over_n
    out = {"png": _save(fig, cfg["out"], name), "sizes": list(sizes), "initial": mf.meta["initial"],
           "closure": mf.meta["closure"], "max": np.nanmax(y, axis=0).tolist(),
           "final": y[-1].tolist(), "breakdown_time": mf.breakdown_time}
    # plateau of each domain: its value where it is most excited, and when
    k = np.nanargmax(y, axis=0)
    out["t_of_max"] = t[k].tolist()
    # migration times: first time each later domain crosses 0 (half excited)
    out["t_cross_zero"] = [float(t[np.argmax(y[:, i] > 0)]) if np.any(y[:, i] > 0) else None
                           for i in range(chain.M)]
    return out


def finite_temperature_figure(name, title, sizes, tmin, tmax, cfg):
    """Paper Fig. S1: T = 0 (solid) against T = 1.6 K (dashed)."""
    chain = ts.Chain(sizes)
    t = np.logspace(np.log10(tmin), np.log10(tmax), cfg["points"])
    ex0 = ts.solve_master(chain, t)
    _check_exact(ex0)
    ens0 = run_trajectories(chain, t, cfg["ntraj"], seed=cfg["seed"], progress=False)
    hot, why = exact_finite_temperature(sizes, t, cfg)
    fig, ax = _axes(title, _chain_text(sizes))
    _domain_lines(ax, t, ex0.jz_over_n, sizes, style="-")     # paper S1: solid T = 0, dashed T > 0
    _traj_overlay(ax, ens0, sizes)
    out = {"sizes": list(sizes), "n_thermal": N_TH_S1, "steady_T0": ex0.jz_over_n[-1].tolist()}
    if hot is not None:
        ex_hot, ens_hot = hot
        _domain_lines(ax, t, ex_hot.jz_over_n, sizes, lw=1.6, label=False, style=(0, (4, 2)))
        if ens_hot is not None:
            _traj_overlay(ax, ens_hot, sizes)
        legend = [("line", "T = 0, exact"), ("dashed", "T = 1.6 K, exact"),
                  ("marker", f"trajectories ({cfg['ntraj']}),\nmean ± 2 s.e.")]
        notes = ()
        out.update(finite_T="exact", final_hot=ex_hot.jz_over_n[-1].tolist())
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mf_hot = solve_mean_field(chain, t, n_thermal=N_TH_S1, rtol=cfg["mf_rtol"])
            mf_cold = solve_mean_field(chain, t, rtol=cfg["mf_rtol"])
        _domain_lines(ax, t, mf_hot.jz_over_n, sizes, lw=1.6, label=False, style=(0, (4, 2)))
        _domain_lines(ax, t, mf_cold.jz_over_n, sizes, lw=1.0, label=False, style=(0, (1, 1)))
        legend = [("line", "T = 0, exact"),
                  ("marker", f"T = 0, {cfg['ntraj']} trajectories,\nmean ± 2 s.e."),
                  ("thin", "T = 0, mean field"), ("dashed", "T = 1.6 K, mean field")]
        notes = ("exact finite T needs", "Chain(n_thermal=...)", why)
        out.update(finite_T="mean field", reason=why, final_hot_mf=mf_hot.jz_over_n[-1].tolist(),
                   final_cold_mf=mf_cold.jz_over_n[-1].tolist())
    ax.set_xlim(tmin, tmax)
    _legend(ax, legend, (r"$\omega_0/2\pi$ = 10 GHz, 1.6 K:", rf"$n_{{th}}$ = {N_TH_S1:.2f}") + notes)
    out["png"] = _save(fig, cfg["out"], name)
    return out


def exact_finite_temperature(sizes, t, cfg):
    """((master, ensemble or None), "") with the exact finite-T solver, or (None, reason)."""
    try:
        chain = ts.Chain(sizes, n_thermal=N_TH_S1)
    except TypeError:
        return None, "(not available in this trajspin)"
    except ts.InputError as exc:
        return None, f"({exc})"
    try:
        ex = ts.solve_master(chain, t)
    except (TypeError, NotImplementedError, ts.InputError) as exc:
        return None, f"(solve_master: {exc})"
    try:
        ens = run_trajectories(chain, t, cfg["ntraj"], seed=cfg["seed"], progress=False)
    except (TypeError, NotImplementedError, ts.InputError):
        ens = None
    return (ex, ens), ""


FIGURES = {
    "fig2a": (exact_with_trajectories, "Fig. 2(a)", (40, 2), 1e-3, 1e1, {}),
    "fig2b": (exact_with_trajectories, "Fig. 2(b)", (12, 6, 2), 1e-3, 1e2, {}),
    "fig2c": (exact_with_trajectories, "Fig. 2(c)", (8, 6, 5, 1), 1e-3, 1e2, {}),
    "fig3a": (mean_field_figure, "Fig. 3(a)", (10**6, 10**4, 10**2), 1e-8, 1e1, {}),
    "fig3b": (mean_field_figure, "Fig. 3(b)", (10**8, 10**5, 10**2), 1e-10, 1e1, {}),
    "fig4a": (exact_with_trajectories, "Fig. 4(a)", (12, 6, 2), 1e-3, 1e2, {"initial": (6, 0, 0)}),
    "fig4b": (mean_field_figure, "Fig. 4(b)", (10**6, 10**4, 10**2), 1e-8, 1e1,
              {"initial": (5 * 10**5, 0, 0)}),
    "figS1a": (finite_temperature_figure, "Fig. S1(a)", (20, 2), 1e-3, 1e1, {}),
    "figS1b": (finite_temperature_figure, "Fig. S1(b)", (12, 6, 2), 1e-3, 1e2, {}),
    "figS1c": (finite_temperature_figure, "Fig. S1(c)", (4, 3, 3, 2), 1e-3, 1e2, {}),
}

QUICK = ["fig2a", "fig3a", "fig4a", "figS1a"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="reduced set, few trajectories (seconds)")
    ap.add_argument("--out", default=None,
                    help="output folder (default analysis/figures, or analysis/figures/quick with --quick)")
    ap.add_argument("--only", nargs="*", choices=sorted(FIGURES), help="figures to make")
    ap.add_argument("--ntraj", type=int, default=None, help="trajectories per curve (default 4000)")
    ap.add_argument("--seed", type=int, default=2021)
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = os.path.join(HERE, "figures", "quick" if args.quick else "")
    os.makedirs(args.out, exist_ok=True)
    cfg = {"out": args.out, "seed": args.seed,
           "ntraj": args.ntraj or (100 if args.quick else 4000),
           "points": 60 if args.quick else 240, "points_mf": 120 if args.quick else 400,
           "mf_rtol": 1e-7 if args.quick else 1e-10}
    names = args.only or (QUICK if args.quick else list(FIGURES))
    path = os.path.join(args.out, "summary.json" if not args.quick else "summary_quick.json")
    summary = {}
    if args.only and os.path.exists(path):
        # --only remakes some figures: the others keep their entries (and their settings)
        with open(path) as fh:
            summary = json.load(fh)
        if any(summary.get(k) != v for k, v in (("ntraj", cfg["ntraj"]), ("seed", args.seed))):
            print(f"note: {path} was made with ntraj={summary.get('ntraj')}, "
                  f"seed={summary.get('seed')}; the figures remade now use "
                  f"ntraj={cfg['ntraj']}, seed={args.seed} (kept per figure)", flush=True)
    summary.update({"n_thermal_S1": N_TH_S1, "ntraj": cfg["ntraj"], "seed": args.seed,
                    "trajspin": ts.__version__})
    for name in names:
        fn, title, sizes, tmin, tmax, kw = FIGURES[name]
        start = time.perf_counter()
        summary[name] = fn(name, title, sizes, tmin, tmax, cfg, **kw)
        summary[name]["seconds"] = round(time.perf_counter() - start, 2)
        summary[name].update(ntraj=cfg["ntraj"], seed=args.seed)
        print(f"{name}: {summary[name]['png']}  ({summary[name]['seconds']} s)", flush=True)
    with open(path, "w") as fh:
        json.dump(summary, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
