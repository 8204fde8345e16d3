"""Numerical steps every trajectory kernel shares (plain arrays in and out).

Between jumps a state with eigen-coefficients a (|psi> = V a, unit norm at the last event
t0) of a no-jump generator G = V diag(lambda) V^T evolves as a_k exp(-lambda_k (t - t0) / 2),
so its no-jump probability is

    p(tau) = sum_k w_k exp(-lambda_k tau),   w_k = a_k^2,

and a uniform threshold r gives the waiting time p(tau) = r (Newton on the convex log p from
tau = 0: monotone convergence).  The dark weight sum_{lambda_k = 0} w_k is the probability of
never jumping again.  The dense sampler (``events``) and the Lanczos sampler (``lanczos``)
both use these helpers, and the one channel pick (``pick_channel``, the one tie rule).

Cost and reproducibility.  The O(d^2) products run along the rows of a row-major V
(``matvec`` for V x, ``matTvec`` for V^T x as a sum of scaled rows), compiled with
reassociation so the inner loops vectorise.  The order of the floating-point additions is
fixed by the compiled code, never by the data, the rank or the order trajectories run in.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["FAST", "matvec", "matTvec", "eigen_state", "dark_weight", "eigen_weights",
           "newton_waiting_time", "waiting_time", "log_no_jump", "pick_channel", "dicke_jz",
           "fill_rows"]

FAST = {"reassoc", "contract", "arcp"}   # vectorised sums; no assumption on inf/NaN


@njit(cache=True, fastmath=FAST)
def matvec(V, off, d, x, out):
    """out[:d] = V x for the row-major d x d block V[off:off + d*d] (rows contiguous, O(d^2)).

    Each row is taken as a slice, so the inner loop has known non-negative indices and
    vectorises whatever ``off`` is (indexing V[off + s*d + k] with an offset read from an
    array kept LLVM from vectorising: 8 us instead of 1.6 us for d = 124).
    """
    for s in range(d):
        row = V[off + s * d: off + (s + 1) * d]
        v = 0.0
        for k in range(row.size):
            v += row[k] * x[k]
        out[s] = v


@njit(cache=True, fastmath=FAST)
def matTvec(V, off, d, x, out):
    """out[:d] = V^T x, row by row (``out += x[q] * V[q, :]``): contiguous, vectorised, O(d^2).

    The order of the additions is fixed by the code (not by the data or the caller), so the
    result is bitwise reproducible; it differs from the column-wise dot products only by
    rounding.
    """
    o = out[:d]
    for k in range(d):
        o[k] = 0.0
    for q in range(d):
        xq = x[q]
        if xq != 0.0:
            row = V[off + q * d: off + (q + 1) * d]
            for k in range(row.size):
                o[k] += row[k] * xq


@njit(cache=True, fastmath=FAST)
def eigen_state(a, lam, V, off, d, dt, buf, psi):
    """psi[:d] = V (a exp(-(lam - lam_min) dt / 2)): the state after dt, up to a positive factor.

    lam_min is the slowest occupied rate (a_k != 0), so nothing underflows for long dt.
    buf : float64 (>= d) scratch.  O(d^2).
    """
    lmin = np.inf
    for k in range(d):
        if a[k] != 0.0 and lam[k] < lmin:
            lmin = lam[k]
    for k in range(d):
        buf[k] = a[k] * np.exp(-0.5 * (lam[k] - lmin) * dt)
    matvec(V, off, d, buf, psi)


@njit(cache=True, inline="always")
def dark_weight(w, lam):
    """sum_{k: lam_k = 0} w_k: the no-jump probability at tau -> infinity."""
    p0 = 0.0
    for k in range(w.size):
        if lam[k] == 0.0:
            p0 += w[k]
    return p0


@njit(cache=True, inline="always")
def eigen_weights(a, lam, d, w):
    """w[:d] = a^2; returns (dark weight, bright) with bright: some w_k > 0 has lam_k > 0."""
    bright = False
    for k in range(d):
        w[k] = a[k] * a[k]
        if lam[k] != 0.0 and w[k] > 0.0:
            bright = True
    return dark_weight(w[:d], lam[:d]), bright


@njit(cache=True)
def newton_waiting_time(w, lam, log_r, max_iter):
    """Newton on the convex log p(tau) = log sum_k w_k exp(-lam_k tau) from tau = 0 to log_r.

    w, lam : float64 (n,).  Converges monotonically from the left; stops after ``max_iter``
    iterations or when the step is below 1e-15 tau.  Requires log_r above the log of the
    dark weight (see ``waiting_time``).
    """
    tau = 0.0
    for _ in range(max_iter):
        p = 0.0
        dp = 0.0
        if tau == 0.0:                      # first step: exp(0) = 1, no exponentials
            for k in range(w.size):
                if w[k] > 0.0:
                    p += w[k]
                    dp += lam[k] * w[k]
        else:
            for k in range(w.size):
                if w[k] > 0.0:
                    e = w[k] * np.exp(-lam[k] * tau)
                    p += e
                    dp += lam[k] * e
        f = np.log(p) - log_r
        if f <= 0.0 or dp <= 0.0:
            return tau
        step = f * p / dp
        tau += step
        if step <= 1e-15 * tau:
            return tau
    return tau


@njit(cache=True, inline="always")
def waiting_time(w, lam, log_r, max_iter):
    """tau >= 0 with sum_k w_k exp(-lam_k tau) = exp(log_r); inf when the dark weight alone
    stays at or above r (no jump ever).  w, lam : float64 (n,)."""
    p0 = dark_weight(w, lam)
    if p0 > 0.0 and np.log(p0) >= log_r:
        return np.inf
    return newton_waiting_time(w, lam, log_r, max_iter)


@njit(cache=True, fastmath=FAST)
def log_no_jump(w, lam, d, tau):
    """log sum_k w_k exp(-lam_k tau) over k < d (shifted by the slowest occupied rate: no
    underflow)."""
    lmin = np.inf
    for k in range(d):
        if w[k] > 0.0 and lam[k] < lmin:
            lmin = lam[k]
    if lmin == np.inf:
        return -np.inf
    p = 0.0
    for k in range(d):
        if w[k] > 0.0:
            p += w[k] * np.exp(-(lam[k] - lmin) * tau)
    return np.log(p) - lmin * tau


@njit(cache=True, inline="always")
def pick_channel(prob, u):
    """The channel of a jump: the smallest c with prob[0] + .. + prob[c] >= u, never a closed one.

    prob : float64 (C,)   gamma_c ||L_c psi||^2 (0 for closed channels); u in (0, total]
    A tie u == prob[0] + .. + prob[c] goes to c.  When u rounds to the total, trailing closed
    channels (prob 0) are skipped back to the last open one.  The one rule of every choice a
    sampler makes: channels, and the component and sector of a mixed initial state.
    """
    C = prob.size
    c = 0
    acc = prob[0]
    while c < C - 1 and u > acc:
        c += 1
        acc += prob[c]
    while prob[c] == 0.0 and c > 0:
        c -= 1
    return c


@njit(cache=True)
def dicke_jz(psi, d, nexc, src, half, out):
    """<J_i^z> of the (unnormalised) Dicke-basis vector psi[:d] into out (M,).

    <J_i^z> = sum_s psi_s^2 n_i(s) / sum_s psi_s^2 - half_i, with n_i(s) = nexc[src + s, i]
    (nexc (., M): excitation numbers of the sector whose states start at row src) and
    half_i = j_i.  O(d M).
    """
    M = out.size
    for i in range(M):
        out[i] = 0.0
    norm = 0.0
    for s in range(d):
        p = psi[s] * psi[s]
        norm += p
        for i in range(M):
            out[i] += p * nexc[src + s, i]
    for i in range(M):
        out[i] = out[i] / norm - half[i]


@njit(cache=True, inline="always")
def fill_rows(out, j, row):
    """out[j:, :] = row (the state no longer changes): the rest of the output grid; returns T."""
    T = out.shape[0]
    while j < T:
        for f in range(row.size):
            out[j, f] = row[f]
        j += 1
    return j
