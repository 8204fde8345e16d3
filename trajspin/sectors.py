"""The coupled Dicke basis split into excitation sectors.

A basis state is |j_1 m_1> ⊗ ... ⊗ |j_M m_M> with j_i = N_i/2, labelled by the
excitation numbers n_i = j_i + m_i in 0..N_i.  Sector K holds the states with
sum_i n_i = K; its dimension is d_K.  Within a sector the states are ordered by
their global mixed-radix code (domain 1 most significant), so a state's position
is found by binary search.

The jump operator of reservoir c maps sector K to K-1:

    L_c |.., n_c, n_{c+1}, ..> = a(N_c, n_c) |.., n_c - 1, ..> + a(N_{c+1}, n_{c+1}) |.., n_{c+1} - 1, ..>,
    a(N, n) = sqrt(n (N - n + 1))          (J^-|j,m> = sqrt((j+m)(j-m+1)) |j,m-1>).

The no-jump generator of sector K is the real symmetric, positive
semi-definite matrix G_K = sum_c gamma_c L_c^T L_c (shape (d_K, d_K)); with the general
channels of ``trajspin.channels`` (absorption, local reservoirs, schedules) it is
G_K = sum_k r_k O_k^T O_k restricted to sector K, still real symmetric PSD.

Per-domain tables (``SectorBasis.domain_tables``) give J_i^-|s> in sector K-1 and J_i^+|s>
in sector K+1 for every state s of sector K; every channel operator is a sum of them.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from trajspin.errors import InputError, NumericalError
from trajspin.validation import check_memory

__all__ = ["SectorBasis", "sector_basis", "sector_dims", "Sector", "DARK_RTOL", "dark_exact_eigh",
           "check_dark", "dense_generator"]

# An eigenvalue of G_K counts as dark (zero) below DARK_RTOL * (max eigenvalue).
# Rounding in eigh leaves |lambda_dark| ~ 1e-15 * max; the smallest bright
# eigenvalue of these collective generators is of order gamma (see tests).
DARK_RTOL = 1e-12


def dark_exact_eigh(G, ops=()):
    """G = V diag(lam) V^T for a real symmetric PSD generator, dark eigenvalues set to exactly 0.

    An eigenvalue counts as dark below DARK_RTOL * max(lam) (relative, so any rate scale
    gamma works).  eigh runs on one BLAS thread, so the decomposition, and every
    trajectory built on it, is bitwise the same whatever the caller's thread settings.

    With ``ops``, the terms G = sum_k r_k O_k^T O_k (pairs (r_k, sparse O_k)), the dark
    eigenvectors are checked against the rates' structure: a dark v has O_k v = 0 for every
    k with r_k > 0, whatever the rates, so its unit-rate weight b(v) = sum_k ||O_k v||^2 must
    be rounding.  When rates span many decades, a state that decays only through a slow
    channel can fall below DARK_RTOL x max(lam) and would be frozen as dark; then b(v) is of
    order 1 and ``NumericalError`` is raised instead (see :func:`check_dark`).

    Returns
    -------
    lam : ndarray (d,), ascending;  V : ndarray (d, d), C-contiguous
    """
    with threadpool_limits(limits=1, user_api="blas"):
        lam, V = np.linalg.eigh(G)
    top = lam[-1] if lam.size else 0.0
    lam = np.where(lam <= DARK_RTOL * top, 0.0, lam)
    V = np.ascontiguousarray(V)
    if len(ops):
        check_dark(lam, V, ops)
    return lam, V


def dense_generator(d, ops):
    """G = sum_k r_k O_k^T O_k, dense (d, d), over the pairs (r_k, sparse O_k) in order."""
    G = np.zeros((d, d))
    for r, O in ops:
        G += r * (O.T @ O).toarray()
    return G


def check_dark(lam, V, ops):
    """Raise ``NumericalError`` if an eigenvector set dark (lam == 0) decays through a channel.

    b_j = sum_k ||O_k v_j||^2 over the channels with r_k > 0 (unit rates) for each dark v_j
    (columns of V (d, d)); a dark state has b_j = 0 up to rounding (b ~ ||G1|| (eps
    lam_max / gap)^2, below 1e-14 for equal rates at N ~ 600), a bright one at least the
    smallest nonzero eigenvalue of sum_k O_k^T O_k (>= 0.4 in the chains checked, whatever
    N).  The threshold b > 1e-6 lies between.  O(nnz(O_k) n_dark).
    """
    dark = np.flatnonzero(lam == 0.0)
    live = [(r, O) for r, O in ops if r > 0 and O.shape[0] > 0]
    if dark.size == 0 or not live:
        return
    Vd = V[:, dark]
    b = np.zeros(dark.size)
    for _, O in live:
        b += np.sum(np.asarray(O @ Vd) ** 2, axis=0)
    worst = int(np.argmax(b))
    if b[worst] > 1e-6:
        rate = float(Vd[:, worst] @ sum(r * np.asarray(O.T @ (O @ Vd[:, worst])) for r, O in live))
        rates = [r for r, _ in live]
        raise NumericalError(
            f"a state decays at rate {rate:.3g}, below {DARK_RTOL:g} x the fastest "
            f"({lam[-1]:.3g}), so the dense eigen-decomposition cannot tell it from a dark "
            f"state: the channel rates span {max(rates) / min(rates):.3g} (from {min(rates):.3g} "
            f"to {max(rates):.3g}); bring them within a few decades of each other (a channel "
            f"meant to be off: rate 0), or use method='krylov' (paper model)")


def sector_dims(sizes) -> np.ndarray:
    """Dimensions d_K of all excitation sectors K = 0 .. sum(N_i), without building them.

    Coefficients of prod_i (1 + x + ... + x^{N_i}), each factor applied as a
    running-sum difference (O(sum N_i) per domain).  Returns an int64 array of
    length sum(N_i) + 1 (float64 if the total dimension exceeds 2^62).
    """
    total = sum(int(n) for n in sizes)
    # three arrays of sum(N_i) + 1 numbers live at once below
    check_memory(24 * (total + 1), f"the sector dimensions of domains {list(sizes)} "
                 f"({total + 1} sectors)", "use smaller domains")
    exact = float(np.prod([n + 1.0 for n in sizes])) < 2.0**62
    dims = np.ones(1, dtype=np.int64 if exact else np.float64)
    for n in sizes:
        run = np.concatenate([[0], np.cumsum(np.concatenate([dims, np.zeros(n, dims.dtype)]))])
        dims = run[1:] - np.concatenate([np.zeros(n, dims.dtype), run[:dims.size]])
    return dims


def _sector_states(sizes, K):
    """All excitation tuples with sum K, in increasing code order. Shape (d_K, M)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    M = sizes.size
    # remaining capacity of the domains after i
    tail = np.concatenate([np.cumsum(sizes[::-1])[::-1][1:], [0]])
    rows = [np.zeros((1, 0), dtype=np.int64)]
    left = np.array([K], dtype=np.int64)
    for i in range(M):
        new_rows, new_left = [], []
        for r, k in zip(rows[0], left):
            lo, hi = max(0, k - tail[i]), min(sizes[i], k)
            vals = np.arange(lo, hi + 1, dtype=np.int64)
            new_rows.append(np.column_stack([np.tile(r, (vals.size, 1)), vals]))
            new_left.append(k - vals)
        rows = [np.concatenate(new_rows)]
        left = np.concatenate(new_left)
    return rows[0]


def _lower_amp(N, n):
    return np.sqrt(n * (N - n + 1.0))


def _raise_amp(N, n):
    """J^+ |n> = sqrt((n + 1)(N - n)) |n + 1>."""
    return np.sqrt((n + 1.0) * (N - n))


class Sector:
    """One excitation sector K and its jump blocks into sector K-1.

    Attributes
    ----------
    K : int
    states : ndarray, shape (d_K, M), int64
        Excitation numbers n_i of each basis state.
    codes : ndarray, shape (d_K,), int64
        Global mixed-radix index of each state (sorted).
    jump_target : ndarray, shape (M-1, d_K, 2), int64
        Position in sector K-1 of L_c's two terms (lowering domain c, domain c+1); -1 if absent.
    jump_amp : ndarray, shape (M-1, d_K, 2), float64
        The matching amplitudes a(N, n).
    """

    def __init__(self, basis, K):
        self.K = K
        self.states = _sector_states(basis.sizes, K)
        self.dim = self.states.shape[0]
        self.codes = self.states @ basis.strides
        M = len(basis.sizes)
        self.jump_target = -np.ones((M - 1, self.dim, 2), dtype=np.int64)
        self.jump_amp = np.zeros((M - 1, self.dim, 2))
        if K > 0:
            lower = basis.sector(K - 1)
            for c in range(M - 1):
                for side, i in enumerate((c, c + 1)):
                    has = self.states[:, i] > 0
                    tcode = self.codes[has] - basis.strides[i]
                    pos = np.searchsorted(lower.codes, tcode)
                    self.jump_target[c, has, side] = pos
                    self.jump_amp[c, has, side] = _lower_amp(basis.sizes[i], self.states[has, i])

    def jump_matrix(self, c, d_lower):
        """L_c restricted to K -> K-1 as a CSR matrix of shape (d_{K-1}, d_K)."""
        tgt, amp = self.jump_target[c], self.jump_amp[c]
        ok = tgt >= 0
        cols = np.broadcast_to(np.arange(self.dim)[:, None], tgt.shape)
        return sp.csr_matrix((amp[ok], (tgt[ok], cols[ok])), shape=(d_lower, self.dim))


class SectorBasis:
    """Excitation sectors of a chain, built lazily and cached.

    Parameters
    ----------
    chain : Chain
    """

    def __init__(self, chain):
        self.chain = chain
        self.sizes = tuple(chain.sizes)
        radix = np.array([n + 1 for n in self.sizes], dtype=np.int64)
        self.strides = np.concatenate([np.cumprod(radix[::-1])[::-1][1:], [1]]).astype(np.int64)
        self.dims = sector_dims(self.sizes)
        self.K_max = int(sum(self.sizes))
        self._sectors = {}
        self._spectra = {}
        self._domain_tables = {}

    def dim(self, K) -> int:
        """d_K, the dimension of sector K (0 outside 0..K_max)."""
        return int(self.dims[K]) if 0 <= K <= self.K_max else 0

    def sector(self, K) -> Sector:
        if not 0 <= K <= self.K_max:
            raise InputError(f"sector K={K} is outside 0..{self.K_max}")
        if K not in self._sectors:
            # a sector's jump table needs the sector below: build upwards, no recursion
            for k in range(K + 1):
                if k not in self._sectors:
                    self._sectors[k] = Sector(self, k)
        return self._sectors[K]

    def index_of(self, excitations):
        """(K, position) of the basis state with excitation numbers n_i."""
        n = np.asarray(excitations, dtype=np.int64)
        K = int(n.sum())
        sec = self.sector(K)
        pos = int(np.searchsorted(sec.codes, n @ self.strides))
        return K, pos

    def domain_tables(self, K):
        """Per-domain lowering and raising tables of sector K.

        Returns
        -------
        low_tgt, low_amp : int64 / float64 ndarray, shape (d_K, M)
            Position in sector K-1 of J_i^-|s> and its amplitude sqrt(n_i (N_i - n_i + 1))
            (-1 / 0 where n_i = 0).
        up_tgt, up_amp : int64 / float64 ndarray, shape (d_K, M)
            Position in sector K+1 of J_i^+|s> and sqrt((n_i + 1)(N_i - n_i)) (-1 / 0 where
            n_i = N_i).
        """
        cache = self._domain_tables
        if K in cache:
            return cache[K]
        sec = self.sector(K)
        M = len(self.sizes)
        low_tgt = -np.ones((sec.dim, M), dtype=np.int64)
        low_amp = np.zeros((sec.dim, M))
        up_tgt = -np.ones((sec.dim, M), dtype=np.int64)
        up_amp = np.zeros((sec.dim, M))
        lower = self.sector(K - 1) if K > 0 else None
        upper = self.sector(K + 1) if K < self.K_max else None
        for i, N in enumerate(self.sizes):
            n = sec.states[:, i]
            if lower is not None:
                has = n > 0
                low_tgt[has, i] = np.searchsorted(lower.codes, sec.codes[has] - self.strides[i])
                low_amp[has, i] = _lower_amp(N, n[has])
            if upper is not None:
                has = n < N
                up_tgt[has, i] = np.searchsorted(upper.codes, sec.codes[has] + self.strides[i])
                up_amp[has, i] = _raise_amp(N, n[has])
        cache[K] = (low_tgt, low_amp, up_tgt, up_amp)
        return cache[K]

    def channel_matrix(self, channels, k, K):
        """Unscaled operator O_k of channel k from sector K, CSR of shape (d_{K+dir}, d_K).

        Zero-size (0, d_K) when the target sector does not exist.
        """
        direction = int(channels.direction[k])
        target = K + direction
        d = self.dim(K)
        dt = self.dim(target)
        if dt == 0 or d == 0:
            return sp.csr_matrix((dt, d))
        low_tgt, low_amp, up_tgt, up_amp = self.domain_tables(K)
        tgt, amp = (low_tgt, low_amp) if direction < 0 else (up_tgt, up_amp)
        rows, cols, vals = [], [], []
        for i in channels.domains[k]:
            if i < 0:
                continue
            ok = tgt[:, i] >= 0
            rows.append(tgt[ok, i])
            cols.append(np.nonzero(ok)[0])
            vals.append(amp[ok, i])
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(dt, d))

    def channel_terms(self, K, channels, rates):
        """The pairs (rates[k], O_k) of the channels with rates[k] > 0 that leave sector K
        (O_k: ``channel_matrix``; a channel into a sector that does not exist is left out)."""
        terms = [(rates[k], self.channel_matrix(channels, k, K)) for k in range(channels.C)
                 if rates[k] > 0]
        return [(r, O) for r, O in terms if O.shape[0]]

    def channel_generator(self, K, channels, rates) -> np.ndarray:
        """Dense G_K = sum_k rates[k] O_k^T O_k on sector K, shape (d_K, d_K)."""
        return dense_generator(self.dim(K), self.channel_terms(K, channels, rates))

    def channel_spectrum(self, K, channels, piece=0, cache=True):
        """(lam, V) of ``channel_generator(K, channels, channels.rates[piece])``, cached per piece.

        Dark eigenvalues are exactly 0 and checked against the channels (``dark_exact_eigh``).
        """
        key = (K, piece, channels.rates[piece].tobytes())
        if key in self._spectra:
            return self._spectra[key]
        ops = self.channel_terms(K, channels, channels.rates[piece])
        result = dark_exact_eigh(dense_generator(self.dim(K), ops), ops)
        if cache:
            self._spectra[key] = result
        return result

    def jump_matrices(self, K):
        """[L_c restricted to K -> K-1 for c = 0..M-2], CSR, each (d_{K-1}, d_K)."""
        sec = self.sector(K)
        return [sec.jump_matrix(c, self.dim(K - 1)) for c in range(len(self.sizes) - 1)]

    def jump_terms(self, K, mask=None):
        """The pairs (gamma_c, L_c) of sector K (``jump_matrices``), of the reservoirs open
        under ``mask`` (bit c; default all); none for K = 0."""
        if K == 0:
            return []
        return [(g, L) for c, (g, L) in enumerate(zip(self.chain.gamma, self.jump_matrices(K)))
                if mask is None or (mask >> c) & 1]

    def generator(self, K) -> np.ndarray:
        """Dense no-jump generator G_K = sum_c gamma_c L_c^T L_c, shape (d_K, d_K)."""
        return dense_generator(self.dim(K), self.jump_terms(K))

    def spectrum(self, K, cache=True):
        """Eigen-decomposition G_K = V diag(lam) V^T, cached unless ``cache`` is False.

        Returns
        -------
        lam : ndarray, shape (d_K,)  eigenvalues, ascending, dark ones set to exactly 0
        V : ndarray, shape (d_K, d_K)  orthonormal eigenvectors (columns)
        """
        if K in self._spectra:
            return self._spectra[K]
        ops = self.jump_terms(K)
        result = dark_exact_eigh(dense_generator(self.dim(K), ops), ops)
        if cache:
            self._spectra[K] = result
        return result

    def number_diagonals(self, K) -> np.ndarray:
        """Excitation numbers n_i of sector K's states as float, shape (d_K, M)."""
        return self.sector(K).states.astype(float)


@lru_cache(maxsize=8)
def sector_basis(chain) -> SectorBasis:
    """The sector basis of a (hashable) chain, shared by every solver; the 8 latest are kept."""
    return SectorBasis(chain)
