"""Result objects returned by the solvers, and their files.

Every result carries the chain and the inputs that made it, prints a compact
table of <J_i^z>/N_i, and round-trips through ``save`` / ``trajspin.load``
(a NumPy ``.npz`` written under a temporary name, then renamed).
"""
from __future__ import annotations

import json
import platform
import zipfile
import zlib

import numpy as np

from .model import Chain, InputError
from .outputs import atomic_savez
from .validation import available_memory

__all__ = ["MasterResult", "SteadyStateResult", "EnsembleResult", "load", "atomic_savez",
           "versions"]


def versions() -> dict:
    """Versions of the packages that shaped a result."""
    import numba
    import scipy

    from . import __version__
    return {"trajspin": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__, "python": platform.python_version()}


def format_table(times, values, errors=None, sizes=None, max_rows=12):
    """A fixed-width table of values[t, i] (optionally ± errors) at up to max_rows times."""
    times = np.asarray(times)
    idx = np.unique(np.linspace(0, len(times) - 1, min(max_rows, len(times))).round().astype(int))
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


class _Result:
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
        arrays = {name: np.asarray(getattr(self, name)) for name in self._arrays}
        header = {"kind": self.kind, "chain": self.chain.to_dict(), "meta": self.meta}
        return atomic_savez(path, overwrite, header=np.array(json.dumps(header)), **arrays)

    @property
    def jz_over_n(self):
        """<J_i^z>/N_i, in [-1/2, 1/2]."""
        return self.jz / np.asarray(self.chain.sizes, dtype=float)


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


class MasterResult(_Result):
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


class SteadyStateResult(_Result):
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
                f"excitation left: mean {np.dot(np.arange(self.sector_populations.size), self.sector_populations):.6f}")

    __repr__ = __str__


class EnsembleResult(_Result):
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
        self.meta.update(seed=self.seed, ntraj=self.ntraj, ndark=self.ndark,
                         njumps_sum=self.njumps_sum)
        if not self.observable_sums:
            return super().save(path, overwrite)
        arrays = {name: np.asarray(getattr(self, name)) for name in self._arrays}
        arrays.update(self.observable_sums)
        header = {"kind": self.kind, "chain": self.chain.to_dict(), "meta": self.meta}
        return atomic_savez(path, overwrite, header=np.array(json.dumps(header)), **arrays)

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
        return self.jz_sum / max(self.ntraj, 1)

    @property
    def jz_err(self):
        n = self.ntraj
        if n < 2:
            return np.full_like(self.jz_sum, np.inf)
        mean = self.jz_sum / n
        var = np.maximum(self.jz_sumsq / n - mean**2, 0.0) * n / (n - 1)
        return np.sqrt(var / n)

    @property
    def jz_over_n_err(self):
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


def _coalesce(ranges):
    out = [list(ranges[0])]
    for a, b in ranges[1:]:
        if a == out[-1][1]:
            out[-1][1] = b
        else:
            out.append([a, b])
    return np.array(out, dtype=np.int64)


MAX_COMPRESSED_MEMBER = 64 * 2**20    # trajspin writes uncompressed .npz; others stay small


def _check_members(path):
    """Refuse files whose members would expand beyond memory (deflate bombs) before reading."""
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    total = sum(i.file_size for i in infos)
    for i in infos:
        if i.compress_type != zipfile.ZIP_STORED and i.file_size > MAX_COMPRESSED_MEMBER:
            raise InputError(f"{path}: member {i.filename} expands from {i.compress_size} to "
                             f"{i.file_size} bytes; trajspin writes uncompressed files")
    if total > 0.5 * available_memory():
        raise InputError(f"{path}: its arrays need {total / 2**30:.1f} GiB, more than half the "
                         f"available memory")


def read_result_file(path):
    """(header dict, {name: array}) of a trajspin result file; one-line InputError otherwise."""
    try:
        _check_members(path)
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a single array (.npy), not an .npz archive")
            header = json.loads(str(f["header"]))
            arrays = {k: f[k] for k in f.files if k != "header"}
    except InputError:
        raise
    except (OSError, KeyError, ValueError, EOFError, TypeError, zipfile.BadZipFile,
            zlib.error) as exc:
        raise InputError(f"{path}: not a trajspin result file ({type(exc).__name__}: "
                         f"{exc})") from None
    if not isinstance(header, dict) or "kind" not in header or "chain" not in header:
        raise InputError(f"{path}: not a trajspin result file (its header lacks kind and chain; "
                         f"a checkpoint? read those with trajspin.runner.read_checkpoint)")
    return header, arrays


def load(path):
    """Read a result written by ``save`` (or by mpi_scripts/run_ensemble.py).

    Every problem with the file (missing, truncated, corrupt, a .npy, a checkpoint, a header
    with missing or foreign keys, arrays too large for memory) is an ``InputError`` naming it.
    """
    header, arrays = read_result_file(path)
    try:
        return _build(header, arrays, path)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{path}: malformed trajspin result ({type(exc).__name__}: {exc})") \
            from None


def _build(header, arrays, path):
    chain = Chain.from_dict(header["chain"])
    meta = header.get("meta", {})
    kind = header["kind"]
    if kind == "master":
        return MasterResult(chain, arrays["times"], arrays["jz"], arrays["sector_populations"], meta,
                            jump_rates=arrays.get("jump_rates"),
                            observables={k: arrays[k] for k in EXTRA_OBSERVABLES if k in arrays})
    if kind == "steady":
        return SteadyStateResult(chain, arrays["jz"], arrays["sector_populations"], meta=meta,
                                 observables={k: arrays[k] for k in EXTRA_OBSERVABLES if k in arrays})
    if kind == "ensemble":
        if "rec_index" in arrays:
            from .demon import RecordedEnsemble
            return RecordedEnsemble.from_file_arrays(chain, arrays, meta)
        return EnsembleResult.from_file_arrays(chain, arrays, meta)
    if kind == "mean_field":
        from .mean_field import MeanFieldResult
        return MeanFieldResult(chain, arrays["times"], arrays["moments"], meta["labels"], meta)
    raise InputError(f"{path}: unknown result kind {kind!r}")
