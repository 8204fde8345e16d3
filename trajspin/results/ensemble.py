"""The result of an ensemble of trajectories: means, standard errors, sector counts."""
from __future__ import annotations

import numpy as np

from trajspin.errors import InputError
from trajspin.results.base import Result, format_table, html_table
from trajspin.results.plotting import plot_series

__all__ = ["EnsembleResult"]


class EnsembleResult(Result):
    """Average over quantum trajectories with index range [start, stop).

    Attributes
    ----------
    times : ndarray, shape (T,)
    jz : ndarray, shape (T, M)
        Mean of <J_i^z>(t) over trajectories.
    jz_err : ndarray, shape (T, M)
        Standard error of that mean, sqrt(var / ntraj) with the unbiased variance.
    ntraj, seed : int
    jz_sum, jz_sumsq : ndarray, shape (T, M)
        Running sums (exact merge of disjoint index ranges).
    final_excitation_counts : ndarray, shape (K0 + 1,)
        How many trajectories ended with excitation K.
    ndark : int
        Trajectories frozen in a dark state with excitation left.
    njumps_sum : int
    <name>, <name>_err : ndarray
        Every observable asked for (``meta["observables"]``; ``trajspin.observables``): the
        mean over trajectories of its conditional expectation and the standard error, shapes
        jz2 / jz_var (T, M), n_dist (T, M, Nmax+1), coherence (T, M-1), channel_rates (T, C),
        reservoir_rates (T, R).  jz_var = mean(jz2) - mean(jz)^2 (from the averaged moments),
        its error by the delta method, Var(x2 - 2 <x> x) / ntraj with x = <J^z>_c, x2 = <(J^z)^2>_c.
    observable_sums : dict {array name: ndarray}
        Running sums behind them (``obs_sum__<name>``, ``obs_sumsq__<name>``,
        ``obs_cross__jz_jz2``), merged exactly like jz_sum.
    """

    kind = "ensemble"
    _arrays = ("times", "jz", "jz_err", "jz_sum", "jz_sumsq", "final_excitation_counts",
               "index_ranges")
    _OBS = ("jz2", "n_dist", "coherence", "channel_rates", "reservoir_rates")

    def __init__(self, chain, times, seed, jz_sum, jz_sumsq, ntraj, final_excitation_counts,
                 ndark, njumps_sum, index_ranges, meta=None, observables=None):
        super().__init__(chain, meta)
        self.observable_sums = {k: np.asarray(v, dtype=float) for k, v in (observables or {}).items()}
        self.times = np.asarray(times, dtype=float)
        self.seed = int(seed)
        self.jz_sum = np.asarray(jz_sum, dtype=float)
        self.jz_sumsq = np.asarray(jz_sumsq, dtype=float)
        self.ntraj = int(ntraj)
        self.final_excitation_counts = np.asarray(final_excitation_counts, dtype=np.int64)
        self.ndark = int(ndark)
        self.njumps_sum = int(njumps_sum)
        self.index_ranges = np.asarray(index_ranges, dtype=np.int64).reshape(-1, 2)

    def save(self, path, overwrite=False):
        """Save to ``path`` (.npz) atomically, with the running sums of every observable;
        ``trajspin.load`` reads it back (and ``merge`` still works on what it reads).

        Parameters
        ----------
        path : str, PathLike or ReservedOutput
            The result file, or a ``trajspin.outputs.ReservedOutput`` made before the work.
        overwrite : bool
            Replace an existing regular file (never a directory, device, FIFO or link).

        Returns
        -------
        str
            The path written.
        """
        self.meta.update(seed=self.seed, ntraj=self.ntraj, ndark=self.ndark,
                         njumps_sum=self.njumps_sum)
        return super().save(path, overwrite)

    def file_arrays(self) -> dict:
        """The arrays of :meth:`Result.file_arrays` and the running sums of every observable."""
        return {**super().file_arrays(), **(self.observable_sums or {})}

    @classmethod
    def from_file_arrays(cls, chain, arrays, meta):
        """Build from the arrays and meta of a result file (observable sums included)."""
        return cls(chain, arrays["times"], meta.get("seed", 0), arrays["jz_sum"],
                   arrays["jz_sumsq"], meta["ntraj"], arrays["final_excitation_counts"],
                   meta.get("ndark", 0), meta.get("njumps_sum", 0), arrays["index_ranges"],
                   meta=meta, observables={k: v for k, v in arrays.items() if k.startswith("obs_")})

    def _mean_err(self, name):
        s1 = self.observable_sums.get(f"obs_sum__{name}")
        if s1 is None:
            raise AttributeError(f"observable {name!r} was not computed for this ensemble "
                                 f"(run_trajectories(..., observables=[..., {name!r}]))")
        n = self.ntraj
        mean = s1 / max(n, 1)
        if n < 2:
            return mean, np.full_like(s1, np.inf)
        var = np.maximum(self.observable_sums[f"obs_sumsq__{name}"] / n - mean**2, 0.0) * n / (n - 1)
        return mean, np.sqrt(var / n)

    def __getattr__(self, name):
        base = name[:-4] if name.endswith("_err") else name
        if base in self._OBS:
            return self._mean_err(base)[name != base]
        if base == "jz_var":
            m2, e2 = self._mean_err("jz2")
            if name == base:
                return m2 - self.jz**2
            n = self.ntraj
            if n < 2:
                return np.full_like(m2, np.inf)
            m1 = self.jz
            s = self.observable_sums
            var2 = (s["obs_sumsq__jz2"] / n - m2**2)
            var1 = (self.jz_sumsq / n - m1**2)
            cov = (s["obs_cross__jz_jz2"] / n - m1 * m2)
            var = np.maximum(var2 + 4 * m1**2 * var1 - 4 * m1 * cov, 0.0) * n / (n - 1)
            return np.sqrt(var / n)
        raise AttributeError(name)

    @property
    def jz(self):
        """Mean of <J_i^z>(t) over the trajectories, ndarray, shape (T, M), units of hbar
        (``jz_sum / ntraj``)."""
        return self.jz_sum / max(self.ntraj, 1)

    @property
    def jz_err(self):
        """Standard error of :attr:`jz`, ndarray, shape (T, M): sqrt(var / ntraj) with the
        unbiased variance over trajectories; inf with fewer than two trajectories."""
        n = self.ntraj
        if n < 2:
            return np.full_like(self.jz_sum, np.inf)
        mean = self.jz_sum / n
        var = np.maximum(self.jz_sumsq / n - mean**2, 0.0) * n / (n - 1)
        return np.sqrt(var / n)

    @property
    def jz_over_n_err(self):
        """Standard error of ``jz_over_n`` (<J_i^z>/N_i), ndarray, shape (T, M),
        dimensionless."""
        return self.jz_err / np.asarray(self.chain.sizes, dtype=float)

    def merge(self, other):
        """Combine with a result from a disjoint trajectory index range (same chain, grid, seed)."""
        if not isinstance(other, EnsembleResult):
            raise InputError("can only merge two ensemble results")
        if other.chain != self.chain or other.seed != self.seed or not np.array_equal(other.times, self.times):
            raise InputError("cannot merge ensembles of different chains, seeds or time grids")
        if self.meta.get("initial") != other.meta.get("initial"):
            raise InputError("cannot merge ensembles with different initial states")
        ranges = np.concatenate([self.index_ranges, other.index_ranges])
        order = np.argsort(ranges[:, 0])
        ranges = ranges[order]
        if np.any(ranges[1:, 0] < ranges[:-1, 1]):
            raise InputError(f"trajectory index ranges overlap: {ranges.tolist()}")
        if set(self.observable_sums) != set(getattr(other, "observable_sums", {})):
            raise InputError("cannot merge ensembles with different observables")
        n = max(self.final_excitation_counts.size, other.final_excitation_counts.size)
        counts = np.zeros(n, dtype=np.int64)
        counts[:self.final_excitation_counts.size] += self.final_excitation_counts
        counts[:other.final_excitation_counts.size] += other.final_excitation_counts
        return EnsembleResult(self.chain, self.times, self.seed, self.jz_sum + other.jz_sum,
                              self.jz_sumsq + other.jz_sumsq, self.ntraj + other.ntraj, counts,
                              self.ndark + other.ndark, self.njumps_sum + other.njumps_sum,
                              _coalesce(ranges), meta=dict(self.meta),
                              observables={k: v + other.observable_sums[k]
                                           for k, v in self.observable_sums.items()})

    def __str__(self):
        return (f"EnsembleResult: {self.ntraj} trajectories of {self.chain!r}, seed {self.seed}, "
                f"initial n = {self.meta.get('initial')}, {len(self.times)} times in "
                f"[{self.times[0]:g}, {self.times[-1]:g}]/gamma; {self.ndark} ended dark, "
                f"{self.njumps_sum / max(self.ntraj, 1):.2f} jumps per trajectory"
                + (f"; observables {', '.join(self.meta['observables'])}"
                   if len(self.meta.get("observables", ())) > 1 else "") + "\n"
                "<J_i^z>/N_i ± standard error:\n"
                + format_table(self.times, self.jz_over_n, self.jz_over_n_err, sizes=self.chain.sizes))

    __repr__ = __str__

    def plot(self, ax=None, band=1.0, xscale="linear", label=None, **line_kw):
        """Draw the mean <J_i^z>/N_i against gamma t with a ± standard-error band per domain.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Drawn into when given (e.g. over ``master(...).plot()``), else a new figure.
        band : float
            Half-width of the band in standard errors (``jz_over_n_err``); 0: no band.
            Fewer than two trajectories draw no band.
        xscale : {"linear", "log"}
        label : str, optional
            Put in front of the legend labels.
        **line_kw
            Passed to ``ax.plot``.

        Returns
        -------
        ax : matplotlib Axes, with M lines and M bands
        """
        return plot_series(self, ax, self.jz_over_n_err, band, xscale, label,
                           title=f"{self.ntraj} trajectories: {self.chain!r}", **line_kw)

    def _summary_items(self):
        obs = self.meta.get("observables", ())
        return super()._summary_items() + [
            ("engine", self.meta.get("engine")),
            ("trajectories", f"{self.ntraj} (seed {self.seed}; values ± standard error)"),
            ("ended dark", self.ndark),
            ("jumps per trajectory", f"{self.njumps_sum / max(self.ntraj, 1):.2f}"),
            ("observables", ", ".join(obs) if len(obs) > 1 else None)]

    def _html_values(self):
        return html_table(self.times, self.jz_over_n, self.jz_over_n_err, sizes=self.chain.sizes)


def _coalesce(ranges):
    out = [list(ranges[0])]
    for a, b in ranges[1:]:
        if a == out[-1][1]:
            out[-1][1] = b
        else:
            out.append([a, b])
    return np.array(out, dtype=np.int64)

