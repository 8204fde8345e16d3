"""Results that draw themselves: the matplotlib helpers behind every ``plot`` method.

matplotlib stays optional (``pip install 'trajspin[plot]'``): it is imported inside
:func:`need_pyplot` only, so nothing here costs anything until a figure is asked for.  Every
result's ``plot`` method, ``plot_trajectory`` and the demon views (``trajspin.demon.views``)
are built on this small public API; a new result type draws itself the same way:

need_pyplot()
    ``matplotlib.pyplot``, or an :class:`~trajspin.errors.InputError` in one line naming the
    extra to install.
axes_or_new(ax=None, **subplots_kw)
    ``ax`` itself, or the single Axes of a new figure (``plt.subplots(**subplots_kw)``).
domain_colors(n)
    The colours of domains 1..n, the same in every view.
jz_labels(sizes, prefix=None)
    Legend labels ``"D1 (N=12)"``, ... (``"exact D1 (N=12)"`` with ``prefix="exact"``).
plot_jz(ax, times, values, errors=None, labels=None, band=1.0, xscale="linear", **line_kw)
    One line per domain (column of ``values``, shape (T, M)) in the domain colours and, with
    ``errors`` (T, M), a band ``values ± band * errors`` per line (``fill_between``).
finish_jz_axes(ax, title=None, legend=True)
    Axis labels (gamma t; <J_i^z>/N_i), the legend, and ``title`` if the axes have none yet.
plot_series(result, ax=None, errors=None, band=1.0, xscale="linear", label=None, title=None)
    All of the above for a result with ``times``, ``jz_over_n`` and ``chain``.
save_figure(fig, path=None, dpi=130)
    Save to ``path`` when given and release the figure from pyplot; returns ``fig``.

Examples
--------
>>> ax = trajspin.solve_master(chain, times).plot(label="exact")             # doctest: +SKIP
>>> trajspin.run_trajectories(chain, times, 500).plot(ax=ax, ls="--", label="500 traj.")
>>> ax.figure.savefig("compare.png")                       # saving is the caller's choice
"""
from __future__ import annotations

import numpy as np

from trajspin.errors import InputError

__all__ = ["need_pyplot", "axes_or_new", "domain_colors", "jz_labels", "plot_jz",
           "finish_jz_axes", "plot_series", "plot_steady", "plot_trajectory", "save_figure",
           "COLORS", "JZ_LABEL"]

COLORS = ["#c2185b", "#1f5fbf", "#d4a017", "#2e9e7f", "#6a3d9a", "#444444"]
JZ_LABEL = r"$\langle J_i^z\rangle/N_i$"
CLOSED_COLOR = "#d62728"


def need_pyplot():
    """``matplotlib.pyplot``; without matplotlib a one-line InputError naming the extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'trajspin[plot]'") from None
    return plt


def axes_or_new(ax=None, **subplots_kw):
    """``ax`` when given, else the Axes of a new single-panel figure."""
    if ax is not None:
        return ax
    _, ax = need_pyplot().subplots(**{"constrained_layout": True, **subplots_kw})
    return ax


def domain_colors(n):
    """Colours of domains 1..n (cycling through ``COLORS``), list of length n."""
    return [COLORS[i % len(COLORS)] for i in range(n)]


def jz_labels(sizes, prefix=None):
    """Legend labels of the domains, ``"D1 (N=12)"`` (``prefix`` in front when given)."""
    head = f"{prefix} " if prefix else ""
    return [f"{head}D{i + 1} (N={n})" for i, n in enumerate(sizes)]


def plot_jz(ax, times, values, errors=None, labels=None, band=1.0, xscale="linear", **line_kw):
    """One line per domain, with a ± ``band`` * ``errors`` band when errors are given.

    Parameters
    ----------
    ax : matplotlib Axes
    times : array, shape (T,)
    values, errors : array, shape (T, M)
        Errors that are not all finite (fewer than two trajectories) draw no band.
    labels : list of M str, optional
    band : float
        Half-width of the band in units of ``errors`` (0: no band).
    xscale : {"linear", "log"}
        With "log", times <= 0 are left out.
    **line_kw
        Passed to ``ax.plot`` (``ls``, ``lw``, ``color``, ...).

    Returns
    -------
    ax : the same Axes, with M new lines (``ax.lines``) and up to M bands (``ax.collections``).
    """
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float).reshape(times.size, -1)
    keep = times > 0 if xscale == "log" else np.ones(times.size, dtype=bool)
    t = times[keep]
    colors = domain_colors(values.shape[1])
    for i in range(values.shape[1]):
        kw = {"color": colors[i], "lw": 1.5, **line_kw}
        (line,) = ax.plot(t, values[keep, i], label=labels[i] if labels else None, **kw)
        if errors is None or band <= 0:
            continue
        half = band * np.asarray(errors, dtype=float).reshape(values.shape)[keep, i]
        if np.all(np.isfinite(half)):
            ax.fill_between(t, values[keep, i] - half, values[keep, i] + half,
                            color=line.get_color(), alpha=0.25, lw=0)
    ax.set_xscale(xscale)
    return ax


def finish_jz_axes(ax, title=None, legend=True):
    """Label the axes (gamma t; <J_i^z>/N_i), draw the legend, set ``title`` if none yet."""
    ax.set_xlabel(r"$\gamma t$")
    ax.set_ylabel(JZ_LABEL)
    ax.grid(alpha=0.25, lw=0.3)
    if legend:
        ax.legend(fontsize=7)
    if title and not ax.get_title(loc="left"):
        ax.set_title(title, fontsize=9, loc="left")
    return ax


def plot_series(result, ax=None, errors=None, band=1.0, xscale="linear", label=None,
                title=None, **line_kw):
    """<J_i^z>/N_i of ``result`` (``times``, ``jz_over_n``, ``chain``) against gamma t.

    Returns
    -------
    ax : matplotlib Axes (new unless ``ax`` is given)
    """
    ax = axes_or_new(ax)
    plot_jz(ax, result.times, result.jz_over_n, errors, jz_labels(result.chain.sizes, label),
            band, xscale, **line_kw)
    return finish_jz_axes(ax, title or f"{result.chain!r}")


def plot_steady(result, ax=None, lines=False, label=None, title=None, **kw):
    """<J_i^z>/N_i at t -> infinity: a bar per domain, or (``lines=True``) a dotted
    horizontal line per domain to lay over a plot against time.

    Returns
    -------
    ax : matplotlib Axes, with M bars (``ax.patches``) or M lines (``ax.lines``)
    """
    ax = axes_or_new(ax)
    values = result.jz_over_n
    colors = domain_colors(values.size)
    labels = jz_labels(result.chain.sizes, label or ("t→∞" if lines else None))
    if lines:
        for v, c, lab in zip(values, colors, labels):
            ax.axhline(v, **{"color": c, "ls": ":", "lw": 1.2, "label": lab, **kw})
        return finish_jz_axes(ax, title or f"{result.chain!r}")
    ax.bar(np.arange(1, values.size + 1), values, color=colors, **kw)
    ax.set_xticks(np.arange(1, values.size + 1), labels)
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_ylim(-0.52, 0.52)
    ax.set_ylabel(JZ_LABEL + r" at $t\to\infty$")
    if not ax.get_title(loc="left"):
        ax.set_title(title or f"{result.chain!r}: steady state", fontsize=9, loc="left")
    return ax


def plot_trajectory(trajectory, ax=None, raster=True, xscale="linear", label=None, title=None,
                    legend=True, **line_kw):
    """One trajectory: conditional <J_i^z>/N_i against gamma t, with its jump raster.

    Parameters
    ----------
    trajectory : Trajectory or KrylovTrajectory (duck-typed)
        Uses ``chain``, ``times``, ``jz_over_n``, ``jump_times``, ``jump_reservoirs`` (else
        ``jump_channels``), optionally ``jump_directions``, ``reservoirs_open``, ``index``,
        ``quanta``, ``final_jz``.
    raster : bool
        Above the traces, one row of ticks per reservoir at the times it took a quantum
        (``ax.collections``, one per reservoir; absorbed quanta in a second colour), and a
        red bar from the jump after which a feedback rule closed the reservoir.

    Returns
    -------
    ax : matplotlib Axes
    """
    tr, chain = trajectory, trajectory.chain
    ax = axes_or_new(ax)
    plot_jz(ax, tr.times, tr.jz_over_n, labels=jz_labels(chain.sizes, label), xscale=xscale,
            **line_kw)
    if raster:
        _draw_raster(ax, tr, xscale)
    if title is None:
        names = chain.channels().reservoir_names()
        quanta = ", ".join(f"{n}: {int(q)}" for n, q in zip(names, tr.quanta))
        title = (f"trajectory {tr.index}: {np.size(tr.jump_times)} jumps ({quanta}); "
                 f"D{chain.M} ends at {tr.final_jz[-1] / chain.sizes[-1]:+.3f}")
    return finish_jz_axes(ax, title, legend)


def _draw_raster(ax, tr, xscale):
    names = tr.chain.channels().reservoir_names()
    jt = np.asarray(tr.jump_times, dtype=float)
    res = np.asarray(getattr(tr, "jump_reservoirs", tr.jump_channels))
    absorbed = np.asarray(getattr(tr, "jump_directions", np.full(jt.size, -1))) > 0
    opened = getattr(tr, "reservoirs_open", None)
    t = np.asarray(tr.times, dtype=float)
    t_end = t[-1]
    closed_label = "reservoir closed"
    for r, name in enumerate(names):
        base = 0.58 + 0.09 * r
        for mask, color in ((~absorbed, "k" if r == 0 else "#777777"), (absorbed, "#1f77b4")):
            sel = (res == r) & mask
            if sel.any():
                ax.vlines(jt[sel], base, base + 0.07, color=color, lw=1.2)
        ax.text(1.005, base + 0.035, name, transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontsize=7)
        if opened is not None and np.size(opened) and r < tr.chain.M - 1:
            closed = np.nonzero(((np.asarray(opened) >> r) & 1) == 0)[0]
            if closed.size:
                ax.plot([jt[closed[0]], t_end], [base + 0.035] * 2, color=CLOSED_COLOR, lw=2.5,
                        alpha=0.5, solid_capstyle="butt", label=closed_label)
                closed_label = None
    ax.set_ylim(-0.55, 0.6 + 0.09 * len(names))
    ax.set_yticks([-0.5, 0, 0.5])


def save_figure(fig, path=None, dpi=130):
    """Save ``fig`` to ``path`` when given, then release it from pyplot; returns ``fig``."""
    if path is not None:
        fig.savefig(path, dpi=dpi)
        need_pyplot().close(fig)
    return fig
