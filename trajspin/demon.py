"""Maxwell's demon views: jump records, full counting statistics, conditional states, feedback.

An observer who records every quantum each reservoir takes (which reservoir, when) knows the
conditional state of the chain along one trajectory (Minganti et al., Phys. Rev. A 103,
052201 (2021)).  This module keeps those records for whole ensembles and computes what the
demon sees:

* full counting statistics: the joint distribution P(n_1, ..., n_{M-1}) of the quanta each
  reservoir took, its moments and the distribution of the total n = sum_c n_c; at T = 0 the
  total fixes the excitation left forever, K_final = K_0 - n, so P(n) equals the exact
  steady-state sector weight Tr rho_{K_0 - n}(inf);
* timing: first-jump and waiting-time distributions, and the jump rate of each reservoir
  against time (a "photocurrent") beside the exact gamma_c <L_c^dag L_c>(t);
* conditional final states: <J_i^z>(inf)/N_i given the record (total quanta, or quanta per
  reservoir); given n quanta it equals the exact steady-state block rho_{K_0 - n}(inf),
  normalised; the probability that the last domain ends above a threshold; the energy
  balance of every trajectory (excitation left + quanta taken = initial excitation).

The demon can also act (``trajspin.feedback``): rules that close or open reservoirs on the
record run inside the same exact event-driven engine.  Averages over feedback runs are not
given by any master equation.

Records are kept compactly by :class:`JumpRecords`: per-trajectory summaries, and with
``records="full"`` every jump as flat arrays with offsets per trajectory.
"""
from __future__ import annotations

import json

import numpy as np

from .model import Chain, InputError
from .outputs import atomic_savez
from .results import EnsembleResult

__all__ = ["JumpRecords", "RecordedEnsemble", "load_records", "CountingStatistics",
           "counting_statistics", "first_jump_distribution", "waiting_times", "photocurrent",
           "exact_jump_rates", "conditional_final_jz", "exact_conditional_final_jz",
           "probability_above", "energy_balance", "plot_raster", "plot_final_histograms",
           "plot_photocurrent", "plot_feedback_comparison", "bin_average", "make_views"]

_PREFIX = "rec_"
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


class JumpRecords:
    """The records of an ordered set of trajectories (flat arrays, offsets per trajectory).

    Per trajectory (length n, in trajectory-index order):

    index : int64 (n,)             global trajectory index
    njumps : int64 (n,)            quanta taken (= jumps)
    excitation_left : int64 (n,)   excitation K of the final state
    dark : bool (n,)               frozen with excitation left
    final_jz : float64 (n, M)      <J_i^z> of the t -> infinity conditional state
    quanta : int64 (n, M-1)        quanta taken by each reservoir
    final_open : int64 (n,)        bit mask of the reservoirs open at the end (bit c: reservoir c)
    first_jump_time : float64 (n,) inf when the trajectory never jumped

    Per jump (only when ``full``; length J = sum(njumps); trajectory k owns
    ``offsets[k]:offsets[k+1]``):

    jump_time : float64 (J,);  jump_reservoir : int64 (J,)
    jump_excitation : int64 (J,)   excitation K just before the jump (K - 1 after)
    jz_before, jz_after : float64 (J, M)   conditional <J_i^z> just before / after the jump
    reservoirs_open : int64 (J,)   bit mask of open reservoirs after the jump (feedback)
    """

    SUMMARY = ("index", "njumps", "excitation_left", "dark", "final_jz", "quanta", "final_open",
               "first_jump_time")
    JUMPS = ("jump_time", "jump_reservoir", "jump_excitation", "jz_before", "jz_after",
             "reservoirs_open")

    def __init__(self, M, index, njumps, excitation_left, dark, final_jz, quanta, final_open,
                 first_jump_time, **jumps):
        self.M = int(M)
        self.index = np.asarray(index, dtype=np.int64)
        self.njumps = np.asarray(njumps, dtype=np.int64)
        self.excitation_left = np.asarray(excitation_left, dtype=np.int64)
        self.dark = np.asarray(dark, dtype=bool)
        self.final_jz = np.asarray(final_jz, dtype=float).reshape(-1, self.M)
        self.quanta = np.asarray(quanta, dtype=np.int64).reshape(-1, self.M - 1)
        self.final_open = np.asarray(final_open, dtype=np.int64)
        self.first_jump_time = np.asarray(first_jump_time, dtype=float)
        self.full = bool(jumps)
        if self.full:
            missing = set(self.JUMPS) - set(jumps)
            if missing:
                raise InputError(f"full records need {sorted(missing)}")
            self.jump_time = np.asarray(jumps["jump_time"], dtype=float)
            self.jump_reservoir = np.asarray(jumps["jump_reservoir"], dtype=np.int64)
            self.jump_excitation = np.asarray(jumps["jump_excitation"], dtype=np.int64)
            self.jz_before = np.asarray(jumps["jz_before"], dtype=float).reshape(-1, self.M)
            self.jz_after = np.asarray(jumps["jz_after"], dtype=float).reshape(-1, self.M)
            self.reservoirs_open = np.asarray(jumps["reservoirs_open"], dtype=np.int64)

    @classmethod
    def empty(cls, M, full=True):
        C = M - 1
        jumps = dict(jump_time=np.zeros(0), jump_reservoir=np.zeros(0, np.int64),
                     jump_excitation=np.zeros(0, np.int64), jz_before=np.zeros((0, M)),
                     jz_after=np.zeros((0, M)), reservoirs_open=np.zeros(0, np.int64))
        return cls(M, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros(0, bool), np.zeros((0, M)), np.zeros((0, C), np.int64),
                   np.zeros(0, np.int64), np.zeros(0), **(jumps if full else {}))

    @property
    def kind(self):
        return "full" if self.full else "summaries"

    def __len__(self):
        return self.index.size

    @property
    def offsets(self):
        """Start of each trajectory's jumps in the flat arrays, shape (n + 1,)."""
        return np.concatenate([[0], np.cumsum(self.njumps)]).astype(np.int64)

    @property
    def total_quanta(self):
        return self.njumps

    def jumps(self, k):
        """The jumps of the k-th trajectory held here: dict of the per-jump arrays."""
        if not self.full:
            raise InputError("these records keep summaries only (records='full' keeps every jump)")
        a, b = self.offsets[k], self.offsets[k + 1]
        return {name: getattr(self, name)[a:b] for name in self.JUMPS}

    def __add__(self, other):
        """Concatenation: ``self`` then ``other`` (trajectory order is kept)."""
        if not isinstance(other, JumpRecords) or other.M != self.M or other.full != self.full:
            raise InputError("can only join records of the same chain and kind")
        names = self.SUMMARY + (self.JUMPS if self.full else ())
        parts = {n: np.concatenate([getattr(self, n), getattr(other, n)]) for n in names}
        return JumpRecords(self.M, **parts)

    def select(self, keep):
        """Records of the trajectories where ``keep`` (bool array, length n) is True."""
        keep = np.asarray(keep, dtype=bool)
        parts = {n: getattr(self, n)[keep] for n in self.SUMMARY}
        if self.full:
            per_jump = np.repeat(keep, self.njumps)
            parts.update({n: getattr(self, n)[per_jump] for n in self.JUMPS})
        return JumpRecords(self.M, **parts)

    def to_arrays(self, prefix=_PREFIX):
        names = self.SUMMARY + (self.JUMPS if self.full else ())
        return {prefix + n: np.asarray(getattr(self, n)) for n in names}

    @classmethod
    def from_arrays(cls, arrays, M, prefix=_PREFIX):
        summary = {n: arrays[prefix + n] for n in cls.SUMMARY}
        jumps = {n: arrays[prefix + n] for n in cls.JUMPS if prefix + n in arrays}
        return cls(M, **summary, **jumps)

    def __eq__(self, other):
        if not isinstance(other, JumpRecords) or other.M != self.M or other.full != self.full:
            return False
        a, b = self.to_arrays(), other.to_arrays()
        return all(np.array_equal(a[k], b[k]) for k in a)

    def __str__(self):
        return (f"JumpRecords ({self.kind}): {len(self)} trajectories, "
                f"{int(self.njumps.sum())} jumps")

    __repr__ = __str__


class RecordedEnsemble(EnsembleResult):
    """An :class:`~trajspin.results.EnsembleResult` that also keeps the records.

    Saved as an ensemble file (``trajspin.load`` reads its averages) with the record arrays
    (``rec_*``) next to them; :func:`load_records` reads them back.

    Attributes
    ----------
    records : JumpRecords or None   (None for a feedback run without records)
    feedback : dict or None         the rules (``meta["feedback"]``); averages with feedback
                                    are not given by any master equation
    """

    def __init__(self, chain, times, seed, jz_sum, jz_sumsq, ntraj, final_excitation_counts,
                 ndark, njumps_sum, index_ranges, records=None, meta=None):
        super().__init__(chain, times, seed, jz_sum, jz_sumsq, ntraj, final_excitation_counts,
                         ndark, njumps_sum, index_ranges, meta=meta)
        self.records = records

    @property
    def feedback(self):
        return self.meta.get("feedback")

    def save(self, path, overwrite=False):
        self.meta.update(seed=self.seed, ntraj=self.ntraj, ndark=self.ndark,
                         njumps_sum=self.njumps_sum,
                         records=self.records.kind if self.records is not None else "none")
        arrays = {name: np.asarray(getattr(self, name)) for name in self._arrays}
        if self.records is not None:
            arrays.update(self.records.to_arrays())
        header = {"kind": self.kind, "chain": self.chain.to_dict(), "meta": self.meta}
        return atomic_savez(path, overwrite, header=np.array(json.dumps(header)), **arrays)

    def merge(self, other):
        merged = super().merge(other)
        recs = None
        if self.records is not None and getattr(other, "records", None) is not None:
            first, second = ((self, other) if self.index_ranges[0, 0] < other.index_ranges[0, 0]
                             else (other, self))
            recs = first.records + second.records
        if self.feedback != getattr(other, "feedback", None):
            raise InputError("cannot merge ensembles run with different feedback rules")
        return RecordedEnsemble(merged.chain, merged.times, merged.seed, merged.jz_sum,
                                merged.jz_sumsq, merged.ntraj, merged.final_excitation_counts,
                                merged.ndark, merged.njumps_sum, merged.index_ranges, recs,
                                meta=merged.meta)

    def __str__(self):
        text = super().__str__()
        extra = []
        if self.records is not None:
            extra.append(f"records: {self.records}")
        if self.feedback:
            extra.append(f"feedback: {'; '.join(self.feedback['rules'])} (averages under feedback "
                         f"are not given by any master equation)")
        return text + ("\n" + "\n".join(extra) if extra else "")

    __repr__ = __str__

    @classmethod
    def from_file_arrays(cls, chain, arrays, meta):
        """Build from the arrays and meta of a result file (the ``trajspin.load`` hook)."""
        recs = JumpRecords.from_arrays(arrays, chain.M) if _PREFIX + "index" in arrays else None
        return cls(chain, arrays["times"], meta.get("seed", 0), arrays["jz_sum"],
                   arrays["jz_sumsq"], meta["ntraj"], arrays["final_excitation_counts"],
                   meta.get("ndark", 0), meta.get("njumps_sum", 0), arrays["index_ranges"],
                   records=recs, meta=meta)


def load_records(path) -> RecordedEnsemble:
    """Read an ensemble file with records (``run_trajectories(records=...)`` or an MPI run with
    ``[output] records``) as a :class:`RecordedEnsemble`."""
    from .results import read_result_file
    header, arrays = read_result_file(path)
    if header.get("kind") != "ensemble":
        raise InputError(f"{path}: not an ensemble result (kind {header.get('kind')!r})")
    chain = Chain.from_dict(header["chain"])
    return RecordedEnsemble.from_file_arrays(chain, arrays, header.get("meta", {}))


def _records(obj):
    recs = getattr(obj, "records", obj)
    if not isinstance(recs, JumpRecords):
        raise InputError("need jump records: run_trajectories(..., records='summaries' or 'full')")
    return recs


def _full(obj):
    recs = _records(obj)
    if not recs.full:
        raise InputError("this needs every jump: run_trajectories(..., records='full')")
    return recs


# ---------------------------------------------------------------------------- counting statistics

class CountingStatistics:
    """Full counting statistics of the quanta the reservoirs took (t -> infinity).

    Attributes
    ----------
    ntraj : int
    joint : dict {(n_1, ..., n_C): probability}
    joint_array : ndarray, shape (n_max + 1,) * C    the same, dense
    total : ndarray, shape (n_max + 1,)  P(n) of the total n = sum_c n_c
    total_err : ndarray                  its binomial standard error
    mean, mean_err : ndarray, shape (C,)
    covariance : ndarray, shape (C, C)
    fano : ndarray, shape (C,)           variance / mean of each reservoir
    cumulants_total : ndarray, shape (4,)   first four cumulants of n
    """

    def __init__(self, quanta):
        q = np.asarray(quanta, dtype=np.int64)
        n, C = q.shape
        self.ntraj, self.C = n, C
        nmax = int(q.max()) if q.size else 0
        keys, counts = np.unique(q, axis=0, return_counts=True)
        self.joint = {tuple(int(v) for v in k): c / n for k, c in zip(keys, counts)}
        self.joint_array = np.zeros((nmax + 1,) * C)
        for k, c in zip(keys, counts):
            self.joint_array[tuple(k)] = c / n
        tot = q.sum(axis=1)
        self.total = np.bincount(tot, minlength=1) / max(n, 1)
        self.total_err = np.sqrt(self.total * (1 - self.total) / max(n - 1, 1))
        self.mean = q.mean(axis=0)
        self.covariance = np.cov(q.T, ddof=1).reshape(C, C) if n > 1 else np.zeros((C, C))
        self.mean_err = np.sqrt(np.diag(self.covariance) / max(n, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            self.fano = np.diag(self.covariance) / self.mean
        x = tot.astype(float)
        m = x.mean()
        c2 = np.mean((x - m) ** 2)
        c3 = np.mean((x - m) ** 3)
        c4 = np.mean((x - m) ** 4) - 3 * c2**2
        self.cumulants_total = np.array([m, c2, c3, c4])

    def __str__(self):
        C = self.C
        lines = [f"Full counting statistics of {self.ntraj} trajectories ({C} reservoirs):",
                 "  mean quanta " + "  ".join(f"R{c + 1}: {self.mean[c]:.4f} ± {self.mean_err[c]:.4f}"
                                               for c in range(C)),
                 "  Fano factor " + "  ".join(f"R{c + 1}: {self.fano[c]:.4f}" for c in range(C)),
                 "  cumulants of the total: " + ", ".join(f"{v:.4f}" for v in self.cumulants_total),
                 "  P(total n): " + ", ".join(f"{k}: {p:.4f}" for k, p in enumerate(self.total) if p > 0)]
        return "\n".join(lines)

    __repr__ = __str__


def counting_statistics(records) -> CountingStatistics:
    """Joint distribution and moments of the quanta taken by each reservoir (records or ensemble)."""
    return CountingStatistics(_records(records).quanta)


# ---------------------------------------------------------------------------- timing

def first_jump_distribution(records, bins=40):
    """Density of the first jump time.

    Parameters
    ----------
    bins : int or array_like   edges (default 40 log-spaced bins over the sampled range)

    Returns
    -------
    edges : ndarray (B + 1,);  density : ndarray (B,)  (normalised over all trajectories, so it
    integrates to the fraction that ever jumps);  never : float  fraction that never jumps
    """
    recs = _records(records)
    t = recs.first_jump_time
    fin = t[np.isfinite(t)]
    if np.ndim(bins) == 0:
        lo, hi = (fin.min(), fin.max()) if fin.size else (1e-3, 1.0)
        bins = np.geomspace(max(lo, 1e-12), hi * (1 + 1e-12), int(bins) + 1)
    counts, edges = np.histogram(fin, bins=bins)
    return edges, counts / (len(recs) * np.diff(edges)), 1.0 - fin.size / max(len(recs), 1)


def waiting_times(records, reservoir=None):
    """Times between consecutive jumps (the first from t = 0), for jumps of ``reservoir``
    (0-based; None: every jump), as a flat array."""
    recs = _full(records)
    off = recs.offsets
    prev = np.zeros(recs.jump_time.size)
    if prev.size:
        prev[1:] = recs.jump_time[:-1]
        prev[off[:-1][recs.njumps > 0]] = 0.0       # first jump of each trajectory: from t = 0
    wait = recs.jump_time - prev
    if reservoir is not None:
        wait = wait[recs.jump_reservoir == reservoir]
    return wait


def photocurrent(records, edges):
    """Jump rate of each reservoir against time, histogrammed from the records.

    rate_c(bin) = (quanta of reservoir c in the bin) / (ntraj * bin width); it estimates
    gamma_c <L_c^dag L_c>(t) averaged over the bin (:func:`exact_jump_rates`).

    Returns
    -------
    centres : ndarray (B,)  geometric centres of the bins
    rate, err : ndarray (B, C)  mean rate and its standard error (over trajectories)
    """
    recs = _full(records)
    edges = np.asarray(edges, dtype=float)
    B, C, n = edges.size - 1, recs.M - 1, len(recs)
    width = np.diff(edges)
    b = np.searchsorted(edges, recs.jump_time, side="right") - 1
    ok = (b >= 0) & (b < B)
    traj = np.repeat(np.arange(n), recs.njumps)[ok]
    key = (traj * B + b[ok]) * C + recs.jump_reservoir[ok]
    keys, cnt = np.unique(key, return_counts=True)
    s1 = np.zeros(B * C)
    s2 = np.zeros(B * C)
    np.add.at(s1, keys % (B * C), cnt)
    np.add.at(s2, keys % (B * C), cnt.astype(float) ** 2)
    s1, s2 = s1.reshape(B, C), s2.reshape(B, C)
    mean = s1 / n
    var = np.maximum(s2 / n - mean**2, 0.0) * n / max(n - 1, 1)
    rate = mean / width[:, None]
    err = np.sqrt(var / n) / width[:, None]
    centres = np.sqrt(edges[:-1] * edges[1:]) if edges[0] > 0 else 0.5 * (edges[:-1] + edges[1:])
    return centres, rate, err


def exact_jump_rates(chain, times, initial=None):
    """gamma_c <L_c^dag L_c>(t) from the exact solver, shape (T, M-1)."""
    from .master import solve_master
    res = solve_master(chain, times, initial=initial)
    rates = getattr(res, "jump_rates", None)
    if rates is None or not np.all(np.isfinite(rates)):
        raise InputError("this trajspin's solve_master does not return jump_rates")
    return rates


def bin_average(times, values, edges, points=64):
    """Average of a smooth curve values(t) (shape (T, C)) over each bin, by interpolation in log t."""
    out = np.empty((len(edges) - 1, values.shape[1]))
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        s = np.linspace(a, b, points)
        for c in range(values.shape[1]):
            out[k, c] = _trapezoid(np.interp(s, times, values[:, c]), s) / (b - a)
    return out


# ---------------------------------------------------------------------------- conditional final states

def conditional_final_jz(records, by="total"):
    """<J_i^z>(inf)/N_i conditioned on the record.

    Parameters
    ----------
    by : {"total", "reservoir"}
        Condition on the total number of quanta n, or on the quanta per reservoir (n_1, ..).

    Returns
    -------
    dict {key: (count, mean (M,), standard error (M,))}, keys n or tuples, sorted
    """
    recs = _records(records)
    sizes = _sizes(recs, records)
    x = recs.final_jz / sizes
    keys = recs.njumps if by == "total" else [tuple(q) for q in recs.quanta]
    if by not in ("total", "reservoir"):
        raise InputError(f"by must be 'total' or 'reservoir', got {by!r}")
    groups = {}
    for k, key in enumerate(keys):
        groups.setdefault(int(key) if by == "total" else tuple(int(v) for v in key), []).append(k)
    out = {}
    for key in sorted(groups):
        idx = np.asarray(groups[key])
        v = x[idx]
        err = v.std(axis=0, ddof=1) / np.sqrt(idx.size) if idx.size > 1 else np.full(recs.M, np.inf)
        out[key] = (idx.size, v.mean(axis=0), err)
    return out


def _sizes(recs, obj):
    chain = getattr(obj, "chain", None)
    if chain is None:
        raise InputError("pass the ensemble (it knows its chain), not bare records")
    return np.asarray(chain.sizes, dtype=float)


def exact_conditional_final_jz(chain, initial=None):
    """Exact P(n quanta) and <J_i^z>(inf)/N_i given n quanta, from the steady-state blocks.

    Given n quanta the state left is rho_{K0-n}(inf) / Tr rho_{K0-n}(inf), so
    <n_i> = Tr(rho_K diag(n_i)) / Tr rho_K in the coupled Dicke basis of sector K = K0 - n.

    Returns
    -------
    dict {n: (probability, jz_over_n (M,))} for every n of nonzero probability
    """
    from .master import steady_state
    ss = steady_state(chain, initial=initial, keep_blocks=True)
    K0 = ss.sector_populations.size - 1
    sizes = np.asarray(chain.sizes, dtype=float)
    out = {}
    for K in range(K0, -1, -1):
        block = ss.blocks[K]
        if block is None:
            continue
        p = float(np.trace(block))
        if p <= 1e-14:
            continue
        states = chain.sectors.sector(K).states
        n_mean = np.diag(block) @ states / p
        out[K0 - K] = (p, (n_mean - 0.5 * sizes) / sizes)
    return out


def probability_above(records, domain=-1, threshold=0.25):
    """Probability (± standard error) that <J_domain^z>(inf)/N_domain >= threshold."""
    recs = _records(records)
    sizes = _sizes(recs, records)
    x = recs.final_jz[:, domain] / sizes[domain] >= threshold
    n = len(recs)
    p = float(x.mean()) if n else float("nan")
    return p, float(np.sqrt(p * (1 - p) / max(n - 1, 1)))


def energy_balance(records, initial_excitation=None):
    """Per trajectory: excitation left + quanta taken - initial excitation (0 at T = 0), and
    the excitation of the final conditional state sum_i (<J_i^z> + N_i/2) - excitation left.

    Returns
    -------
    quanta_residual : int64 (n,);  state_residual : float64 (n,)
    """
    recs = _records(records)
    sizes = _sizes(recs, records)
    if initial_excitation is None:
        initial_excitation = int(sum(records.meta["initial"]))
    quanta_residual = recs.excitation_left + recs.njumps - int(initial_excitation)
    state_residual = (recs.final_jz + 0.5 * sizes).sum(axis=1) - recs.excitation_left
    return quanta_residual, state_residual


# ---------------------------------------------------------------------------- views

COLORS = ["#c2185b", "#1f5fbf", "#d4a017", "#2e9e7f", "#6a3d9a", "#444444"]


def _plt():
    import matplotlib
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_raster(trajectories, path, title=None):
    """A few trajectories: conditional <J_i^z>/N_i against time, with a jump raster per reservoir.

    Parameters
    ----------
    trajectories : sequence of Trajectory (same chain and time grid; log-spaced times look best)
    path : str   PNG written here
    """
    plt = _plt()
    trs = list(trajectories)
    chain = trs[0].chain
    C = chain.M - 1
    fig, axes = plt.subplots(len(trs), 1, figsize=(8, 1.9 * len(trs) + 0.8), sharex=True,
                             constrained_layout=True, squeeze=False)
    t = trs[0].times
    pos = t > 0
    for ax, tr in zip(axes[:, 0], trs):
        y = tr.jz_over_n
        for i in range(chain.M):
            ax.plot(t[pos], y[pos, i], color=COLORS[i % len(COLORS)], lw=1.4,
                    label=f"D{i + 1} (N={chain.sizes[i]})")
        # raster: one row of ticks per reservoir above the traces
        for c in range(C):
            base = 0.58 + 0.09 * c
            times = tr.jump_times[tr.jump_channels == c]
            ax.vlines(times, base, base + 0.07, color="k" if c == 0 else "#777777", lw=1.2)
            ax.text(t[pos][0], base + 0.035, f"R{c + 1} ", ha="right", va="center", fontsize=7)
            if tr.reservoirs_open is not None and tr.reservoirs_open.size:
                closed = np.nonzero(((tr.reservoirs_open >> c) & 1) == 0)[0]
                if closed.size:
                    tc = tr.jump_times[closed[0]]
                    ax.plot([tc, t[-1]], [base + 0.035] * 2, color="#d62728", lw=2.5, alpha=0.5,
                            solid_capstyle="butt")
        ax.axhline(0, color="gray", lw=0.4)
        ax.set_ylim(-0.55, 0.6 + 0.09 * C)
        ax.set_yticks([-0.5, 0, 0.5])
        ax.set_ylabel(r"$\langle J_i^z\rangle_c/N_i$", fontsize=8)
        quanta = ", ".join(f"R{c + 1}: {q}" for c, q in enumerate(tr.quanta))
        ax.set_title(f"trajectory {tr.index}: {tr.jump_times.size} quanta ({quanta}); "
                     f"D{chain.M} ends at {tr.final_jz[-1] / chain.sizes[-1]:+.3f}", fontsize=8,
                     loc="left")
        ax.grid(alpha=0.25, lw=0.3)
    axes[-1, 0].set_xscale("log")
    axes[-1, 0].set_xlabel(r"$\gamma t$")
    axes[0, 0].legend(fontsize=7, loc="lower left", ncol=chain.M)
    if any(tr.feedback is not None for tr in trs):
        axes[0, 0].plot([], [], color="#d62728", lw=2.5, alpha=0.5, label="reservoir closed")
        axes[0, 0].legend(fontsize=7, loc="lower left", ncol=chain.M + 1)
    fig.suptitle(title or f"{chain!r}: conditional states and the quanta each reservoir took",
                 fontsize=10)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_final_histograms(ensemble, path, domain=-1, exact=None, title=None, bins=30):
    """Histograms of a domain's final <J_i^z>/N_i, one per number of quanta, stacked.

    ``exact``: :func:`exact_conditional_final_jz` (marks the exact conditional means).
    """
    plt = _plt()
    recs = _records(ensemble)
    chain = ensemble.chain
    sizes = np.asarray(chain.sizes, dtype=float)
    x = recs.final_jz[:, domain] / sizes[domain]
    dom = domain % chain.M
    ns = np.unique(recs.njumps)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [1.6, 1]})
    edges = np.linspace(-0.5, 0.5, bins + 1)
    cmap = plt.get_cmap("viridis")
    bottom = np.zeros(bins)
    for k, n in enumerate(ns):
        h, _ = np.histogram(x[recs.njumps == n], bins=edges)
        frac = h / len(recs)
        ax.bar(edges[:-1], frac, width=np.diff(edges), bottom=bottom, align="edge",
               color=cmap(k / max(len(ns) - 1, 1)), edgecolor="white", lw=0.3, label=f"n = {n}")
        bottom += frac
    ax.axvline(x.mean(), color="k", ls="--", lw=1, label=f"mean {x.mean():+.4f}")
    ax.set_xlabel(fr"final $\langle J_{{{dom + 1}}}^z\rangle/N_{{{dom + 1}}}$ of the trajectory")
    ax.set_ylabel("fraction of trajectories")
    ax.legend(fontsize=7, ncol=2, title="quanta taken", title_fontsize=7)
    ax.grid(alpha=0.25, lw=0.3)
    cond = conditional_final_jz(ensemble, by="total")
    keys = list(cond)
    mean = np.array([cond[k][1][dom] for k in keys])
    err = np.array([cond[k][2][dom] for k in keys])
    cnt = np.array([cond[k][0] for k in keys])
    bx.errorbar(keys, mean, yerr=np.where(np.isfinite(err), err, 0), fmt="o", color=COLORS[2],
                ms=4, capsize=2, label="trajectories")
    if exact is not None:
        ek = sorted(exact)
        bx.plot(ek, [exact[k][1][dom] for k in ek], "x", color="k", ms=7, label="exact block")
    for k, c in zip(keys, cnt):
        bx.annotate(f"{c}", (k, 0.47), fontsize=6, ha="center", color="gray")
    bx.set_xlabel("quanta taken n")
    bx.set_ylabel(fr"$\langle J_{{{dom + 1}}}^z\rangle/N_{{{dom + 1}}}$ given n")
    bx.set_ylim(-0.52, 0.52)
    bx.grid(alpha=0.25, lw=0.3)
    bx.legend(fontsize=7, loc="lower left")
    bx.set_title("conditional mean (number of runs on top)", fontsize=8)
    fig.suptitle(title or f"{chain!r}, {len(recs)} trajectories: where domain {dom + 1} ends, "
                 f"sorted by the number of quanta", fontsize=10)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_photocurrent(ensemble, path, edges, exact_times=None, exact_rates=None, title=None):
    """Jump rate of each reservoir from the records (points ± s.e.) over the exact rate."""
    plt = _plt()
    centres, rate, err = photocurrent(ensemble, edges)
    chain = ensemble.chain
    C = chain.M - 1
    fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    for c in range(C):
        col = COLORS[(c + 3) % len(COLORS)] if C > 1 else COLORS[3]
        col = ["#2e9e7f", "#6a3d9a", "#d4a017", "#444444"][c % 4]
        if exact_rates is not None:
            ax.plot(exact_times, exact_rates[:, c], color=col, lw=1.5,
                    label=fr"R{c + 1} exact $\gamma_{c + 1}\langle L^\dagger L\rangle$")
        ok = rate[:, c] > 0
        ax.errorbar(centres[ok], rate[ok, c], yerr=err[ok, c], fmt="o", ms=3, color=col,
                    mfc="white", capsize=1.5, lw=0.8, label=f"R{c + 1} from the records")
    ax.set_xscale("log")
    ax.set_yscale("log")
    top = np.nanmax(rate) * 3
    ax.set_ylim(top * 1e-5, top)
    seen = centres[np.any(rate > 0, axis=1)]
    if seen.size:
        ax.set_xlim(edges[0], min(edges[-1], seen.max() * 10))
    ax.set_xlabel(r"$\gamma t$")
    ax.set_ylabel(r"quanta per unit time ($\gamma$)")
    ax.grid(alpha=0.3, which="both", lw=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{chain!r}: photocurrent of each reservoir, {len(_records(ensemble))} "
                 f"trajectories", fontsize=9)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_feedback_comparison(passive, scans, path, domain=-1, title=None):
    """Final <J_domain^z>/N_domain: passive vs a scan of feedback thresholds.

    scans : dict {label: [(threshold, RecordedEnsemble), ...]}
    """
    plt = _plt()
    chain = passive.chain
    dom = domain % chain.M
    N = chain.sizes[dom]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    p_mean = passive.records.final_jz[:, dom].mean() / N
    p_err = passive.records.final_jz[:, dom].std(ddof=1) / np.sqrt(len(passive.records)) / N
    ax.axhspan(p_mean - 2 * p_err, p_mean + 2 * p_err, color="gray", alpha=0.3)
    ax.axhline(p_mean, color="gray", lw=1, label=f"passive {p_mean:+.4f}")
    best = None
    for k, (label, runs) in enumerate(scans.items()):
        th = [r[0] for r in runs]
        m = np.array([r[1].records.final_jz[:, dom].mean() / N for r in runs])
        e = np.array([r[1].records.final_jz[:, dom].std(ddof=1) / np.sqrt(len(r[1].records)) / N
                      for r in runs])
        ax.errorbar(th, m, yerr=2 * e, fmt="o-", ms=4, capsize=2, color=COLORS[k % len(COLORS)],
                    label=label)
        j = int(np.argmax(m))
        if best is None or m[j] > best[0]:
            best = (m[j], runs[j][1], label, th[j])
    ax.set_xlabel("rule threshold")
    ax.set_ylabel(fr"mean final $\langle J_{{{dom + 1}}}^z\rangle/N_{{{dom + 1}}}$ (± 2 s.e.)")
    ax.grid(alpha=0.3, lw=0.3)
    ax.legend(fontsize=7)
    edges = np.linspace(-0.5, 0.5, 2 * N + 2) if N <= 20 else np.linspace(-0.5, 0.5, 41)
    xp = passive.records.final_jz[:, dom] / N
    xb = best[1].records.final_jz[:, dom] / N
    bx.hist(xp, bins=edges, alpha=0.55, color="gray", label="passive", density=True)
    bx.hist(xb, bins=edges, alpha=0.55, color=COLORS[1], density=True,
            label=f"{best[2]} at {best[3]:g}")
    bx.set_xlabel(fr"final $\langle J_{{{dom + 1}}}^z\rangle/N_{{{dom + 1}}}$ of the trajectory")
    bx.set_ylabel("density")
    bx.legend(fontsize=7)
    bx.grid(alpha=0.3, lw=0.3)
    fig.suptitle(title or f"{chain!r}: the demon closes reservoirs on the record "
                 f"(not a master-equation average)", fontsize=10)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- all views at once

def make_views(chain, ntraj=5000, seed=1, initial=None, feedback=None, folder=".", prefix="demon_",
               show=4, tmax=1e3, tmin=1e-3, points=200, bins=30, progress=False):
    """Run an ensemble with full records and draw the demon's views into ``folder``.

    Writes ``{prefix}raster.png`` (``show`` trajectories: conditional <J_i^z>/N_i with a jump
    raster per reservoir), ``{prefix}final.png`` (the last domain's final excitation sorted by
    the number of quanta, with the exact conditional means) and ``{prefix}photocurrent.png``
    (jump rate per reservoir from the records over the exact rate; passive runs only).

    Returns
    -------
    summary : dict (JSON-ready numbers: counting statistics, conditional means against the
              exact blocks, energy balance, photocurrent agreement, file names)
    ensemble : RecordedEnsemble
    """
    import os

    from .grids import time_grid
    from .trajectories import _check_feedback, run_trajectories, trajectory
    fb = _check_feedback(chain, feedback)
    times = time_grid(tmax, points, tmin, "log", include_zero=True)
    ens = run_trajectories(chain, times, ntraj, seed=seed, initial=initial, records="full",
                           feedback=fb, progress=progress)
    recs = ens.records
    sizes = np.asarray(chain.sizes, dtype=float)
    files = {}
    trs = [trajectory(chain, times, seed=seed, index=k, initial=initial, feedback=fb)
           for k in _interesting(recs, show)]
    files["raster"] = plot_raster(trs, os.path.join(folder, f"{prefix}raster.png"))
    stats = counting_statistics(ens)
    q_res, s_res = energy_balance(ens)
    summary = {"chain": chain.to_dict(), "ntraj": ens.ntraj, "seed": seed,
               "initial": ens.meta["initial"],
               "feedback": fb.to_dict() if fb is not None else None,
               "mean_quanta": stats.mean.tolist(), "mean_quanta_err": stats.mean_err.tolist(),
               "fano": stats.fano.tolist(), "P_total": stats.total.tolist(),
               "final_last_domain": float(recs.final_jz[:, -1].mean() / sizes[-1]),
               "final_last_domain_err": float(recs.final_jz[:, -1].std(ddof=1) / sizes[-1]
                                              / np.sqrt(len(recs))),
               "P_last_above_0.25": probability_above(ens, -1, 0.25)[0],
               "energy_balance_max_quanta_residual": int(np.abs(q_res).max()),
               "energy_balance_max_state_residual": float(np.abs(s_res).max())}
    exact = None
    if fb is None:
        exact = exact_conditional_final_jz(chain, initial)
        p_exact = np.zeros(stats.total.size)
        for n, (p, _) in exact.items():
            if n < p_exact.size:
                p_exact[n] = p
        z = np.abs(stats.total - p_exact) / np.maximum(stats.total_err, 1.0 / ntraj)
        summary["P_total_exact"] = p_exact.tolist()
        summary["P_total_max_z"] = float(z.max())
        cond = conditional_final_jz(ens)
        summary["conditional_max_abs_dev"] = float(max(
            np.abs(cond[n][1] - exact[n][1]).max() for n in cond))
        edges = np.geomspace(tmin, tmax, 31)
        rates = exact_jump_rates(chain, times, initial)
        centres, rate, err = photocurrent(ens, edges)
        ref = bin_average(times, rates, edges)
        ok = err > 0
        summary["photocurrent_max_z"] = float((np.abs(rate - ref)[ok] / err[ok]).max())
        files["photocurrent"] = plot_photocurrent(
            ens, os.path.join(folder, f"{prefix}photocurrent.png"), edges, times[1:], rates[1:])
    files["final"] = plot_final_histograms(ens, os.path.join(folder, f"{prefix}final.png"),
                                           exact=exact, bins=bins)
    summary["files"] = files
    return summary, ens


def _interesting(recs, show):
    """Indices of ``show`` trajectories spanning the final excitation of the last domain."""
    if show <= 0:
        return []
    order = np.argsort(recs.final_jz[:, -1], kind="stable")
    picks = order[np.linspace(0, len(order) - 1, show).round().astype(int)][::-1]
    return [int(recs.index[k]) for k in picks]
