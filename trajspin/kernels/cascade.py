"""Numba kernel of the exact solver: implicit-Euler sweeps over the sector cascade.

Blocks of all sectors K = 0..K0 live in one flat float64 array with a trailing stack axis
of length P (one column per step size): sector K's d_K x d_K x P block (eigenbasis of G_K,
row-major) starts at ``off[K] * P``.  The feed matrices B_c = sqrt(gamma_c) V_K^T L_c V_{K+1}
(d_K x d_{K+1}) start at ``feed_off[K] + c * d_K * d_{K+1}`` in ``feed``.
"""
import numpy as np
from numba import njit

__all__ = ["euler_sweeps", "extrapolated_sweeps"]


# Blocks with d_K d_{K+1} <= SMALL_BLOCK get their feed from plain loops: a BLAS call costs
# more than the arithmetic there (chains of many tiny sectors, e.g. (40, 2)).
SMALL_BLOCK = 64


@njit(cache=True)
def _small_feed(B, up, acc, d, du, P, T):
    """acc[a, b*P + p] += sum_{a', b'} B[a, a'] up[a', b'*P + p] B[b, b'] (plain loops; T: work >= (du, P))."""
    for a in range(d):
        for b2 in range(du):
            for p in range(P):
                T[b2, p] = 0.0
        for a2 in range(du):
            w = B[a, a2]
            if w == 0.0:
                continue
            for b2 in range(du):
                for p in range(P):
                    T[b2, p] += w * up[a2, b2 * P + p]
        for b in range(d):
            for b2 in range(du):
                w = B[b, b2]
                if w == 0.0:
                    continue
                for p in range(P):
                    acc[a, b * P + p] += w * T[b2, p]


@njit(cache=True)
def euler_sweeps(Z, tau, K0, dims, off, halfrate, feed, feed_off, C, flush):
    """X_p = (I - tau_p A)^{-1} Z_p for all p at once, one top-down sweep over sectors.

    Z : float64[total * P]   right-hand sides, layout (sector block (d, d, P)) per K
    tau : float64[P]         step sizes
    halfrate : float64[total]   (lam_a + lam_b)/2 per block entry
    Returns X with the layout of Z; entries below ``flush`` in magnitude are set to 0.

    The feed sum_c B_c X_up B_c^T of all P columns is two GEMMs per channel:
    (B X_up)[a, b', p] then B applied to its (b', a, p) transpose.
    """
    P = tau.size
    X = np.empty_like(Z)
    nmax = 0
    dmax = 0
    for K in range(K0 + 1):
        nmax = max(nmax, dims[K] * dims[K] * P)
        dmax = max(dmax, dims[K])
    R = np.empty(nmax)                       # work buffers, reused by every sector
    accbuf = np.empty(nmax)
    T = np.empty((dmax, P))
    for K in range(K0, -1, -1):
        d = dims[K]
        o = off[K] * P
        n = d * d * P
        for q in range(n):
            R[q] = Z[o + q]
        if K < K0:
            du = dims[K + 1]
            ou = off[K + 1] * P
            up = X[ou:ou + du * du * P].reshape((du, du * P))
            acc = accbuf[:n].reshape((d, d * P))
            for q in range(n):
                accbuf[q] = 0.0
            for c in range(C):
                f = feed_off[K] + c * d * du
                B = feed[f:f + d * du].reshape((d, du))
                if d * du <= SMALL_BLOCK:
                    _small_feed(B, up, acc, d, du, P, T)
                    continue
                Tg = np.dot(B, up).reshape((d, du, P))                 # [a, b', p]
                Tt = np.empty((du, d, P))
                for a in range(d):
                    for b in range(du):
                        for p in range(P):
                            Tt[b, a, p] = Tg[a, b, p]
                acc += np.dot(B, Tt.reshape((du, d * P)))             # [c, a, p]
            for q in range(d * d):
                for p in range(P):
                    R[q * P + p] += tau[p] * accbuf[q * P + p]
        for q in range(d * d):
            hr = halfrate[off[K] + q]
            for p in range(P):
                v = R[q * P + p] / (1.0 + tau[p] * hr)
                X[o + q * P + p] = v if abs(v) >= flush else 0.0
    return X


@njit(cache=True)
def extrapolated_sweeps(Y, h, max_order, tol, K0, dims, off, halfrate, feed, feed_off, C, flush):
    """One extrapolated implicit-Euler step of length h, entirely in compiled code.

    Row j of the tableau starts from T_{j,1} = (I - h/j A)^{-j} Y (``euler_sweeps`` with P = 1)
    and is completed by Aitken-Neville, T_{j,l+1} = T_{j,l} + (T_{j,l} - T_{j-1,l}) / (j/(j-l) - 1).
    The step stops at the first j >= 2 with max |T_{j,j} - T_{j,j-1}| <= tol.  Compiled as a
    whole: no Python overhead per sweep (which dominated chains of many tiny sectors such as
    (40, 2)).

    Y : float64[total]  flat blocks
    Returns
    -------
    Y_new : float64[total] (Y itself when not converged), err : float, order : int, ok : bool
    """
    n = Y.size
    prev = np.empty((max_order, n))
    row = np.empty((max_order, n))
    tau = np.empty(1)
    err = np.inf
    for j in range(1, max_order + 1):
        tau[0] = h / j
        x = Y.copy()
        for _ in range(j):
            x = euler_sweeps(x, tau, K0, dims, off, halfrate, feed, feed_off, C, flush)
        row[0, :] = x
        for l in range(1, j):
            den = j / (j - l) - 1.0
            for i in range(n):
                row[l, i] = row[l - 1, i] + (row[l - 1, i] - prev[l - 1, i]) / den
        if j >= 2:
            err = 0.0
            for i in range(n):
                e = abs(row[j - 1, i] - row[j - 2, i])
                if e > err:
                    err = e
            if err <= tol:
                return row[j - 1].copy(), err, j, True
        for l in range(j):
            for i in range(n):
                prev[l, i] = row[l, i]
    return Y, err, max_order, False
