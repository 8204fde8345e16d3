"""Reduced two-domain states and their logarithmic negativity, from sector blocks.

For a block-diagonal state rho = ⊕_K rho_K on the coupled Dicke basis, the reduced state of
domains a < b is

    rho_ab[(n_a, n_b), (n_a', n_b')] = sum_K sum_{s, s' in K, others(s) = others(s')} rho_K[s, s']

(the excitations of all other domains must agree on both sides).  Its partial transpose on b,
rho^{T_b}[(n_a, n_b), (n_a', n_b')] = rho[(n_a, n_b'), (n_a', n_b)], has trace norm
||rho^{T_b}||_1 = sum |eigenvalues|, and the logarithmic negativity is
E_N = log2 ||rho^{T_b}||_1 (Vidal and Werner 2002; 0 for separable states).
"""
from __future__ import annotations

import numpy as np

__all__ = ["PairReducer", "partial_transpose", "trace_norm_pt", "log_negativity"]


class PairReducer:
    """Index tables that reduce sector blocks of one chain to domains (a, b).

    Parameters
    ----------
    basis : SectorBasis
    a, b : int       the two domains (0-based, a != b)
    K_range : iterable of int   sectors whose blocks will be passed
    """

    def __init__(self, basis, a, b, K_range):
        self.a, self.b = int(a), int(b)
        self.da, self.db = basis.sizes[a] + 1, basis.sizes[b] + 1
        self.groups = {}
        for K in K_range:
            n = basis.sector(K).states
            ab = n[:, a] * self.db + n[:, b]
            others = np.delete(n, [a, b], axis=1)
            if others.shape[1] == 0:
                key = np.zeros(n.shape[0], dtype=np.int64)
            else:
                _, key = np.unique(others, axis=0, return_inverse=True)
                key = key.ravel()
            self.groups[K] = [(np.nonzero(key == g)[0], ab[key == g]) for g in np.unique(key)]

    def reduce(self, blocks):
        """rho_ab of {K: rho_K} (Dicke basis), shape (d_a d_b, d_a d_b), index n_a * d_b + n_b."""
        D = self.da * self.db
        out = np.zeros((D, D))
        for K, rho in blocks.items():
            for idx, ab in self.groups.get(K, ()):
                out[np.ix_(ab, ab)] += rho[np.ix_(idx, idx)]
        return out


def partial_transpose(rho, da, db):
    """rho^{T_b}: transpose of the second factor, rho of shape (da db, da db)."""
    return rho.reshape(da, db, da, db).transpose(0, 3, 2, 1).reshape(da * db, da * db)


def trace_norm_pt(rho, da, db) -> float:
    """||rho^{T_b}||_1 = sum of |eigenvalues| of the (real symmetric) partial transpose."""
    pt = partial_transpose(rho, da, db)
    return float(np.sum(np.abs(np.linalg.eigvalsh(0.5 * (pt + pt.T)))))


def log_negativity(rho, da, db) -> float:
    """E_N = log2 ||rho^{T_b}||_1 of a two-domain state rho (shape (da db, da db))."""
    return float(np.log2(trace_norm_pt(rho, da, db)))
