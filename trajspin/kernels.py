"""Numba kernels of the event-driven quantum-jump sampler (plain arrays in and out).

Sector data are flattened over K = 0..K0 (see ``trajspin.trajectories.SectorTables``):

    dims[K]            d_K
    off_d[K]           start of sector K in the per-state arrays (length sum d_K)
    off_V[K]           start of sector K's row-major d_K x d_K eigenvector matrix in V
    lam[off_d[K] + k]  eigenvalue lambda_k of G_K (exactly 0 for dark states)
    nexc[s, i]         excitation number n_i of state s
    jtgt[s, c, 2]      position in sector K-1 of the two terms of L_c|s> (-1: absent)
    jamp[s, c, 2]      their amplitudes sqrt(n (N - n + 1))

Between jumps a trajectory in sector K with eigen-coefficients a (|psi> = V a,
norm 1 at the last jump time t0) evolves as a_k(t) = a_k exp(-lambda_k (t - t0)/2),
so its no-jump probability is p(tau) = sum_k a_k^2 exp(-lambda_k tau).  A uniform
threshold r gives the exact waiting time p(tau) = r (Newton on log p, which is
convex: monotone convergence from tau = 0); if r <= sum_{dark} a_k^2 the
trajectory never jumps again.

Random numbers: xoshiro256+ whose state is filled by SplitMix64 from
key = mix(mix(seed) + index), so a trajectory's stream depends on (seed, index) only.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["rng_init", "rng_uniform", "trajectory_kernel", "ensemble_kernel", "no_jump_jz"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def rng_init(seed, index):
    """xoshiro256+ state (4 x uint64) for trajectory ``index`` of run ``seed``."""
    state = np.empty(4, dtype=np.uint64)
    x = _mix64(_mix64(np.uint64(seed) + _GOLDEN) + np.uint64(index))
    for i in range(4):
        x = x + _GOLDEN
        state[i] = _mix64(x)
    return state


@njit(cache=True)
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def rng_uniform(s):
    """A double uniform in (0, 1) (never 0 or 1) from xoshiro256+ state ``s``."""
    result = s[0] + s[3]
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return (np.float64(result >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _waiting_time(w, lam, log_r):
    """Solve log sum_k w_k exp(-lam_k tau) = log_r for tau >= 0 (requires log_r > log dark weight)."""
    tau = 0.0
    for _ in range(200):
        p = 0.0
        dp = 0.0
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


_FAST = {"reassoc", "contract", "arcp"}   # vectorised sums; no assumption on inf/NaN


@njit(cache=True, fastmath=_FAST)
def _observe(a, lam, V, d, dt, nexc, s0, half, out):
    """<J_i^z> of the normalised state V (a exp(-lam dt / 2)) into out[:] (O(d^2))."""
    M = out.size
    for i in range(M):
        out[i] = 0.0
    norm = 0.0
    b = np.empty(d)
    lmin = np.inf                      # shift by the slowest occupied rate: no underflow
    for k in range(d):
        if a[k] != 0.0 and lam[k] < lmin:
            lmin = lam[k]
    for k in range(d):
        b[k] = a[k] * np.exp(-0.5 * (lam[k] - lmin) * dt)
    for s in range(d):
        psi = 0.0
        for k in range(d):
            psi += V[s * d + k] * b[k]
        p = psi * psi
        norm += p
        for i in range(M):
            out[i] += p * nexc[s0 + s, i]
    for i in range(M):
        out[i] = out[i] / norm - half[i]


@njit(cache=True)
def trajectory_kernel(state, K0, pos0, times, dims, off_d, off_V, lam, V, nexc, jtgt, jamp,
                      gamma, half, init_jz, jz_out, rec_time, rec_chan, psi_out):
    """Run one trajectory from the basis state ``pos0`` of sector ``K0``.

    Parameters
    ----------
    state : uint64[4]          random state (advanced in place)
    times : float64[T]         increasing output times (>= 0)
    init_jz : float64[T, M] or float64[0, M]   <J_i^z> of the normalised no-jump evolution of
                               the initial state (shared by all trajectories; from
                               ``no_jump_jz``), or an empty array to compute it here
    jz_out : float64[T, M]     filled with <J_i^z> of the conditional state
    rec_time, rec_chan : float64[K0], int64[K0]   jump record (T = 0: at most K0 jumps)
    psi_out : float64[max d]   final conditional state (Dicke basis of the final sector,
                               t -> infinity: projected on the dark subspace)

    Returns
    -------
    njumps, K_final, dark : int, int, bool
        dark is True when the trajectory froze in a dark state with excitation left.
    """
    T = times.size
    M = half.size
    C = gamma.size
    dmax = psi_out.size
    a = np.zeros(dmax)
    K = K0
    d = dims[K]
    Vk = V[off_V[K]:off_V[K] + d * d]
    for k in range(d):
        a[k] = Vk[pos0 * d + k]                # a = V^T e_pos
    t0 = 0.0
    j = 0
    njumps = 0
    obs = np.empty(M)
    w = np.empty(dmax)
    psi = np.empty(dmax)
    low = np.empty((C, dmax))
    prob = np.empty(C)
    while True:
        d = dims[K]
        lk = lam[off_d[K]:off_d[K] + d]
        Vk = V[off_V[K]:off_V[K] + d * d]
        dark_w = 0.0
        for k in range(d):
            w[k] = a[k] * a[k]
            if lk[k] == 0.0:
                dark_w += w[k]
        r = rng_uniform(state)
        if K == 0 or r <= dark_w:
            tjump = np.inf
        else:
            tjump = t0 + _waiting_time(w[:d], lk, np.log(r))
        frozen = False
        if njumps == 0 and init_jz.shape[0] == T:
            # every trajectory shares the no-jump evolution of the initial state
            while j < T and times[j] < tjump:
                for i in range(M):
                    jz_out[j, i] = init_jz[j, i]
                j += 1
        while j < T and times[j] < tjump:
            if not frozen:
                _observe(a, lk, Vk, d, times[j] - t0, nexc, off_d[K], half, obs)
                if tjump == np.inf:
                    # bright part gone below rounding: the state no longer changes
                    bright = 0.0
                    for k in range(d):
                        if lk[k] > 0.0:
                            bright += w[k] * np.exp(-lk[k] * (times[j] - t0))
                    frozen = bright <= 1e-20 * dark_w or K == 0
            for i in range(M):
                jz_out[j, i] = obs[i]
            j += 1
        if tjump == np.inf:
            # t -> infinity: only the dark part survives
            norm = 0.0
            for s in range(d):
                v = 0.0
                for k in range(d):
                    if lk[k] == 0.0:
                        v += Vk[s * d + k] * a[k]
                psi_out[s] = v
                norm += v * v
            for s in range(d):
                psi_out[s] /= np.sqrt(norm)
            return njumps, K, K > 0
        # state at the jump, Dicke basis
        tau = tjump - t0
        for s in range(d):
            v = 0.0
            for k in range(d):
                v += Vk[s * d + k] * a[k] * np.exp(-0.5 * lk[k] * tau)
            psi[s] = v
        dl = dims[K - 1]
        total = 0.0
        for c in range(C):
            for q in range(dl):
                low[c, q] = 0.0
            for s in range(d):
                for side in range(2):
                    tq = jtgt[off_d[K] + s, c, side]
                    if tq >= 0:
                        low[c, tq] += jamp[off_d[K] + s, c, side] * psi[s]
            nrm = 0.0
            for q in range(dl):
                nrm += low[c, q] * low[c, q]
            prob[c] = gamma[c] * nrm
            total += prob[c]
        u = rng_uniform(state) * total
        ch = 0
        acc = prob[0]
        while ch < C - 1 and u > acc:
            ch += 1
            acc += prob[ch]
        rec_time[njumps] = tjump
        rec_chan[njumps] = ch
        njumps += 1
        K -= 1
        nrm = np.sqrt(prob[ch] / gamma[ch])
        Vl = V[off_V[K]:off_V[K] + dl * dl]
        for k in range(dl):
            v = 0.0
            for q in range(dl):
                v += Vl[q * dl + k] * low[ch, q]
            a[k] = v / nrm
        t0 = tjump


@njit(cache=True)
def ensemble_kernel(seed, start, stop, K0, pos0, times, dims, off_d, off_V, lam, V, nexc, jtgt,
                    jamp, gamma, half, init_jz, jz_sum, jz_sumsq, final_counts, stats):
    """Trajectories start..stop-1, accumulated in index order into the sums (added in place).

    stats[0] += trajectories ending dark with excitation left; stats[1] += jumps.
    """
    T = times.size
    M = half.size
    dmax = 0
    for K in range(K0 + 1):
        dmax = max(dmax, dims[K])
    jz = np.empty((T, M))
    rec_time = np.empty(max(K0, 1))
    rec_chan = np.empty(max(K0, 1), dtype=np.int64)
    psi = np.empty(dmax)
    for idx in range(start, stop):
        st = rng_init(seed, idx)
        nj, Kf, dark = trajectory_kernel(st, K0, pos0, times, dims, off_d, off_V, lam, V, nexc,
                                         jtgt, jamp, gamma, half, init_jz, jz, rec_time, rec_chan,
                                         psi)
        for t in range(T):
            for i in range(M):
                x = jz[t, i]
                jz_sum[t, i] += x
                jz_sumsq[t, i] += x * x
        final_counts[Kf] += 1
        if dark:
            stats[0] += 1
        stats[1] += nj


@njit(cache=True)
def no_jump_jz(K0, pos0, times, dims, off_d, off_V, lam, V, nexc, half):
    """<J_i^z>(t) of the normalised no-jump evolution of basis state pos0 of sector K0, shape (T, M)."""
    d = dims[K0]
    Vk = V[off_V[K0]:off_V[K0] + d * d]
    lk = lam[off_d[K0]:off_d[K0] + d]
    a = np.empty(d)
    for k in range(d):
        a[k] = Vk[pos0 * d + k]
    out = np.empty((times.size, half.size))
    obs = np.empty(half.size)
    for j in range(times.size):
        _observe(a, lk, Vk, d, times[j], nexc, off_d[K0], half, obs)
        out[j] = obs
    return out
