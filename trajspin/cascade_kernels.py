"""Numba kernel of the exact solver: implicit-Euler sweeps over the sector cascade.

Blocks of all sectors K = 0..K0 live in one flat float64 array with a trailing stack axis
of length P (one column per step size): sector K's d_K x d_K x P block (eigenbasis of G_K,
row-major) starts at ``off[K] * P``.  The feed matrices B_c = sqrt(gamma_c) V_K^T L_c V_{K+1}
(d_K x d_{K+1}) start at ``feed_off[K] + c * d_K * d_{K+1}`` in ``feed``.
"""
import numpy as np
from numba import njit

__all__ = ["euler_sweeps"]


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
    for K in range(K0, -1, -1):
        d = dims[K]
        o = off[K] * P
        n = d * d * P
        R = Z[o:o + n].copy()
        if K < K0:
            du = dims[K + 1]
            ou = off[K + 1] * P
            up = X[ou:ou + du * du * P].reshape((du, du * P))
            acc = np.zeros((d, d * P))
            for c in range(C):
                f = feed_off[K] + c * d * du
                B = feed[f:f + d * du].reshape((d, du))
                T = np.dot(B, up).reshape((d, du, P))                  # [a, b', p]
                Tt = np.empty((du, d, P))
                for a in range(d):
                    for b in range(du):
                        for p in range(P):
                            Tt[b, a, p] = T[a, b, p]
                acc += np.dot(B, Tt.reshape((du, d * P)))             # [c, a, p]
            accf = acc.ravel()
            for q in range(d * d):
                for p in range(P):
                    R[q * P + p] += tau[p] * accf[q * P + p]
        for q in range(d * d):
            hr = halfrate[off[K] + q]
            for p in range(P):
                v = R[q * P + p] / (1.0 + tau[p] * hr)
                X[o + q * P + p] = v if abs(v) >= flush else 0.0
    return X
