"""The zero-temperature sector cascade: time stepping and the t -> infinity state.

With lowering channels only (every O_k lowers the excitation K by one), a state that starts
block diagonal in K stays so, rho = ⊕_K rho_K, and the blocks form a cascade

    d rho_K / dt = -1/2 {G_K, rho_K} + sum_k r_k O_k rho_{K+1} O_k^T      (K = K_top .. 0)   (1)

with G_K = sum_k r_k O_k^T O_k (the Hamiltonian omega0 sum_i J_i^z is a constant on each
sector and drops out).  The paper model has the M - 1 channels O_c = L_c = J_c^- + J_{c+1}^-
at r_c = gamma_c; local reservoirs and schedule pieces only add channels and change rates.

Time stepping.  In the eigenbasis of each G_K = V_K diag(lam_K) V_K^T the generator is
A = -D + N with D[a, b] = (lam_a + lam_b)/2 diagonal and N the sector-lowering feed
B_k X B_k^T, B_k = sqrt(r_k) V_K^T O_k V_{K+1}.  An implicit-Euler step (I - tau A)^{-1} is
therefore one top-down sweep over sectors (``trajspin.kernels.cascade.euler_sweeps``), and it
is the resolvent of a Lindblad generator: an exactly completely-positive, trace-preserving
map.  Steps are extrapolated (Aitken-Neville over the harmonic sequence, order chosen per
step up to MAX_ORDER) with adaptive step size at local error TOL, landing exactly on every
output time.  Storage is sum_K d_K^2 numbers, never (prod(N_i + 1))^2.

Why not a rational (CRAM/Pade) exponential per output interval: the cascade is deep and
highly non-normal (feed >> eigenvalue gaps along superradiant ladders), and a rational
approximation that is accurate to 1e-16 on the negative real axis was measured wrong by O(1)
for (N1, N2) = (1000, 10) at gamma*h = 1e-3; the extrapolated, error-controlled sweeps have
no such failure.

Stationary state (``stationary_blocks``).  With Z_K = rho_K(0) + sum_k r_k O_k X_{K+1} O_k^T
(Dicke basis; X_{K+1} the time integral of the sector above), the eigenbasis element (a, b) of
Z~_K = V_K^T Z_K V_K with mu = (lam_a + lam_b)/2 > 0 integrates to X~_K[a, b] = Z~_K[a, b] / mu
and vanishes at t -> infinity, while the dark-dark part (mu = 0) is what stays:
rho~_K(inf) = Z~_K on the dark subspace.  Only bright-bright elements feed the sector below,
because every O_k annihilates dark states.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from trajspin.kernels.cascade import extrapolated_sweeps

__all__ = ["Cascade", "advance", "stationary_blocks", "to_eigenbasis",
           "MAX_ORDER", "TARGET_ORDER", "TOL"]

# Block entries below FLUSH are set to zero after each step: they are 1e-120 below the
# 1e-8 accuracy goal, and left alone they decay into subnormal numbers that slow the
# matrix products by two orders of magnitude.
FLUSH = 1e-128
MAX_ORDER = 8             # highest extrapolation order
TARGET_ORDER = 5          # the order the step-size control aims at
TOL = 1e-12               # local error per step (max abs block entry)


def lowering_channels(channels, piece):
    """Indices k of the lowering channels with r_k > 0 in schedule piece ``piece``."""
    rates = channels.rates[piece]
    return [k for k in range(channels.C) if channels.direction[k] < 0 and rates[k] > 0]


def to_eigenbasis(V, block):
    """rho~ = V^T rho V of a Dicke-basis block (d, d), or v v^T, v = V^T psi, of a pure block.

    Parameters
    ----------
    V : ndarray (d, d)        eigenvectors of G_K (columns)
    block : ndarray (d, d) or (d,)
        rho_K, or psi_K for rho_K = psi_K psi_K^T (O(d^2) instead of O(d^3)).
    """
    if block.ndim == 1:
        v = V.T @ block
        return np.outer(v, v)
    return V.T @ block @ V


class Cascade:
    """Sector data of one schedule piece in the eigenbasis of G_K, K = 0..K_top (eq. 1).

    Parameters
    ----------
    basis : SectorBasis       sectors of the (effective) chain
    channels : Channels       its jump channels; only lowering ones with r_k > 0 are used
    piece : int               schedule piece whose rates r_k apply
    K_top : int               highest sector held

    Attributes
    ----------
    lam, V : lists over K of ndarray (d_K,), (d_K, d_K)   spectra of G_K (dark lam exactly 0)
    low : list of int         the channels that feed, in channel order
    dims : int64 ndarray (K_top + 1,), off : int64 ndarray (K_top + 2,)
        d_K and the start of each d_K x d_K block in the flat state Y (row-major, eigenbasis).
    """

    def __init__(self, basis, channels, piece, K_top):
        self.basis = basis
        self.channels = channels
        self.rates = channels.rates[piece]
        self.low = lowering_channels(channels, piece)
        self.K_top = K_top
        self.lam, self.V = [], []
        for K in range(K_top + 1):
            lam, V = basis.channel_spectrum(K, channels, piece)
            self.lam.append(lam)
            self.V.append(V)
        feed = [[np.ascontiguousarray(np.sqrt(self.rates[k]) * (
            self.V[K].T @ (basis.channel_matrix(channels, k, K + 1) @ self.V[K + 1])))
            for k in self.low] for K in range(K_top)] + [[]]
        # flat layout for trajspin.kernels.cascade
        self.dims = np.array([lam.size for lam in self.lam], dtype=np.int64)
        self.off = np.concatenate([[0], np.cumsum(self.dims ** 2)]).astype(np.int64)
        self.halfrate_flat = np.concatenate([0.5 * (lam[:, None] + lam[None, :]).ravel()
                                             for lam in self.lam])
        self.feed_flat = np.concatenate([B.ravel() for fs in feed for B in fs] or [np.zeros(0)])
        sizes = [sum(B.size for B in fs) for fs in feed]
        self.feed_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._functionals = self._diagonal = self._first = None

    def step(self, Y, h, max_order=MAX_ORDER, tol=TOL):
        """Extrapolated implicit Euler over one step h, in one numba call.

        Row j of the tableau starts from T_{j,1} = (I - h/j A)^{-j} Y (harmonic sequence; each
        factor one ``euler_sweeps`` sweep) and is completed by Aitken-Neville,
        T_{j,l+1} = T_{j,l} + (T_{j,l} - T_{j-1,l}) / (j/(j-l) - 1); the step stops at the
        first j >= 2 with max |T_{j,j} - T_{j,j-1}| <= tol.

        Parameters
        ----------
        Y : ndarray (off[-1],)    flat blocks (eigenbasis)

        Returns
        -------
        Y_new : ndarray (off[-1],) or None if not converged by ``max_order``
        err : float, order : int
        """
        Y_new, err, order, ok = extrapolated_sweeps(
            np.ascontiguousarray(Y), float(h), max_order, tol, self.K_top, self.dims, self.off,
            self.halfrate_flat, self.feed_flat, self.feed_off, len(self.low), FLUSH)
        return (Y_new if ok else None), err, order

    def to_eigen(self, blocks):
        """Flat state Y of Dicke-basis blocks {K: rho_K (d_K, d_K) or pure psi_K (d_K,)}."""
        Y = np.zeros(self.off[-1])
        for K, block in blocks.items():
            Y[self.off[K]:self.off[K + 1]] = to_eigenbasis(self.V[K], block).ravel()
        return Y

    def to_dicke(self, Y):
        """{K: rho_K} (d_K, d_K) in the Dicke basis from the flat state Y."""
        out = {}
        for K, d in enumerate(self.dims):
            V = self.V[K]
            out[K] = V @ Y[self.off[K]:self.off[K + 1]].reshape(d, d) @ V.T
        return out

    def expectations(self, Y):
        """(<n_i>, Tr rho_K, <O_k^T O_k> r_k) of the flat state Y without leaving the eigenbasis.

        <n_i> = sum_K <V_K^T diag(n_i) V_K, rho~_K> and r_k <O_k^T O_k> likewise: one product
        with the stacked functionals, shape (M + len(low), off[-1]), built on first use.

        Returns
        -------
        n_mean : ndarray (M,)   mean excitation of each domain (<J_i^z> = n_mean - N_i / 2)
        pops : ndarray (K_top + 1,)   sector populations
        rates : ndarray (len(low),)   jump rate of each feeding channel
        """
        if self._functionals is None:
            self._functionals = self._build_functionals()
            self._diagonal = np.concatenate([self.off[K] + np.arange(d) * (d + 1)
                                             for K, d in enumerate(self.dims)])
            self._first = np.concatenate([[0], np.cumsum(self.dims)[:-1]])
        out = self._functionals @ Y
        pops = np.add.reduceat(Y[self._diagonal], self._first)
        M = len(self.basis.sizes)
        return out[:M], pops, out[M:]

    def _build_functionals(self):
        """Rows [V^T diag(n_i) V; r_k V^T O_k^T O_k V] of every sector, flattened side by side."""
        cols = []
        for K, V in enumerate(self.V):
            n = self.basis.number_diagonals(K)
            weights = np.einsum("si,sa,sb->iab", n, V, V)
            d = V.shape[0]
            rows = [weights.reshape(-1, d * d)]
            for k in self.low:
                O = self.basis.channel_matrix(self.channels, k, K)
                rows.append((self.rates[k] * V.T @ (O.T @ (O @ V))).reshape(1, d * d))
            cols.append(np.vstack(rows))
        return np.ascontiguousarray(np.hstack(cols))


def advance(cas, Y, now, tk, h, stats, tol=TOL):
    """March the cascade state Y from ``now`` to ``tk`` with adaptive extrapolated steps.

    The first step is h = min(tk, 0.01 / (1 + max lam)); after an accepted step of order q
    the next is 2 h (q < TARGET_ORDER), 0.7 h (q > TARGET_ORDER) or
    h min(4, max(0.5, 0.9 (tol/err)^(1/q))); a rejected step retries at 0.3 h.

    Parameters
    ----------
    cas : Cascade
    Y : ndarray (off[-1],)    state at ``now``
    h : float or None         step size to try first (None: start afresh)
    stats : dict              counters "steps", "rejected", "sweeps", updated

    Returns
    -------
    Y : ndarray (off[-1],)    state at ``tk``;  h : float, the step size to try next
    """
    while now < tk:
        if h is None:
            h = min(tk, 0.01 / (1.0 + max(lam[-1] for lam in cas.lam if lam.size)))
        step = min(h, tk - now)
        Y_new, err, order = cas.step(Y, step, MAX_ORDER, tol)
        if Y_new is None:
            stats["rejected"] += 1
            h = 0.3 * step
            if h <= 1e-14 * max(tk, 1e-300):
                raise RuntimeError(f"exact solver: step size underflow at t = {now:g} "
                                   f"(extrapolation did not converge); please report")
            continue
        Y, now = Y_new, (tk if step == tk - now else now + step)
        stats["steps"] += 1
        stats["sweeps"] += order * (order + 1) // 2
        if order < TARGET_ORDER:
            factor = 2.0
        elif order == TARGET_ORDER:
            factor = min(4.0, max(0.5, 0.9 * (tol / max(err, 1e-300)) ** (1.0 / order)))
        else:
            factor = 0.7
        if step == h or factor < 1:
            h = step * factor
    return Y, h


def stationary_blocks(basis, channels, piece, blocks):
    """t -> infinity blocks of the cascade (1), one sector at a time from the top.

    Sector K's no-jump integral solves the Lyapunov equation G_K X_K + X_K G_K = 2 Z_K with
    the Dicke-basis source

        Z_K = rho_K(0) + sum_k r_k O_k X_{K+1} O_k^T,                                   (2)

    X_K = V_b [(V^T Z_K V)_bb / mu] V_b^T on the bright eigenvectors V_b of G_K (mu = (lam_a +
    lam_b) / 2), and rho_K(inf) = V_d (V^T Z_K V)_dd V_d^T on the dark ones.  The feed (2) is
    sparse (O_k has at most two entries per column), so a sector costs one eigh and four
    d_K x d_K products.  The eigh of sector K - 1 does not depend on the cascade: it runs on
    a second thread while sector K is fed, both on one BLAS thread each, so the numbers do
    not depend on the thread count or the timing.  Memory: a few d_K^2 at a time (nothing
    cached).

    Parameters
    ----------
    basis, channels, piece : as for ``Cascade``
    blocks : dict {K: ndarray (d_K, d_K) or (d_K,)}
        Initial Dicke-basis blocks (or pure psi_K), any sectors.

    Yields
    ------
    K : int, from max(blocks) down to 0
    rho : ndarray (d_K, d_K) or None
        rho_K(inf) in the Dicke basis, None when G_K has no dark eigenvector (nothing stays in
        sector K).
    """
    rates = channels.rates[piece]
    low = lowering_channels(channels, piece)
    top = max(blocks)

    def spectrum(K):
        return basis.channel_spectrum(K, channels, piece, cache=False)

    X_up = None                               # X_{K+1}, Dicke basis
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(spectrum, top)
        for K in range(top, -1, -1):
            lam, V = ahead.result()
            if K > 0:
                ahead = pool.submit(spectrum, K - 1)
            Z = _dicke_block(blocks.get(K), lam.size)
            if X_up is not None:
                for k in low:
                    O = basis.channel_matrix(channels, k, K + 1)
                    Z += rates[k] * (O @ (O @ X_up).T)          # O X O^T, X symmetric
            Zt = V.T @ Z @ V
            dark = lam == 0.0
            bright = ~dark
            X_up = None
            if np.any(bright):
                Vb = V[:, bright]
                rate = 0.5 * (lam[bright][:, None] + lam[bright][None, :])
                X_up = Vb @ (Zt[np.ix_(bright, bright)] / rate) @ Vb.T
            if np.any(dark):
                Vd = V[:, dark]
                yield K, Vd @ Zt[np.ix_(dark, dark)] @ Vd.T
            else:
                yield K, None


def _dicke_block(block, d):
    """rho_K(0) as a dense (d, d) matrix: the block, psi psi^T of a pure one, or zeros."""
    if block is None:
        return np.zeros((d, d))
    if block.ndim == 1:
        return np.outer(block, block)
    return np.array(block, dtype=float)
