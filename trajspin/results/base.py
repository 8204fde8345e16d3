"""Result objects of the exact solvers, and what every result shares.

Every result carries the chain and the inputs that made it, prints a compact table of
<J_i^z>/N_i (``str``; an HTML table in notebooks, ``_repr_html_``), draws itself
(``plot``, matplotlib optional: ``trajspin.results.plotting``), and round-trips through
``save`` / ``trajspin.load`` (a NumPy ``.npz`` written under a temporary name, then renamed).
"""
from __future__ import annotations

import html
import json
import platform

import numba
import numpy as np
import scipy

from trajspin.outputs import atomic_savez
from trajspin.results.plotting import plot_series, plot_steady
from trajspin.version import __version__

__all__ = ["Result", "MasterResult", "SteadyStateResult", "versions", "format_table",
           "html_table", "EXTRA_OBSERVABLES"]


def versions() -> dict:
    """Versions of the packages that shaped a result."""
    return {"trajspin": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__, "python": platform.python_version()}


def _table_rows(n, max_rows):
    """Up to max_rows indices spread evenly over 0..n-1, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(max_rows, n)).round().astype(int))


def format_table(times, values, errors=None, sizes=None, max_rows=12):
    """A fixed-width table of values[t, i] (optionally ± errors) at up to max_rows times."""
    times = np.asarray(times)
    idx = _table_rows(len(times), max_rows)
    M = values.shape[1]
    head = "   gamma*t  " + "".join(f"{'D%d' % (i + 1) + (' (N=%d)' % sizes[i] if sizes else ''):>22}"
                                  for i in range(M))
    lines = [head]
    for k in idx:
        cells = []
        for i in range(M):
            if errors is None:
                cells.append(f"{values[k, i]:>22.8f}")
            else:
                cells.append(f"{values[k, i]:>12.5f} ± {errors[k, i]:<7.5f}")
        lines.append(f"{times[k]:>10.4g}  " + "".join(cells))
    return "\n".join(lines)


def html_table(times, values, errors=None, sizes=None, max_rows=8):
    """An HTML table of values[t, i] (± errors) at up to max_rows times.

    ``times`` may hold numbers (gamma t) or strings (row labels); values, errors (T, M).
    """
    M = values.shape[1]
    head = "".join(f"<th>D{i + 1}" + (f" (N={sizes[i]})" if sizes else "") + "</th>"
                   for i in range(M))
    rows = [f"<tr><th>&gamma;t</th>{head}</tr>"]
    for k in _table_rows(len(times), max_rows):
        t = times[k] if isinstance(times[k], str) else f"{times[k]:.4g}"
        cells = "".join(f"<td>{values[k, i]:+.6f}</td>" if errors is None else
                        f"<td>{values[k, i]:+.5f} &plusmn; {errors[k, i]:.1e}</td>"
                        for i in range(M))
        rows.append(f"<tr><td>{html.escape(t)}</td>{cells}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _html_summary(name, items, table):
    """A result's notebook view: its name, a list of facts, the table of <J_i^z>/N_i."""
    facts = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                    f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                    for k, v in items if v is not None)
    return (f"<div><b>{html.escape(name)}</b><table>{facts}</table>"
            f"<i>&lang;J<sub>i</sub><sup>z</sup>&rang;/N<sub>i</sub></i>{table}</div>")


class Result:
    kind = "result"
    _arrays = ()

    def __init__(self, chain, meta=None):
        self.chain = chain
        self.meta = dict(meta or {})

    def save(self, path, overwrite=False):
        """Save to ``path`` (.npz) atomically; ``trajspin.load`` reads it back.

        ``path`` may be a ``trajspin.outputs.ReservedOutput`` made before the work.  An
        existing file is replaced only with ``overwrite=True``; a path that is not a regular
        file (directory, device, FIFO, link) never.
        """
        header = {"kind": self.kind, "chain": self.chain.to_dict(), "meta": self.meta}
        return atomic_savez(path, overwrite, header=np.array(json.dumps(header)),
                            **self.file_arrays())

    def file_arrays(self) -> dict:
        """{name: array} that ``save`` writes beside the header (subclasses add theirs)."""
        return {name: np.asarray(getattr(self, name)) for name in self._arrays}

    @property
    def jz_over_n(self):
        """<J_i^z>/N_i, in [-1/2, 1/2]."""
        return self.jz / np.asarray(self.chain.sizes, dtype=float)

    def plot(self, ax=None, xscale="linear", label=None, **line_kw):
        """Draw <J_i^z>/N_i against gamma t, one line per domain (needs matplotlib).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Drawn into when given (to compare results), else a new figure.
        xscale : {"linear", "log"}
            "log" leaves t = 0 out.
        label : str, optional
            Put in front of the legend labels ("exact D1 (N=12)").
        **line_kw
            Passed to ``ax.plot`` (``ls="--"``, ``lw``, ...).

        Returns
        -------
        ax : matplotlib Axes
        """
        return plot_series(self, ax, xscale=xscale, label=label, title=self._plot_title(),
                           **line_kw)

    def _plot_title(self):
        return f"{self.chain!r}"

    def _summary_items(self):
        """(name, value) facts of the notebook view; None values are left out."""
        return [("chain", repr(self.chain)), ("initial n", self.meta.get("initial"))]

    def _html_values(self):
        return html_table(self.times, self.jz_over_n, sizes=self.chain.sizes)

    def _repr_html_(self):
        return _html_summary(type(self).__name__, self._summary_items(), self._html_values())


EXTRA_OBSERVABLES = ("jz2", "jz_var", "n_dist", "coherence", "channel_rates", "reservoir_rates",
                     "log_negativity")


def _set_observables(result, observables):
    """Attach the exact solvers' observables (None when absent) and list them for ``save``."""
    observables = dict(observables or {})
    for name in EXTRA_OBSERVABLES:
        value = observables.get(name)
        setattr(result, name, None if value is None else np.asarray(value, dtype=float))
    pairs = result.meta.get("pairs")
    result.pairs = [tuple(p) for p in pairs] if pairs else []
    result._arrays = type(result)._arrays + tuple(
        n for n in EXTRA_OBSERVABLES if getattr(result, n) is not None)


class MasterResult(Result):
    """Exact density-matrix evolution.

    Attributes
    ----------
    times : ndarray, shape (T,)
    jz : ndarray, shape (T, M)
        Unnormalised <J_i^z>(t).
    sector_populations : ndarray, shape (T, K0 + 1)
        Tr rho_K(t) for K = 0..K0.
    trace : ndarray, shape (T,)
    jump_rates : ndarray, shape (T, M - 1)
        Net quanta per unit time into shared reservoir c (emission minus absorption; at zero
        temperature gamma_c <L_c^dag L_c>(t)); NaN if not computed.
    jz2, jz_var, n_dist, coherence, channel_rates, reservoir_rates, log_negativity : ndarray
        The requested observables (``trajspin.observables``), time axis first; None if not
        computed.  ``pairs`` lists the domain pairs of log_negativity.
    chain : Chain
    meta : dict  (initial state and its label, observables, pairs, solver, wall time, versions)
    """

    kind = "master"
    _arrays = ("times", "jz", "sector_populations", "trace", "jump_rates")

    def __init__(self, chain, times, jz, sector_populations, meta=None, jump_rates=None,
                 observables=None):
        super().__init__(chain, meta)
        self.times = np.asarray(times, dtype=float)
        self.jz = np.asarray(jz, dtype=float)
        self.sector_populations = np.asarray(sector_populations, dtype=float)
        self.trace = self.sector_populations.sum(axis=1)
        self.jump_rates = (np.full((self.times.size, chain.M - 1), np.nan) if jump_rates is None
                           else np.asarray(jump_rates, dtype=float))
        _set_observables(self, observables)

    def __str__(self):
        return (f"MasterResult: exact Lindblad evolution of {self.chain!r}, "
                f"initial n = {self.meta.get('initial')}, {len(self.times)} times "
                f"in [{self.times[0]:g}, {self.times[-1]:g}]/gamma, "
                f"max |trace - 1| = {np.max(np.abs(self.trace - 1)):.1e}\n"
                f"<J_i^z>/N_i:\n" + format_table(self.times, self.jz_over_n, sizes=self.chain.sizes))

    __repr__ = __str__

    def _plot_title(self):
        return f"exact: {self.chain!r}"

    def _summary_items(self):
        return super()._summary_items() + [
            ("solver", self.meta.get("solver")),
            ("times", f"{len(self.times)} in [{self.times[0]:g}, {self.times[-1]:g}]/gamma"),
            ("max |trace - 1|", f"{np.max(np.abs(self.trace - 1)):.1e}")]


class SteadyStateResult(Result):
    """The t -> infinity state reached from the initial state.

    Attributes
    ----------
    jz : ndarray, shape (M,)
    sector_populations : ndarray, shape (K0 + 1,)
        Tr rho_K(inf): the probability that excitation K is left forever.
    blocks : list of ndarray (or dict, see ``steady_state``)
        rho_K(inf) in the coupled Dicke basis of sector K (only with keep_blocks=True).
    jz2, jz_var, n_dist, coherence, channel_rates, reservoir_rates, log_negativity : ndarray
        The requested observables at t -> infinity (shapes of ``trajspin.observables``
        without the time axis); None if not computed.
    """

    kind = "steady"
    _arrays = ("jz", "sector_populations")

    def __init__(self, chain, jz, sector_populations, blocks=None, meta=None, observables=None):
        super().__init__(chain, meta)
        self.jz = np.asarray(jz, dtype=float)
        self.sector_populations = np.asarray(sector_populations, dtype=float)
        self.blocks = blocks
        _set_observables(self, observables)

    def __str__(self):
        cells = "  ".join(f"D{i + 1}: {v:+.8f}" for i, v in enumerate(self.jz_over_n))
        return (f"SteadyStateResult for {self.chain!r}, initial n = {self.meta.get('initial')}\n"
                f"<J_i^z>/N_i at t -> inf: {cells}\n"
                f"excitation left: mean {self._mean_excitation_left():.6f}")

    __repr__ = __str__

    def _mean_excitation_left(self):
        return float(np.dot(np.arange(self.sector_populations.size), self.sector_populations))

    def plot(self, ax=None, lines=False, label=None, **kw):
        """Draw <J_i^z>/N_i at t -> infinity (needs matplotlib).

        Parameters
        ----------
        ax : matplotlib Axes, optional
        lines : bool
            False: a bar per domain.  True: a dotted horizontal line per domain, to lay
            over a plot against time (``steady.plot(ax=master.plot(), lines=True)``).
        label : str, optional
            Put in front of the legend labels.
        **kw
            Passed to ``ax.bar`` or ``ax.axhline``.

        Returns
        -------
        ax : matplotlib Axes
        """
        return plot_steady(self, ax, lines=lines, label=label, **kw)

    def _summary_items(self):
        return super()._summary_items() + [
            ("solver", self.meta.get("solver")),
            ("mean excitation left", f"{self._mean_excitation_left():.6f}")]

    def _html_values(self):
        return html_table(["t -> inf"], self.jz_over_n[None, :], sizes=self.chain.sizes)

