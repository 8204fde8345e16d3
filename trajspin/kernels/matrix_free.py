"""Matrix-free sector tables of the paper model for the Lanczos path (plain arrays in and out).

Sector K of a chain with domain sizes N_1..N_M holds the excitation tuples (n_1..n_M) with
sum n_i = K, in lexicographic order (domain 1 most significant: the order of
``trajspin.sectors``).  A tuple's position is its *rank*, computed from the counting table

    cum[i, k + 1] = #{(n_i, .., n_M) : sum = k' <= k}        shape (M + 1, K_tot + 2)

in O(M), so no search and no table of the sector below is needed.

No-jump generator of the paper model in sector K (T = 0), stored matrix-free:

    G_K = sum_c gamma_c L_c^T L_c,   L_c = J_c^- + J_{c+1}^-,
    <n|G_K|n>  = sum_c gamma_c [A(N_c, n_c) + A(N_{c+1}, n_{c+1})],   A(N, n) = n (N - n + 1),
    <n + e_c - e_{c+1}|G_K|n> = gamma_c sqrt(n_{c+1}(N_{c+1} - n_{c+1} + 1)) sqrt((n_c + 1)(N_c - n_c)),

i.e. a diagonal (d_K,) plus one "hop" per reservoir and state (an excitation moving from
domain c+1 to c, and its transpose): ``hop_tgt``, ``hop_amp`` of shape (d_K, M-1).
A product G_K x costs O(d_K M) and the sector O(d_K M) memory.

Used by the Lanczos sampler (``lanczos``) and the Krylov tables of
``trajspin.trajectories.lanczos``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from trajspin.kernels.layout import L_CHAN, L_COH, L_F, L_JZ2, L_NBINS, L_NDIST, L_RES
from trajspin.kernels.linalg import FAST

__all__ = ["count_table", "rank", "build_sector", "fill_sector", "first_tuple", "next_tuple",
           "sector_jz", "sector_extra", "apply_generator", "lower"]


@njit(cache=True)
def count_table(sizes, Kmax):
    """cum[i, k + 1] = number of tuples (n_i..n_{M-1}), 0 <= n_l <= N_l, with sum <= k.

    Shape (M + 1, Kmax + 2), int64; cum[i, 0] = 0.  Row M is the empty tuple (sum 0).
    O(M Kmax): cnt[i, k] = sum_{v=0}^{min(N_i, k)} cnt[i+1, k-v] is a difference of the
    running sums of row i + 1, cum[i+1, k+1] - cum[i+1, max(k-N_i, 0)].  The caller makes
    sure the counts fit in int64 (``krylov.KrylovSectors``).
    """
    M = sizes.size
    cum = np.zeros((M + 1, Kmax + 2), dtype=np.int64)
    cum[M, 1:] = 1                       # the empty tuple: one state of sum 0
    for i in range(M - 1, -1, -1):
        for k in range(Kmax + 1):
            lo = k - sizes[i]
            cnt = cum[i + 1, k + 1] - (cum[i + 1, lo] if lo > 0 else 0)
            cum[i, k + 1] = cum[i, k] + cnt
    return cum


@njit(cache=True)
def rank(n, K, cum):
    """Position of the tuple n (sum K) in its sector: #lexicographically smaller tuples, sum K."""
    r = 0
    rem = K
    for i in range(n.size):
        # tuples with a smaller value v < n_i here: suffix (i+1..) sums to rem - v
        hi = rem + 1                  # cum index of rem
        lo = rem - n[i] + 1           # cum index of rem - n_i
        r += cum[i + 1, hi] - cum[i + 1, lo]
        rem -= n[i]
    return r


@njit(cache=True)
def build_sector(sizes, gamma, K, cum):
    """States and matrix-free generator of sector K (fresh arrays; see ``fill_sector``).

    Returns
    -------
    nexc : int64 (d_K, M)       excitation numbers, lexicographic (code) order
    diag : float64 (d_K,)       diagonal of G_K
    hop_tgt : int32 (d_K, M-1)  position of n + e_c - e_{c+1} (-1: impossible)
    hop_amp : float64 (d_K, M-1) gamma_c times its matrix element
    """
    M = sizes.size
    d = cum[0, K + 1] - cum[0, K]
    nexc = np.zeros((d, M), dtype=np.int64)
    diag = np.zeros(d)
    hop_tgt = -np.ones((d, M - 1), dtype=np.int32)
    hop_amp = np.zeros((d, M - 1))
    fill_sector(sizes, gamma, K, cum, nexc, diag, hop_tgt, hop_amp)
    return nexc, diag, hop_tgt, hop_amp


@njit(cache=True)
def fill_sector(sizes, gamma, K, cum, nexc, diag, hop_tgt, hop_amp):
    """Write sector K's tables into the first d_K rows of the buffers; returns d_K.

    Buffers as returned by ``build_sector`` with at least d_K rows: nexc int64 (., M),
    diag float64 (.,), hop_tgt int32 (., M-1), hop_amp float64 (., M-1).  O(d_K M^2).
    """
    M = sizes.size
    C = M - 1
    d = cum[0, K + 1] - cum[0, K]
    n = np.zeros(M, dtype=np.int64)
    first_tuple(n, sizes, K)
    for s in range(d):
        for i in range(M):
            nexc[s, i] = n[i]
        g = 0.0
        for c in range(C):
            a = n[c] * (sizes[c] - n[c] + 1.0)
            b = n[c + 1] * (sizes[c + 1] - n[c + 1] + 1.0)
            g += gamma[c] * (a + b)
            hop_tgt[s, c] = -1
            hop_amp[s, c] = 0.0
            if n[c + 1] > 0 and n[c] < sizes[c]:
                n[c] += 1
                n[c + 1] -= 1
                hop_tgt[s, c] = rank(n, K, cum)
                n[c] -= 1
                n[c + 1] += 1
                hop_amp[s, c] = gamma[c] * np.sqrt(b * (n[c] + 1.0) * (sizes[c] - n[c]))
        diag[s] = g
        if s < d - 1:
            next_tuple(n, sizes)
    return d


@njit(cache=True)
def first_tuple(n, sizes, K):
    """n = lexicographically smallest tuple of sum K (fill from the last domain)."""
    rem = K
    for i in range(sizes.size - 1, -1, -1):
        n[i] = min(sizes[i], rem)
        rem -= n[i]


@njit(cache=True)
def next_tuple(n, sizes):
    """n = the next tuple of the same sum, lexicographically (n must not be the last)."""
    M = sizes.size
    suf = 0
    i = M - 1
    while True:           # rightmost i < M-1 with room and a non-empty suffix
        suf += n[i]
        i -= 1
        if n[i] < sizes[i] and suf >= 1:
            break
    n[i] += 1
    rem = suf - 1
    for l in range(M - 1, i, -1):
        n[l] = min(sizes[l], rem)
        rem -= n[l]


@njit(cache=True)
def sector_jz(psi, sizes, K, half, out):
    """<J_i^z> of the (unnormalised) vector psi (d_K,) of sector K, without tables: O(d_K M)."""
    M = sizes.size
    n = np.zeros(M, dtype=np.int64)
    first_tuple(n, sizes, K)
    norm = 0.0
    for i in range(M):
        out[i] = 0.0
    for s in range(psi.size):
        p = psi[s] * psi[s]
        norm += p
        for i in range(M):
            out[i] += p * n[i]
        if s < psi.size - 1:
            next_tuple(n, sizes)
    for i in range(M):
        out[i] = out[i] / norm - half[i]


@njit(cache=True)
def sector_extra(psi, d, nexc, hop_tgt, sizes, half, gam, lay, out):
    """The observables beyond <J^z> of the (unnormalised) vector psi[:d] of a sector, into
    out[M:F] (layout ``lay``, ``kernels.layout``), from the sector's tables.  O(d_K M).

    With p_s = psi_s^2 / ||psi||^2 and n(s) the excitations of state s (``nexc`` (d, M)):

        <(J_i^z)^2> = sum_s p_s (n_i(s) - j_i)^2,      P(n_i = n) = sum_{s: n_i(s) = n} p_s,
        <J_c^+ J_{c+1}^-> = sum_s a_c(s) psi_t psi_s / ||psi||^2,   t = hop_tgt[s, c],
        a_c(s) = sqrt(n_{c+1}(N_{c+1} - n_{c+1} + 1)) sqrt((n_c + 1)(N_c - n_c)),
        rate_c = gam_c <L_c^T L_c> = gam_c [sum_s p_s (A(N_c, n_c) + A(N_{c+1}, n_{c+1}))
                 + 2 <J_c^+ J_{c+1}^->],   A(N, n) = n (N - n + 1),

    the channel rates of the paper model (channel c is reservoir c, emission only, so the
    reservoir rates are the same numbers).  ``gam`` (C,): the rates of the open reservoirs
    (0: closed).  ``hop_tgt`` (d, C): ``build_sector``'s (the amplitudes are recomputed, so
    the tables' rates do not matter).
    """
    M = sizes.size
    C = M - 1
    F = lay[L_F]
    for f in range(M, F):
        out[f] = 0.0
    norm = 0.0
    for s in range(d):
        norm += psi[s] * psi[s]
    inv = 1.0 / norm
    coh = np.zeros(C)
    diag = np.zeros(C)
    for s in range(d):
        p = psi[s] * psi[s] * inv
        for i in range(M):
            n = nexc[s, i]
            if lay[L_JZ2] >= 0:
                m = n - half[i]
                out[lay[L_JZ2] + i] += p * m * m
            if lay[L_NDIST] >= 0:
                out[lay[L_NDIST] + i * lay[L_NBINS] + n] += p
        for c in range(C):
            a = nexc[s, c] * (sizes[c] - nexc[s, c] + 1.0)
            b = nexc[s, c + 1] * (sizes[c + 1] - nexc[s, c + 1] + 1.0)
            diag[c] += p * (a + b)
            t = hop_tgt[s, c]
            if t >= 0:
                amp = np.sqrt(b) * np.sqrt((nexc[s, c] + 1.0) * (sizes[c] - nexc[s, c]))
                coh[c] += amp * psi[t] * psi[s] * inv
    for c in range(C):
        if lay[L_COH] >= 0:
            out[lay[L_COH] + c] = coh[c]
        rate = gam[c] * (diag[c] + 2.0 * coh[c])
        if lay[L_CHAN] >= 0:
            out[lay[L_CHAN] + c] = rate
        if lay[L_RES] >= 0:
            out[lay[L_RES] + c] = rate


@njit(cache=True, fastmath=FAST)
def apply_generator(diag, hop_tgt, hop_amp, x, y):
    """y = G_K x (shapes (d_K,)), O(d_K M)."""
    d = diag.size
    C = hop_tgt.shape[1]
    for s in range(d):
        y[s] = diag[s] * x[s]
    for s in range(d):
        xs = x[s]
        acc = 0.0
        for c in range(C):
            t = hop_tgt[s, c]
            if t >= 0:
                a = hop_amp[s, c]
                acc += a * x[t]
                y[t] += a * xs
        y[s] += acc


@njit(cache=True)
def lower(psi, nexc, sizes, K, cum, c, out, dl):
    """out[:dl] = L_c psi (sector K -> K-1, L_c = J_c^- + J_{c+1}^-); returns ||out||^2."""
    M = sizes.size
    for q in range(dl):
        out[q] = 0.0
    n = np.empty(M, dtype=np.int64)
    for s in range(psi.size):
        if psi[s] == 0.0:
            continue
        for i in range(M):
            n[i] = nexc[s, i]
        for i in range(c, c + 2):
            if n[i] > 0:
                amp = np.sqrt(n[i] * (sizes[i] - n[i] + 1.0))
                n[i] -= 1
                out[rank(n, K - 1, cum)] += amp * psi[s]
                n[i] += 1
    nrm = 0.0
    for q in range(dl):
        nrm += out[q] * out[q]
    return nrm
