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

The demon can also act (``trajspin.trajectories.feedback``): rules that close or open reservoirs on the
record run inside the same exact event-driven engine.  Averages over feedback runs are not
given by any master equation.

Records are kept compactly by :class:`JumpRecords`: per-trajectory summaries, and with
``records="full"`` every jump as flat arrays with offsets per trajectory.
"""
from __future__ import annotations

import numpy as np

from trajspin.errors import InputError
from trajspin.results.records import JumpRecords

__all__ = ["as_records", "full_records", "CountingStatistics", "counting_statistics", "first_jump_distribution", "waiting_times",
           "photocurrent", "bin_average", "conditional_final_jz", "probability_above",
           "energy_balance"]

_trapezoid = getattr(np, "trapezoid", None) or np.trapz


def as_records(obj):
    recs = getattr(obj, "records", obj)
    if not isinstance(recs, JumpRecords):
        raise InputError("need jump records: run_trajectories(..., records='summaries' or 'full')")
    return recs


def full_records(obj):
    recs = as_records(obj)
    if not recs.full:
        raise InputError("this needs every jump: run_trajectories(..., records='full')")
    return recs


# ---------------------------------------------------------------------------- counting statistics

class CountingStatistics:
    """Full counting statistics of the quanta the reservoirs took (t -> infinity).

    C = M - 1 shared reservoirs; n_c is the number of quanta reservoir c took in one
    trajectory (dimensionless counts), n = sum_c n_c.

    Parameters
    ----------
    quanta : array_like of int, shape (ntraj, C)
        Quanta taken by each reservoir in each trajectory (``JumpRecords.quanta``).

    Attributes
    ----------
    ntraj : int
        Trajectories counted.
    joint : dict {(n_1, ..., n_C): probability}
        The joint distribution P(n_1, ..., n_C), only the values that occurred.
    joint_array : ndarray, shape (n_max + 1,) * C
        The same, dense (n_max the largest n_c seen).
    total : ndarray, shape (n_max_total + 1,)
        P(n) of the total n = sum_c n_c.
    total_err : ndarray, shape (n_max_total + 1,)
        Its binomial standard error, sqrt(P (1 - P) / (ntraj - 1)).
    mean, mean_err : ndarray, shape (C,)
        Mean quanta <n_c> per reservoir and its standard error.
    covariance : ndarray, shape (C, C)
        Covariance of the n_c (unbiased).
    fano : ndarray, shape (C,)
        Fano factor Var(n_c) / <n_c> of each reservoir (NaN where <n_c> = 0).
    cumulants_total : ndarray, shape (4,)
        First four cumulants of n: mean, variance, third and fourth cumulant.
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
    """Joint distribution and moments of the quanta taken by each reservoir (t -> infinity).

    At zero temperature the total n fixes the excitation left, K_final = K_0 - n, so P(n)
    equals the exact steady-state sector weight Tr rho_{K_0 - n}(inf)
    (:func:`exact_conditional_final_jz`).

    Parameters
    ----------
    records : RecordedEnsemble or JumpRecords
        An ensemble run with ``records="summaries"`` or ``"full"`` (or its ``records``).

    Returns
    -------
    CountingStatistics
        ``joint``, ``total`` (P(n)), ``mean`` (C,), ``covariance`` (C, C), ``fano`` (C,),
        ``cumulants_total`` (4,), with C = M - 1 reservoirs.
    """
    return CountingStatistics(as_records(records).quanta)


# ---------------------------------------------------------------------------- timing

def first_jump_distribution(records, bins=40):
    """Density of the first jump time.

    Parameters
    ----------
    records : RecordedEnsemble or JumpRecords
        An ensemble run with ``records="summaries"`` or ``"full"`` (or its ``records``).
    bins : int or array_like
        Number of bins (log-spaced over the sampled range; default 40), or the bin edges,
        units of 1/gamma.

    Returns
    -------
    edges : ndarray, shape (B + 1,)
        Bin edges, units of 1/gamma.
    density : ndarray, shape (B,)
        Probability density per unit time (units of gamma), normalised over all
        trajectories, so it integrates to the fraction that ever jumps.
    never : float
        Fraction of trajectories that never jump.
    """
    recs = as_records(records)
    t = recs.first_jump_time
    fin = t[np.isfinite(t)]
    if np.ndim(bins) == 0:
        lo, hi = (fin.min(), fin.max()) if fin.size else (1e-3, 1.0)
        bins = np.geomspace(max(lo, 1e-12), hi * (1 + 1e-12), int(bins) + 1)
    counts, edges = np.histogram(fin, bins=bins)
    return edges, counts / (len(recs) * np.diff(edges)), 1.0 - fin.size / max(len(recs), 1)


def waiting_times(records, reservoir=None):
    """Times between consecutive jumps of each trajectory (the first measured from t = 0).

    Parameters
    ----------
    records : RecordedEnsemble or JumpRecords
        An ensemble run with ``records="full"`` (or its ``records``): every jump is needed.
    reservoir : int, optional
        Keep only the waits that end in a jump of this shared reservoir (0-based, 0 .. M-2);
        None (default): every jump.

    Returns
    -------
    ndarray, shape (J',)
        The waiting times, units of 1/gamma, trajectory by trajectory in index order (J' the
        number of jumps kept; J = sum of ``njumps`` when ``reservoir`` is None).
    """
    recs = full_records(records)
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

    Parameters
    ----------
    records : RecordedEnsemble or JumpRecords
        An ensemble run with ``records="full"`` (or its ``records``): every jump is needed.
    edges : array_like, shape (B + 1,)
        Increasing bin edges, units of 1/gamma.

    Returns
    -------
    centres : ndarray, shape (B,)
        Geometric centres of the bins (arithmetic if the first edge is 0), units of 1/gamma.
    rate, err : ndarray, shape (B, C)
        Mean rate of each of the C = M - 1 reservoirs and its standard error over
        trajectories, quanta per unit time (units of gamma).
    """
    recs = full_records(records)
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


def bin_average(times, values, edges, points=64):
    """Average of a sampled curve over each bin: (1/(b - a)) integral_a^b values(t) dt.

    The curve is interpolated linearly between its samples and integrated by the trapezoid
    rule on ``points`` points per bin; used to compare :func:`exact_jump_rates` with
    :func:`photocurrent`.

    Parameters
    ----------
    times : array_like, shape (T,)
        Increasing sample times, units of 1/gamma.
    values : ndarray, shape (T, C)
        The curve at those times, C columns (e.g. rates, units of gamma).
    edges : array_like, shape (B + 1,)
        Bin edges, units of 1/gamma, inside [times[0], times[-1]].
    points : int
        Interpolation points per bin.

    Returns
    -------
    ndarray, shape (B, C)
        The average of each column over each bin, in the units of ``values``.
    """
    out = np.empty((len(edges) - 1, values.shape[1]))
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        s = np.linspace(a, b, points)
        for c in range(values.shape[1]):
            out[k, c] = _trapezoid(np.interp(s, times, values[:, c]), s) / (b - a)
    return out


# ---------------------------------------------------------------------------- conditional final states

def conditional_final_jz(records, by="total"):
    """<J_i^z>(inf)/N_i conditioned on the record.

    Given n quanta it estimates the exact steady-state block rho_{K_0 - n}(inf), normalised
    (:func:`exact_conditional_final_jz`).

    Parameters
    ----------
    records : RecordedEnsemble
        An ensemble run with ``records="summaries"`` or ``"full"`` (the ensemble, not bare
        records: it knows its chain, hence N_i).
    by : {"total", "reservoir"}
        Condition on the total number of quanta n, or on the quanta per reservoir (n_1, ..).

    Returns
    -------
    dict {key: (count, mean, err)}
        Keys n (int) or (n_1, ..., n_C) tuples, sorted; ``count`` trajectories with that
        record, ``mean`` ndarray (M,) of their final <J_i^z>/N_i (dimensionless, in
        [-1/2, 1/2]) and ``err`` (M,) its standard error (inf for a single trajectory).
    """
    recs = as_records(records)
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


def probability_above(records, domain=-1, threshold=0.25):
    """Probability (± standard error) that <J_d^z>(inf)/N_d >= threshold for domain d.

    Parameters
    ----------
    records : RecordedEnsemble
        An ensemble run with ``records="summaries"`` or ``"full"`` (the ensemble, not bare
        records: it knows its chain, hence N_i).
    domain : int
        Index of the domain d (0-based; -1 the last).
    threshold : float
        Threshold on the final <J_d^z>/N_d (dimensionless, in [-1/2, 1/2]).

    Returns
    -------
    p, err : float
        The fraction of trajectories at or above the threshold and its binomial standard
        error sqrt(p (1 - p) / (ntraj - 1)).
    """
    recs = as_records(records)
    sizes = _sizes(recs, records)
    x = recs.final_jz[:, domain] / sizes[domain] >= threshold
    n = len(recs)
    p = float(x.mean()) if n else float("nan")
    return p, float(np.sqrt(p * (1 - p) / max(n - 1, 1)))


def energy_balance(records, initial_excitation=None):
    """Per trajectory: excitation left + quanta taken - initial excitation (0 at T = 0), and
    the excitation of the final conditional state sum_i (<J_i^z> + N_i/2) - excitation left.

    Parameters
    ----------
    records : RecordedEnsemble
        An ensemble run with ``records="summaries"`` or ``"full"`` (the ensemble, not bare
        records: it knows its chain, hence N_i).
    initial_excitation : int, optional
        Initial excitation K_0 (quanta); default the sum of ``meta["initial"]`` (the
        excitation of each domain's initial Dicke state).

    Returns
    -------
    quanta_residual : int64 ndarray, shape (n,)
        Excitation left + quanta taken - K_0, per trajectory (quanta; 0 at zero temperature).
    state_residual : float64 ndarray, shape (n,)
        sum_i (<J_i^z> + N_i/2) of the final conditional state - excitation left (quanta;
        0 up to rounding).
    """
    recs = as_records(records)
    sizes = _sizes(recs, records)
    if initial_excitation is None:
        initial_excitation = int(sum(records.meta["initial"]))
    quanta_residual = recs.excitation_left + recs.njumps - int(initial_excitation)
    state_residual = (recs.final_jz + 0.5 * sizes).sum(axis=1) - recs.excitation_left
    return quanta_residual, state_residual
