"""The result of a sweep: one row of <J_i^z> per point, with the axes that label the points.

Points may differ in solver and even in the number of domains: arrays are padded to the
largest M (NaN values, size 0).  A point's *final* value is its t -> infinity state for the
steady solver and its value at the last output time otherwise.

``to_table()`` returns a NumPy structured array (one row per point, or per point and time):
numpy's own table type, no dependency, and ``pandas.DataFrame(result.to_table())`` turns it
into a data frame where pandas is installed.
"""
from __future__ import annotations

import html
import math

import numpy as np

from trajspin.errors import InputError
from trajspin.model import Chain
from trajspin.results.base import Result
from trajspin.results.plotting import (JZ_LABEL, axes_or_new, domain_colors, finish_jz_axes,
                                       plot_jz)

__all__ = ["SweepResult"]


class SweepResult(Result):
    """<J_i^z> of every point of a sweep, labelled by its axes.

    Returned by ``trajspin.sweep`` and by ``trajspin.load`` of a sweep's result file.  P is
    the number of points, T the number of output times, M the largest number of domains of
    any point (points with fewer domains are padded with NaN values and size 0).
    <J_i^z> is in units of hbar, times in units of 1/gamma.

    Parameters
    ----------
    times, jz, jz_err, jz_final, jz_final_err, sizes, ntraj, failed : ndarray
        The arrays below (use :meth:`from_points` or ``trajspin.load`` to build one).
    meta : dict
        With "mode", "axes", "shape", "dims" and "points" (per point its "coords" and
        "chain"), as the sweep runner writes it.

    Attributes
    ----------
    times : ndarray, shape (T,)
        Output times of the time solvers (T = 0 if none ran), units of 1/gamma.
    jz, jz_err : ndarray, shape (P, T, M)
        <J_i^z>(t) and its standard error (0 for the deterministic solvers; NaN where a
        point has no time series, fewer domains, or failed).
    jz_final, jz_final_err : ndarray, shape (P, M)
        Final <J_i^z> (steady: t -> infinity; others: at ``times[-1]``) and its standard
        error.
    sizes : ndarray of int, shape (P, M)
        N_i of each point (0 past its last domain).
    ntraj : ndarray of int, shape (P,)
        Trajectories of each point (0 for the other solvers).
    failed : ndarray of bool, shape (P,)
        Points whose solver raised (their messages in ``meta["failed"]``).
    mode : str
        "grid" (every combination of the axes, the last fastest) or "list".
    axes : dict
        Axis name -> list of values, in the config's order.
    shape, dims : tuple
        Grid: one length and one name per axis; list: (P,) and ("point",).
    coords : list of dict
        Per point: axis name -> value, and its "solver".
    solvers : list of str
        Per point: "steady", "master", "trajectories" or "mean_field".
    chain : Chain
        The chain of point 0 (:meth:`chain_of` for the others).
    meta : dict
        The config, the sweep's hash, per-point estimated and wall times and ranks, failures,
        versions.

    Examples
    --------
    After ``trajspin sweep mpi_scripts/configs/sweep_eq5.toml --out results/sweep_eq5.npz``
    (axes N1, 20 values, and initial, 2 values):

    >>> res = trajspin.load("results/sweep_eq5.npz")     # doctest: +SKIP
    >>> res.dims, res.values(-1).shape                   # doctest: +SKIP
    (('N1', 'initial'), (20, 2))
    >>> ax = res.plot(x="N1")       # one line per initial state    # doctest: +SKIP
    """

    kind = "sweep"
    _arrays = ("times", "jz", "jz_err", "jz_final", "jz_final_err", "sizes", "ntraj", "failed")

    def __init__(self, times, jz, jz_err, jz_final, jz_final_err, sizes, ntraj, failed, meta):
        meta = dict(meta)
        points = meta["points"]
        super().__init__(Chain.from_dict(points[0]["chain"]), meta)
        self.times = np.asarray(times, dtype=float)
        self.jz, self.jz_err = np.asarray(jz, dtype=float), np.asarray(jz_err, dtype=float)
        self.jz_final = np.asarray(jz_final, dtype=float)
        self.jz_final_err = np.asarray(jz_final_err, dtype=float)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.ntraj = np.asarray(ntraj, dtype=np.int64)
        self.failed = np.asarray(failed, dtype=bool)
        self.mode = meta["mode"]
        self.axes = dict(meta["axes"])
        self.shape = tuple(meta["shape"])
        self.dims = tuple(meta["dims"])
        self.coords = [dict(p["coords"]) for p in points]
        self.solvers = [p["coords"]["solver"] for p in points]

    # ---------------------------------------------------------------- building and reading
    @classmethod
    def from_points(cls, results, meta):
        """Assemble from the per-point results (None for a failed point).

        Parameters
        ----------
        results : list of P results or None
            SteadyStateResult, MasterResult, EnsembleResult or MeanFieldResult per point
            (time series on the same grid), None where the point failed.
        meta : dict
            With "mode", "axes", "shape", "dims" and "points" (per point a dict with
            "coords" and "chain"), plus anything to keep.

        Returns
        -------
        SweepResult
        """
        P = len(results)
        M = max(len(p["chain"]["sizes"]) for p in meta["points"])
        series = [r for r in results if r is not None and hasattr(r, "times")]
        times = series[0].times if series else np.zeros(0)
        T = times.size
        jz, jz_err = np.full((P, T, M), np.nan), np.full((P, T, M), np.nan)
        final, final_err = np.full((P, M), np.nan), np.full((P, M), np.nan)
        sizes = np.zeros((P, M), dtype=np.int64)
        ntraj = np.zeros(P, dtype=np.int64)
        for p, (res, info) in enumerate(zip(results, meta["points"])):
            m = len(info["chain"]["sizes"])
            sizes[p, :m] = info["chain"]["sizes"]
            if res is None:
                continue
            err = getattr(res, "jz_err", None)
            if hasattr(res, "times"):
                jz[p, :, :m] = res.jz
                jz_err[p, :, :m] = 0.0 if err is None else err
                final[p, :m], final_err[p, :m] = jz[p, -1, :m], jz_err[p, -1, :m]
            else:
                final[p, :m], final_err[p, :m] = res.jz, 0.0
            ntraj[p] = getattr(res, "ntraj", 0)
        failed = np.array([r is None for r in results], dtype=bool)
        return cls(times, jz, jz_err, final, final_err, sizes, ntraj, failed, meta)

    @classmethod
    def from_file_arrays(cls, arrays, meta):
        """Build from the arrays and meta of a result file (the ``trajspin.load`` hook).

        Parameters
        ----------
        arrays : mapping of str to ndarray
            The arrays named in the class attributes.
        meta : dict
            The file header's meta.

        Returns
        -------
        SweepResult
        """
        return cls(*(arrays[name] for name in cls._arrays), meta)

    def chain_of(self, p) -> Chain:
        """The chain of point ``p`` (0-based, in the order of :attr:`coords`)."""
        return Chain.from_dict(self.meta["points"][p]["chain"])

    def index(self, **coords) -> int:
        """The index of the one point with these coordinates.

        E.g. ``res.index(N1=20, solver="steady")``; an InputError unless exactly one point
        matches.
        """
        hits = [p for p, c in enumerate(self.coords)
                if all(k in c and _same(c[k], v) for k, v in coords.items())]
        if len(hits) != 1:
            raise InputError(f"{len(hits)} points have {coords}; axes: {list(self.axes)}")
        return hits[0]

    # ---------------------------------------------------------------- values
    @property
    def _norm(self):
        return np.where(self.sizes > 0, self.sizes, np.nan).astype(float)

    @property
    def jz_over_n(self):
        """<J_i^z>/N_i, shape (P, T, M), dimensionless (NaN past a point's last domain)."""
        return self.jz / self._norm[:, None, :]

    @property
    def jz_final_over_n(self):
        """Final <J_i^z>/N_i, shape (P, M), dimensionless (NaN past a point's last domain)."""
        return self.jz_final / self._norm

    @property
    def jz_final_over_n_err(self):
        """Standard error of :attr:`jz_final_over_n`, shape (P, M) (0 for exact solvers)."""
        return self.jz_final_err / self._norm

    def _domain_index(self, domain):
        """Per point, the column of ``domain`` (an index into each point's own domains,
        -1 its last)."""
        m = (self.sizes > 0).sum(axis=1)
        cols = np.where(np.asarray(domain) < 0, m + domain, domain)
        if np.any(cols < 0) or np.any(cols >= m):
            raise InputError(f"domain {domain} is outside some point's domains "
                             f"(from {int(m.min())} to {int(m.max())} domains)")
        return cols

    def values(self, domain=-1):
        """Final <J_d^z>/N_d of one domain at every point, arranged on the sweep's grid.

        Parameters
        ----------
        domain : int
            Index into each point's own domains (0 the first, -1 its last, the default).

        Returns
        -------
        ndarray, shape ``self.shape``
            Dimensionless, in [-1/2, 1/2]; steady points at t -> infinity, the others at
            ``times[-1]``; NaN for failed points.
        """
        cols = self._domain_index(domain)
        rows = np.arange(len(self.coords))
        return self.jz_final_over_n[rows, cols].reshape(self.shape)

    def errors(self, domain=-1):
        """Standard errors of :meth:`values` (0 for the deterministic solvers).

        Parameters
        ----------
        domain : int
            As for :meth:`values`.

        Returns
        -------
        ndarray, shape ``self.shape``
        """
        cols = self._domain_index(domain)
        rows = np.arange(len(self.coords))
        return self.jz_final_over_n_err[rows, cols].reshape(self.shape)

    # ---------------------------------------------------------------- tables
    def to_table(self, series=False):
        """One row per point (final values), or per point and output time (``series=True``).

        Columns: ``point``; every axis (numbers as numbers, lists and names as text such
        as ``"12,6,2"``); ``solver``; ``ntraj``; ``time`` (inf for the steady state); and per
        domain i = 1..M ``N<i>``, ``jz<i>`` (<J_i^z>/N_i) and ``err<i>`` (its standard error).

        Parameters
        ----------
        series : bool
            One row per point and output time (points without a time series keep one row,
            time inf) instead of one row per point.

        Returns
        -------
        numpy structured array, shape (rows,)
            ``pandas.DataFrame(table)`` makes a data frame of it.
        """
        P, M = self.sizes.shape
        keys = [k for k in self._coord_keys() if not _is_size_column(k, M)]
        if series:
            rows = [(p, k) for p in range(P) for k in
                    (range(self.times.size) if self._has_series(p) else [None])]
        else:
            rows = [(p, None) for p in range(P)]
        cols = {"point": np.array([p for p, _ in rows], dtype=np.int64)}
        for key in keys:
            cols[key] = _column([self.coords[p].get(key) for p, _ in rows])
        cols["ntraj"] = np.array([self.ntraj[p] for p, _ in rows], dtype=np.int64)
        cols["time"] = np.array([self._time(p, k) for p, k in rows], dtype=float)
        over_n, err = self.jz_over_n, self.jz_err / self._norm[:, None, :]
        for i in range(M):
            cols[f"N{i + 1}"] = np.array([self.sizes[p, i] for p, _ in rows], dtype=np.int64)
            cols[f"jz{i + 1}"] = np.array([self.jz_final_over_n[p, i] if k is None
                                           else over_n[p, k, i] for p, k in rows])
            cols[f"err{i + 1}"] = np.array([self.jz_final_over_n_err[p, i] if k is None
                                            else err[p, k, i] for p, k in rows])
        table = np.zeros(len(rows), dtype=[(name, c.dtype) for name, c in cols.items()])
        for name, c in cols.items():
            table[name] = c
        return table

    def _coord_keys(self):
        keys = []
        for c in self.coords:
            keys += [k for k in c if k not in keys]
        return keys

    def _has_series(self, p):
        return self.solvers[p] != "steady" and self.times.size > 0

    def _time(self, p, k):
        if not self._has_series(p):
            return math.inf
        return self.times[-1] if k is None else self.times[k]

    # ---------------------------------------------------------------- figures
    def plot(self, ax=None, x=None, domain=-1, **line_kw):
        """Final <J_d^z>/N_d of one domain against one axis; one line per value of the others.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Drawn into when given, else a new figure.
        x : str, optional
            The axis on the horizontal (default: the first axis with more than one value).
            Numbers are placed as numbers, anything else (sizes, initial states) in order.
        domain : int
            Index into each point's own domains (0 the first, -1 its last, the default).
        **line_kw
            Passed to ``ax.errorbar`` (``ls``, ``marker``, ...).

        Returns
        -------
        ax : matplotlib Axes
            With one line (± standard error) per combination of the other axes.
        """
        x = self._x_axis(x)
        values = self.values(domain).ravel()
        errs = self.errors(domain).ravel()
        ax = axes_or_new(ax)
        positions, ticks = _positions([c.get(x) for c in self.coords])
        groups = {}
        for p, c in enumerate(self.coords):
            rest = tuple((k, _text(v)) for k, v in c.items() if k != x and _varies(self, k))
            groups.setdefault(rest, []).append(p)
        colors = domain_colors(len(groups))
        for color, (rest, members) in zip(colors, groups.items()):
            members.sort(key=lambda p: positions[p])
            label = ", ".join(f"{k}={v}" for k, v in rest) or None
            kw = {"color": color, "marker": "o", "ms": 3, "lw": 1.2, "capsize": 2, **line_kw}
            ax.errorbar(positions[members], values[members], yerr=np.nan_to_num(errs[members]),
                        label=label, **kw)
        if ticks is not None:
            ax.set_xticks(np.arange(len(ticks)), ticks, rotation=30, fontsize=7)
        which = "last domain" if domain == -1 else f"domain index {domain}"
        ax.set_xlabel(x)
        ax.set_ylabel(JZ_LABEL + f", {which}, final")
        ax.grid(alpha=0.25, lw=0.3)
        if len(groups) > 1:
            ax.legend(fontsize=7)
        if not ax.get_title(loc="left"):
            ax.set_title(self.meta.get("description") or f"sweep over {', '.join(self.axes)}",
                         fontsize=9, loc="left")
        return ax

    def plot_times(self, ax=None, points=None, domain=-1, xscale="log", **line_kw):
        """<J_d^z>/N_d against gamma t for some points, one line per point with its
        standard-error band.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Drawn into when given, else a new figure.
        points : sequence of int, optional
            Point indices (default: every point with a time series, up to 12).
        domain : int
            Index into each point's own domains (0 the first, -1 its last, the default).
        xscale : {"log", "linear"}
            Scale of the time axis.
        **line_kw
            Passed to ``ax.plot``.

        Returns
        -------
        ax : matplotlib Axes
        """
        if points is None:
            points = [p for p in range(len(self.coords)) if self._has_series(p)][:12]
        points = [int(p) for p in points]
        bad = [p for p in points if not 0 <= p < len(self.coords) or not self._has_series(p)]
        if bad:
            raise InputError(f"points {bad} have no time series (steady solver, or outside "
                             f"0..{len(self.coords) - 1})")
        cols = self._domain_index(domain)
        ax = axes_or_new(ax)
        over_n, err = self.jz_over_n, self.jz_err / self._norm[:, None, :]
        for color, p in zip(domain_colors(len(points)), points):
            plot_jz(ax, self.times, over_n[p, :, cols[p]], err[p, :, cols[p]],
                    [_label(self.coords[p])], xscale=xscale, **{"color": color, **line_kw})
        return finish_jz_axes(ax, self.meta.get("description") or "sweep", legend=True)

    def _x_axis(self, x):
        if x is None:
            varying = [k for k, v in self.axes.items() if len(v) > 1] or list(self.axes)
            return varying[0]
        if x not in self.axes:
            raise InputError(f"x must be one of the sweep's axes {list(self.axes)}, got {x!r}")
        return x

    # ---------------------------------------------------------------- text
    def __str__(self):
        P = len(self.coords)
        grid = " x ".join(f"{d} ({n})" for d, n in zip(self.dims, self.shape))
        solvers = ", ".join(sorted(set(self.solvers)))
        lines = [f"SweepResult: {P} points, {self.mode} {grid}; solvers {solvers}"
                 + (f"; {int(self.failed.sum())} FAILED" if self.failed.any() else ""),
                 "final <J_i^z>/N_i (steady: t -> inf; else at the last time):"]
        rows = np.unique(np.linspace(0, P - 1, min(P, 12)).round().astype(int))
        for p in rows:
            m = int((self.sizes[p] > 0).sum())
            vals = "  ".join(f"{v:+.5f}" for v in self.jz_final_over_n[p, :m])
            lines.append(f"  {p:5d}  {_label(self.coords[p]):<48.48}  {vals}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        return f"<pre>{html.escape(str(self))}</pre>"


def _same(a, b):
    return a == b or (isinstance(b, tuple) and a == list(b))


def _is_size_column(key, M):
    return key.startswith("N") and key[1:].isdigit() and 1 <= int(key[1:]) <= M


def _text(value):
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _label(coords):
    return ", ".join(f"{k}={_text(v)}" for k, v in coords.items())


def _column(values):
    """A numeric column when every value is a number, else text."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=float)
    return np.array([_text(v) for v in values], dtype=str)


def _positions(values):
    """(x position per point, tick labels or None): numbers as they are, else their order."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=float), None
    ticks = []
    for v in values:
        if _text(v) not in ticks:
            ticks.append(_text(v))
    return np.array([ticks.index(_text(v)) for v in values], dtype=float), ticks


def _varies(result, key):
    return len(result.axes.get(key, ())) > 1
