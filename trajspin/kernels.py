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

__all__ = ["rng_init", "rng_uniform", "trajectory_kernel", "ensemble_kernel", "no_jump_jz",
           "demon_kernel", "record_ensemble_kernel", "no_jump_jz_pattern", "passive_patterns",
           "RULE_QUANTA", "RULE_ABOVE", "RULE_BELOW", "RULE_TIME"]

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
    return (np.float64(result >> np.uint64(12)) + 0.5) * (1.0 / 4503599627370496.0)


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


# Feedback rules (trajspin.feedback.Feedback.spec): one row per rule,
#   [kind, source, threshold, reservoir, switch_on]
# checked right after every jump, each firing at most once, in row order:
RULE_QUANTA = 0      # quanta taken by reservoir `source` (all reservoirs: source = -1) >= threshold
RULE_ABOVE = 1       # conditional <J_source^z>/N_source just after the jump >= threshold
RULE_BELOW = 2       # conditional <J_source^z>/N_source just after the jump <= threshold
RULE_TIME = 3        # time of the jump >= threshold
NO_RULES = np.empty((0, 5))


@njit(cache=True)
def _dicke_jz(psi, d, nexc, s0, half, out):
    """<J_i^z> of the (unnormalised) Dicke-basis vector psi[:d] of the sector at s0, into out."""
    M = out.size
    for i in range(M):
        out[i] = 0.0
    norm = 0.0
    for s in range(d):
        p = psi[s] * psi[s]
        norm += p
        for i in range(M):
            out[i] += p * nexc[s0 + s, i]
    for i in range(M):
        out[i] = out[i] / norm - half[i]


@njit(cache=True)
def _apply_rules(rules, fired, mask, quanta, njumps, t, jz_after, half):
    """Reservoir on/off bit mask after the rules that fire on the record so far."""
    for r in range(rules.shape[0]):
        if fired[r]:
            continue
        kind = int(rules[r, 0])
        src = int(rules[r, 1])
        thr = rules[r, 2]
        if kind == RULE_QUANTA:
            hit = (njumps if src < 0 else quanta[src]) >= thr
        elif kind == RULE_ABOVE:
            hit = jz_after[src] / (2.0 * half[src]) >= thr
        elif kind == RULE_BELOW:
            hit = jz_after[src] / (2.0 * half[src]) <= thr
        else:
            hit = t >= thr
        if hit:
            fired[r] = True
            bit = np.int64(1) << np.int64(rules[r, 3])
            if rules[r, 4] > 0.0:
                mask = mask | bit
            else:
                mask = mask & ~bit
    return mask


@njit(cache=True)
def demon_kernel(state, K0, pos0, times, dims, off_d, off_V, lam_p, V_p, nexc, jtgt, jamp,
                 gamma, half, init_jz, jz_out, psi_out, rules, mask0, pattern_row,
                 rec_time, rec_chan, rec_K, rec_jzb, rec_jza, rec_mask, quanta):
    """Run one trajectory from basis state ``pos0`` of sector ``K0``, with its record and feedback.

    The reservoirs that are open form a bit mask (bit c: reservoir c on).  For every mask
    the trajectory can reach, ``pattern_row[mask]`` is a row of ``lam_p`` / ``V_p``: the
    eigen-decomposition of G_K = sum_{c on} gamma_c L_c^T L_c for all sectors.  The passive
    engine is one row and the full mask.

    Parameters
    ----------
    state : uint64[4]              random state (advanced in place)
    times : float64[T]             increasing output times (>= 0)
    lam_p : float64[P, sum d_K];  V_p : float64[P, sum d_K^2]
    init_jz : float64[T, M] or [0, M]   shared no-jump trace of the initial state (for the
                                   initial mask), or empty to compute it here
    jz_out : float64[T, M]         <J_i^z> of the conditional state at the output times
    psi_out : float64[max d]       t -> infinity conditional state (Dicke basis of the last sector)
    rules : float64[R, 5]          feedback rules (see RULE_*), R = 0: passive
    mask0 : int                    reservoirs open at t = 0
    pattern_row : int64[2^C]       table row of each reachable mask (-1: not built)
    rec_time, rec_chan : float64[K0], int64[K0]   jump times and reservoirs (always written)
    rec_K : int64[K0] or [0]       excitation before each jump (empty: not recorded)
    rec_jzb, rec_jza : float64[K0, M] or [0, M]   conditional <J_i^z> just before / after each jump
    rec_mask : int64[K0] or [0]    reservoir mask in force after each jump
    quanta : int64[C]              filled with the quanta each reservoir took

    Returns
    -------
    njumps, K_final, dark, mask : int, int, bool, int
    """
    T = times.size
    M = half.size
    C = gamma.size
    dmax = psi_out.size
    record_K = rec_K.size > 0
    record_jz = rec_jzb.shape[0] > 0
    nrules = rules.shape[0]
    fired = np.zeros(max(nrules, 1), dtype=np.bool_)
    for c in range(C):
        quanta[c] = 0
    mask = np.int64(mask0)
    row = pattern_row[mask]
    a = np.zeros(dmax)
    K = K0
    d = dims[K]
    Vk = V_p[row, off_V[K]:off_V[K] + d * d]
    for k in range(d):
        a[k] = Vk[pos0 * d + k]                # a = V^T e_pos
    t0 = 0.0
    j = 0
    njumps = 0
    obs = np.empty(M)
    jz_after = np.empty(M)
    w = np.empty(dmax)
    psi = np.empty(dmax)
    post = np.empty(dmax)
    low = np.empty((C, dmax))
    prob = np.empty(C)
    while True:
        d = dims[K]
        lk = lam_p[row, off_d[K]:off_d[K] + d]
        Vk = V_p[row, off_V[K]:off_V[K] + d * d]
        dark_w = 0.0
        bright = False
        for k in range(d):
            w[k] = a[k] * a[k]
            if lk[k] == 0.0:
                dark_w += w[k]
            else:
                bright = True
        r = rng_uniform(state)
        if K == 0 or r <= dark_w or not bright:
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
                    bsum = 0.0
                    for k in range(d):
                        if lk[k] > 0.0:
                            bsum += w[k] * np.exp(-lk[k] * (times[j] - t0))
                    frozen = bsum <= 1e-20 * dark_w or K == 0 or not bright
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
            return njumps, K, K > 0, mask
        # state at the jump, Dicke basis
        tau = tjump - t0
        for k in range(d):
            w[k] = a[k] * np.exp(-0.5 * lk[k] * tau)    # eigen-coefficients at the jump (w reused)
        for s in range(d):
            v = 0.0
            for k in range(d):
                v += Vk[s * d + k] * w[k]
            psi[s] = v
        if record_jz:
            _dicke_jz(psi, d, nexc, off_d[K], half, obs)
            for i in range(M):
                rec_jzb[njumps, i] = obs[i]
        dl = dims[K - 1]
        total = 0.0
        for c in range(C):
            if (mask >> c) & 1 == 0:
                prob[c] = 0.0
                continue
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
        if record_K:
            rec_K[njumps] = K
        njumps += 1
        quanta[ch] += 1
        K -= 1
        nrm = np.sqrt(prob[ch] / gamma[ch])
        if record_jz or nrules > 0:
            for q in range(dl):
                post[q] = low[ch, q]
            _dicke_jz(post, dl, nexc, off_d[K], half, jz_after)
            if record_jz:
                for i in range(M):
                    rec_jza[njumps - 1, i] = jz_after[i]
        if nrules > 0:
            mask = _apply_rules(rules, fired, mask, quanta, njumps, tjump, jz_after, half)
            row = pattern_row[mask]
        if record_K:
            rec_mask[njumps - 1] = mask
        Vl = V_p[row, off_V[K]:off_V[K] + dl * dl]
        for k in range(dl):
            v = 0.0
            for q in range(dl):
                v += Vl[q * dl + k] * low[ch, q]
            a[k] = v / nrm
        t0 = tjump


@njit(cache=True)
def passive_patterns(C):
    """pattern_row for the passive engine: only the all-open mask, at row 0."""
    rows = -np.ones(1 << C, dtype=np.int64)
    rows[(1 << C) - 1] = 0
    return rows


@njit(cache=True)
def trajectory_kernel(state, K0, pos0, times, dims, off_d, off_V, lam, V, nexc, jtgt, jamp,
                      gamma, half, init_jz, jz_out, rec_time, rec_chan, psi_out):
    """Run one passive trajectory from the basis state ``pos0`` of sector ``K0``.

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
    C = gamma.size
    M = half.size
    nj, Kf, dark, _ = demon_kernel(
        state, K0, pos0, times, dims, off_d, off_V, lam.reshape((1, lam.size)),
        V.reshape((1, V.size)), nexc, jtgt, jamp, gamma, half, init_jz, jz_out, psi_out,
        np.empty((0, 5)), (1 << C) - 1, passive_patterns(C), rec_time, rec_chan,
        np.empty(0, dtype=np.int64), np.empty((0, M)), np.empty((0, M)),
        np.empty(0, dtype=np.int64), np.empty(C, dtype=np.int64))
    return nj, Kf, dark


@njit(cache=True)
def _accumulate(jz, nj, Kf, dark, jz_sum, jz_sumsq, final_counts, stats):
    """Add one trajectory's <J_i^z>(t), final excitation, dark flag and jump count to the sums."""
    for t in range(jz.shape[0]):
        for i in range(jz.shape[1]):
            x = jz[t, i]
            jz_sum[t, i] += x
            jz_sumsq[t, i] += x * x
    final_counts[Kf] += 1
    if dark:
        stats[0] += 1
    stats[1] += nj


@njit(cache=True)
def ensemble_kernel(seed, start, stop, K0, pos0, times, dims, off_d, off_V, lam, V, nexc, jtgt,
                    jamp, gamma, half, init_jz, jz_sum, jz_sumsq, final_counts, stats):
    """Trajectories start..stop-1, accumulated in index order into the sums (added in place).

    stats[0] += trajectories ending dark with excitation left; stats[1] += jumps.
    """
    T = times.size
    M = half.size
    C = gamma.size
    dmax = 0
    for K in range(K0 + 1):
        dmax = max(dmax, dims[K])
    jz = np.empty((T, M))
    rec_time = np.empty(max(K0, 1))
    rec_chan = np.empty(max(K0, 1), dtype=np.int64)
    psi = np.empty(dmax)
    lam_p = lam.reshape((1, lam.size))
    V_p = V.reshape((1, V.size))
    rules = np.empty((0, 5))
    rows = passive_patterns(C)
    no_K = np.empty(0, dtype=np.int64)
    no_jz = np.empty((0, M))
    quanta = np.empty(C, dtype=np.int64)
    for idx in range(start, stop):
        st = rng_init(seed, idx)
        nj, Kf, dark, _ = demon_kernel(st, K0, pos0, times, dims, off_d, off_V, lam_p, V_p, nexc,
                                       jtgt, jamp, gamma, half, init_jz, jz, psi, rules,
                                       (1 << C) - 1, rows, rec_time, rec_chan, no_K, no_jz, no_jz,
                                       no_K, quanta)
        _accumulate(jz, nj, Kf, dark, jz_sum, jz_sumsq, final_counts, stats)


@njit(cache=True)
def record_ensemble_kernel(seed, start, stop, K0, pos0, times, dims, off_d, off_V, lam_p, V_p,
                           nexc, jtgt, jamp, gamma, half, init_jz, rules, mask0, pattern_row,
                           jz_sum, jz_sumsq, final_counts, stats,
                           njumps, k_final, dark, final_jz, quanta, final_mask,
                           jump_time, jump_chan, jump_K, jump_jzb, jump_jza, jump_mask):
    """As ``ensemble_kernel``, with feedback, keeping every trajectory's record.

    Per trajectory n = idx - start: njumps[n], k_final[n], dark[n], final_jz[n, M] (<J_i^z> of
    the t -> infinity conditional state), quanta[n, C], final_mask[n].  Per jump, packed in
    index order (trajectory n's jumps at sum(njumps[:n]) ...): jump_time, jump_chan, jump_K
    (excitation before), jump_jzb / jump_jza (conditional <J_i^z> just before / after, shape
    (., M); give shape (0, M) to skip them), jump_mask.  Flat arrays hold (stop - start) * K0.
    """
    T = times.size
    M = half.size
    C = gamma.size
    dmax = 0
    for K in range(K0 + 1):
        dmax = max(dmax, dims[K])
    keep_jz = jump_jzb.shape[0] > 0
    jz = np.empty((T, M))
    rec_time = np.empty(max(K0, 1))
    rec_chan = np.empty(max(K0, 1), dtype=np.int64)
    rec_K = np.empty(max(K0, 1), dtype=np.int64)
    rec_mask = np.empty(max(K0, 1), dtype=np.int64)
    rec_jzb = np.empty((max(K0, 1) if keep_jz else 0, M))
    rec_jza = np.empty((max(K0, 1) if keep_jz else 0, M))
    psi = np.empty(dmax)
    q = np.empty(C, dtype=np.int64)
    cursor = 0
    for idx in range(start, stop):
        n = idx - start
        st = rng_init(seed, idx)
        nj, Kf, dk, mask = demon_kernel(st, K0, pos0, times, dims, off_d, off_V, lam_p, V_p, nexc,
                                        jtgt, jamp, gamma, half, init_jz, jz, psi, rules, mask0,
                                        pattern_row, rec_time, rec_chan, rec_K, rec_jzb, rec_jza,
                                        rec_mask, q)
        _accumulate(jz, nj, Kf, dk, jz_sum, jz_sumsq, final_counts, stats)
        njumps[n] = nj
        k_final[n] = Kf
        dark[n] = dk
        final_mask[n] = mask
        for c in range(C):
            quanta[n, c] = q[c]
        _dicke_jz(psi, dims[Kf], nexc, off_d[Kf], half, final_jz[n])
        for k in range(nj):
            jump_time[cursor + k] = rec_time[k]
            jump_chan[cursor + k] = rec_chan[k]
            jump_K[cursor + k] = rec_K[k]
            jump_mask[cursor + k] = rec_mask[k]
            if keep_jz:
                for i in range(M):
                    jump_jzb[cursor + k, i] = rec_jzb[k, i]
                    jump_jza[cursor + k, i] = rec_jza[k, i]
        cursor += nj


@njit(cache=True)
def no_jump_jz_pattern(K0, pos0, times, dims, off_d, off_V, lam_p, V_p, row, nexc, half):
    """``no_jump_jz`` with the eigen-decomposition of table row ``row`` (a reservoir mask)."""
    d = dims[K0]
    Vk = V_p[row, off_V[K0]:off_V[K0] + d * d]
    lk = lam_p[row, off_d[K0]:off_d[K0] + d]
    a = np.empty(d)
    for k in range(d):
        a[k] = Vk[pos0 * d + k]
    out = np.empty((times.size, half.size))
    obs = np.empty(half.size)
    for j in range(times.size):
        _observe(a, lk, Vk, d, times[j], nexc, off_d[K0], half, obs)
        out[j] = obs
    return out


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
