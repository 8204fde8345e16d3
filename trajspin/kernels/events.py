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

Cost.  Every O(d^2) product runs along the rows of the row-major V (``_matvec`` for V x,
``_matTvec`` for V^T x as a sum of scaled rows), compiled with reassociation so the inner
loops vectorise.  The order of the floating-point additions is fixed by the compiled code,
never by the data, the rank or the order trajectories run in, so runs stay bitwise
reproducible (on one CPU type and build: a different SIMD width may round differently).

``general_kernel`` (further down) handles every other chain: absorption (K rises), local
reservoirs, piecewise-constant schedules and mixed / superposed initial states.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["rng_init", "rng_uniform", "pick_channel", "ensemble_kernel", "no_jump_jz",
           "demon_kernel", "record_ensemble_kernel", "no_jump_jz_pattern", "passive_patterns",
           "RULE_QUANTA", "RULE_ABOVE", "RULE_BELOW", "RULE_TIME", "general_kernel",
           "general_ensemble_kernel"]

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
def pick_channel(prob, u):
    """The channel of a jump: the smallest c with prob[0] + .. + prob[c] >= u, never a closed one.

    prob : float64 (C,)   gamma_c ||L_c psi||^2 (0 for closed channels); u in (0, total]
    A tie u == prob[0] + .. + prob[c] goes to c.  When u rounds to the total, trailing closed
    channels (prob 0) are skipped back to the last open one.  The one rule of every sampler.
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
def _waiting_time(w, lam, log_r):
    """Solve log sum_k w_k exp(-lam_k tau) = log_r for tau >= 0 (requires log_r > log dark weight)."""
    return newton_waiting_time(w, lam, log_r, 200)


@njit(cache=True)
def newton_waiting_time(w, lam, log_r, max_iter):
    """Newton on the convex log p(tau) = log sum_k w_k exp(-lam_k tau) from tau = 0 to log_r.

    Converges monotonically from the left; stops after ``max_iter`` iterations or when the
    step is below 1e-15 tau.  Shared by the dense and the Lanczos samplers.
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


_FAST = {"reassoc", "contract", "arcp"}   # vectorised sums; no assumption on inf/NaN


@njit(cache=True, fastmath=_FAST)
def _matvec(V, off, d, x, out):
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


@njit(cache=True, fastmath=_FAST)
def _matTvec(V, off, d, x, out):
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


@njit(cache=True, fastmath=_FAST)
def _observe(a, lam, V, d, dt, nexc, s0, half, out, b):
    """<J_i^z> of the normalised state V (a exp(-lam dt / 2)) into out[:] (O(d^2)); b: scratch[d]."""
    M = out.size
    for i in range(M):
        out[i] = 0.0
    norm = 0.0
    lmin = np.inf                      # shift by the slowest occupied rate: no underflow
    for k in range(d):
        if a[k] != 0.0 and lam[k] < lmin:
            lmin = lam[k]
    for k in range(d):
        b[k] = a[k] * np.exp(-0.5 * (lam[k] - lmin) * dt)
    for s in range(d):
        row = V[s * d:(s + 1) * d]
        psi = 0.0
        for k in range(row.size):
            psi += row[k] * b[k]
        p = psi * psi
        norm += p
        for i in range(M):
            out[i] += p * nexc[s0 + s, i]
    for i in range(M):
        out[i] = out[i] / norm - half[i]


# Feedback rules (trajspin.trajectories.feedback.Feedback.spec): one row per rule,
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


@njit(cache=True, fastmath=_FAST)
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
    scratch = np.empty(dmax)
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
                _observe(a, lk, Vk, d, times[j] - t0, nexc, off_d[K], half, obs, scratch)
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
        _matvec(Vk, 0, d, w, psi)
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
        ch = pick_channel(prob[:C], rng_uniform(state) * total)
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
        for q in range(dl):
            post[q] = low[ch, q] / nrm
        _matTvec(Vl, 0, dl, post, a)              # a = V_{K-1}^T (L_c psi) / ||L_c psi||
        t0 = tjump


@njit(cache=True)
def passive_patterns(C):
    """pattern_row for the passive engine: only the all-open mask, at row 0."""
    rows = -np.ones(1 << C, dtype=np.int64)
    rows[(1 << C) - 1] = 0
    return rows


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
    scratch = np.empty(d)
    for j in range(times.size):
        _observe(a, lk, Vk, d, times[j], nexc, off_d[K0], half, obs, scratch)
        out[j] = obs
    return out


@njit(cache=True)
def no_jump_jz(K0, pos0, times, dims, off_d, off_V, lam, V, nexc, half):
    """<J_i^z>(t) of the normalised no-jump evolution of basis state pos0 of sector K0, shape (T, M)."""
    return no_jump_jz_pattern(K0, pos0, times, dims, off_d, off_V, lam.reshape((1, lam.size)),
                              V.reshape((1, V.size)), 0, nexc, half)


# ============================================================================ general chains
#
# Any chain (finite temperature, local reservoirs, schedules) and any initial state.  Sector
# data of every effective chain a run needs (one per spin-j pattern of the initial mixture)
# are stacked as "global sectors" g = sec_base[b] + K' (K' the effective excitation):
#
#   dims[g], off_d[g], off_V[g]           as above, per global sector
#   lam_p[p, off_d[g] + k]                eigenvalues of G_K in schedule piece p
#   V_p[p, off_V[g] + s * d + k]          row-major eigenvectors of G_K in piece p
#   nexc[off_d[g] + s, i]                 effective excitation n'_i of state s
#   low_tgt/low_amp[off_d[g] + s, i]      J_i^- |s> in sector K'-1 (position, amplitude)
#   up_tgt/up_amp[off_d[g] + s, i]        J_i^+ |s> in sector K'+1
#   coh_off[g * (M-1) + i] .. coh_off[g * (M-1) + i + 1]   elements of J_i^+ J_{i+1}^- (rows,
#                                         cols, amps) in sector g
#   blk[b] = [sec_base, K_top, K_shift]   K_top: highest K' tabulated; K_shift: true K - K'
#   half_b[b, i] = j_i;  exc_off[b, i] = N_i/2 - j_i (true n_i = n'_i + exc_off)
#
# Channels (trajspin.channels): ch_dom[k] = (i1, i2 or -1), ch_dir[k] = -1/+1,
# ch_res[k] = reservoir, rates[p, k], piece_end[p] (start of piece p+1; inf for the last).
#
# Observables: one row of F numbers per output time, layout lay = [F, o_jz2, o_ndist, o_coh,
# o_chan, o_res, nbins, R] (offsets, -1 when not asked for); <J_i^z> is always at 0..M-1.

L_F, L_JZ2, L_NDIST, L_COH, L_CHAN, L_RES, L_NBINS, L_R = range(8)


@njit(cache=True)
def _pick(cum, u):
    """Smallest index k with u < cum[k] (cum increasing, u in [0, cum[-1]))."""
    k = 0
    n = cum.size
    while k < n - 1 and u >= cum[k]:
        k += 1
    return k


@njit(cache=True, fastmath=_FAST)
def _apply_channel(k, psi, d, src, dst_d, ch_dom, ch_dir, low_tgt, low_amp, up_tgt, up_amp, out):
    """out[:dst_d] = O_k psi (unscaled) for psi on the sector whose states start at ``src``;
    returns ||O_k psi||^2."""
    for q in range(dst_d):
        out[q] = 0.0
    if dst_d == 0:
        return 0.0
    for side in range(2):
        i = ch_dom[k, side]
        if i < 0:
            continue
        if ch_dir[k] < 0:
            for s in range(d):
                t = low_tgt[src + s, i]
                if t >= 0:
                    out[t] += low_amp[src + s, i] * psi[s]
        else:
            for s in range(d):
                t = up_tgt[src + s, i]
                if t >= 0:
                    out[t] += up_amp[src + s, i] * psi[s]
    nrm = 0.0
    for q in range(dst_d):
        nrm += out[q] * out[q]
    return nrm


@njit(cache=True, fastmath=_FAST)
def _observe_general(psi, d, g, b, K, piece, nexc, half_b, exc_off, dims, off_d, blk,
                     coh_off, coh_rows, coh_cols, coh_amp, ch_dom, ch_dir, ch_res, rates,
                     low_tgt, low_amp, up_tgt, up_amp, lay, buf, out):
    """Every requested observable of the (unnormalised) state psi[:d] of global sector g, into out[:F]."""
    M = half_b.shape[1]
    F = lay[L_F]
    for f in range(F):
        out[f] = 0.0
    src = off_d[g]
    norm = 0.0
    for s in range(d):
        p = psi[s] * psi[s]
        norm += p
        for i in range(M):
            m = nexc[src + s, i] - half_b[b, i]
            out[i] += p * m
            if lay[L_JZ2] >= 0:
                out[lay[L_JZ2] + i] += p * m * m
            if lay[L_NDIST] >= 0:
                n = np.int64(nexc[src + s, i]) + exc_off[b, i]
                out[lay[L_NDIST] + i * lay[L_NBINS] + n] += p
    inv = 1.0 / norm
    for i in range(M):
        out[i] *= inv
        if lay[L_JZ2] >= 0:
            out[lay[L_JZ2] + i] *= inv
    if lay[L_NDIST] >= 0:
        for f in range(M * lay[L_NBINS]):
            out[lay[L_NDIST] + f] *= inv
    if lay[L_COH] >= 0:
        for i in range(M - 1):
            v = 0.0
            for e in range(coh_off[g * (M - 1) + i], coh_off[g * (M - 1) + i + 1]):
                v += coh_amp[e] * psi[coh_rows[e]] * psi[coh_cols[e]]
            out[lay[L_COH] + i] = v * inv
    if lay[L_CHAN] >= 0 or lay[L_RES] >= 0:
        Kt = blk[b, 1]
        for k in range(ch_dir.size):
            r = rates[piece, k]
            if r == 0.0:
                continue
            Kn = K + ch_dir[k]
            if Kn < 0 or Kn > Kt:
                continue
            rate = r * inv * _apply_channel(k, psi, d, src, dims[g + ch_dir[k]], ch_dom, ch_dir,
                                            low_tgt, low_amp, up_tgt, up_amp, buf)
            if lay[L_CHAN] >= 0:
                out[lay[L_CHAN] + k] = rate
            if lay[L_RES] >= 0:
                out[lay[L_RES] + ch_res[k]] -= ch_dir[k] * rate


@njit(cache=True, fastmath=_FAST)
def _log_no_jump(w, lam, d, tau):
    """log sum_k w_k exp(-lam_k tau) (shifted by the slowest occupied rate: no underflow)."""
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


@njit(cache=True, fastmath=_FAST)
def general_kernel(state, times, horizon, dims, off_d, off_V, lam_p, V_p, nexc, low_tgt, low_amp,
                   up_tgt, up_amp, coh_off, coh_rows, coh_cols, coh_amp, blk, half_b, exc_off,
                   comp_block, comp_cum, choice_off, choice_K, choice_cum, vec_off, vecs,
                   ch_dom, ch_dir, ch_res, rates, piece_end, lay, obs_out, psi_out, quanta,
                   rec_time, rec_chan, rec_K, rec_jzb, rec_jza):
    """One trajectory of any chain from a mixed / superposed initial state (see the layout above).

    Random numbers, in this order, from the trajectory's own stream: u_1 picks the component
    of the initial mixture (``comp_cum``), u_2 its excitation sector K' (``choice_cum``,
    probability ||P_K psi||^2), then one threshold per waiting time and one uniform per jump
    to pick the channel.  The start vector is ``vecs[vec_off[choice]:...]`` (normalised, Dicke
    basis of sector K').

    Between jumps, in schedule piece p, a = V_p^T psi evolves as a_k exp(-lambda_k tau / 2);
    the no-jump probability over several pieces is the product of each piece's
    sum_k a_k^2 exp(-lambda_k tau), so one threshold r is carried across switch times
    (log r -= log p(piece end) at each switch, where psi is moved to the new eigenbasis).
    If r is below the dark weight of a piece, no jump happens before its end (never, in the
    last piece).

    Parameters
    ----------
    horizon : float   stop after the last output time if finite (chains that can raise the
                      excitation jump forever); inf runs until no jump can happen any more
    obs_out : float64[T, F]      conditional observables at the output times (layout ``lay``)
    psi_out : float64[max d]     final conditional state: at t -> inf (dark part) when horizon
                                 is inf, else at times[-1]
    quanta : int64[R]            net quanta taken by each reservoir (emission - absorption)
    rec_* : jump records (capacity rec_time.size; 0 keeps none).  rec_chan: channel index,
            rec_K: true excitation before the jump; rec_jzb / rec_jza float64[cap, M] or [0, M]

    Returns
    -------
    njumps, K_final (true excitation), dark, overflow, block, K'_final : int, int, bool, bool, int, int
        dark: no jump can happen any more with excitation left; overflow: more jumps than the
        record capacity (the caller reruns with more room).
    """
    T = times.size
    M = half_b.shape[1]
    C = ch_dir.size
    dmax = psi_out.size
    cap = rec_time.size
    keep_jz = rec_jzb.shape[0] > 0
    for q in range(quanta.size):
        quanta[q] = 0
    # --- the initial state: component, then sector
    c = _pick(comp_cum, rng_uniform(state) * comp_cum[comp_cum.size - 1])
    b = comp_block[c]
    lo, hi = choice_off[c], choice_off[c + 1]
    ch = lo + _pick(choice_cum[lo:hi], rng_uniform(state) * choice_cum[hi - 1])
    K = choice_K[ch]
    base = blk[b, 0]
    Kshift = blk[b, 2]
    g = base + K
    d = dims[g]
    psi = np.empty(dmax)
    a = np.zeros(dmax)
    w = np.empty(dmax)
    buf = np.empty(dmax)
    tmp = np.empty(dmax)
    cand = np.empty((C, dmax))
    prob = np.empty(C)
    obs = np.empty(obs_out.shape[1])
    for s in range(d):
        psi[s] = vecs[vec_off[ch] + s]
    piece = 0                                 # switch times are > 0: t = 0 is in piece 0
    _matTvec(V_p[piece], off_V[g], d, psi, a)
    t0 = 0.0
    log_thr = np.log(rng_uniform(state))
    j = 0
    njumps = 0
    overflow = False
    while True:
        g = base + K
        d = dims[g]
        lk = lam_p[piece, off_d[g]:off_d[g] + d]
        tend = piece_end[piece]
        dark_w = 0.0
        bright = False
        for k in range(d):
            w[k] = a[k] * a[k]
            if lk[k] == 0.0:
                dark_w += w[k]
            elif w[k] > 0.0:
                bright = True
        tjump = np.inf
        if bright and not (dark_w > 0.0 and log_thr <= np.log(dark_w)):
            if tend == np.inf or _log_no_jump(w, lk, d, tend - t0) <= log_thr:
                tjump = t0 + _waiting_time(w[:d], lk, log_thr)
                if tjump > tend:              # rounding at the switch: jump right at it
                    tjump = tend
        tstop = min(tjump, tend)
        frozen = False
        while j < T and times[j] < tstop:
            if not frozen:
                dt = times[j] - t0
                lmin = np.inf
                for k in range(d):
                    if a[k] != 0.0 and lk[k] < lmin:
                        lmin = lk[k]
                for k in range(d):
                    buf[k] = a[k] * np.exp(-0.5 * (lk[k] - lmin) * dt)
                _matvec(V_p[piece], off_V[g], d, buf, psi)
                _observe_general(psi, d, g, b, K, piece, nexc, half_b, exc_off, dims, off_d, blk,
                                 coh_off, coh_rows, coh_cols, coh_amp, ch_dom, ch_dir, ch_res,
                                 rates, low_tgt, low_amp, up_tgt, up_amp, lay, tmp, obs)
                if tstop == np.inf:
                    bsum = 0.0
                    for k in range(d):
                        if lk[k] > 0.0:
                            bsum += w[k] * np.exp(-lk[k] * dt)
                    frozen = bsum <= 1e-20 * dark_w or not bright
            for f in range(obs.size):
                obs_out[j, f] = obs[f]
            j += 1
        if j >= T and horizon < np.inf:
            # chains that raise the excitation: stop at the last output time
            if T > 0:
                dt = times[T - 1] - t0
                lmin = np.inf
                for k in range(d):
                    if a[k] != 0.0 and lk[k] < lmin:
                        lmin = lk[k]
                for k in range(d):
                    buf[k] = a[k] * np.exp(-0.5 * (lk[k] - lmin) * dt)
                _matvec(V_p[piece], off_V[g], d, buf, psi)
            else:
                _matvec(V_p[piece], off_V[g], d, a, psi)
            nrm = 0.0
            for s in range(d):
                nrm += psi[s] * psi[s]
            for s in range(d):
                psi_out[s] = psi[s] / np.sqrt(nrm)
            dk = (not bright or (dark_w > 0.0 and log_thr <= np.log(dark_w))) and tend == np.inf \
                and K + Kshift > 0
            return njumps, K + Kshift, dk, overflow, b, K
        if tjump == np.inf and tend == np.inf:
            # no jump ever again: t -> infinity leaves the dark part
            nrm = 0.0
            for s in range(d):
                v = 0.0
                for k in range(d):
                    if lk[k] == 0.0:
                        v += V_p[piece, off_V[g] + s * d + k] * a[k]
                psi_out[s] = v
                nrm += v * v
            if nrm == 0.0:                    # nothing dark (K' at the bottom of every channel)
                _matvec(V_p[piece], off_V[g], d, a, psi_out)
                nrm = 0.0
                for s in range(d):
                    nrm += psi_out[s] * psi_out[s]
            for s in range(d):
                psi_out[s] /= np.sqrt(nrm)
            return njumps, K + Kshift, K + Kshift > 0, overflow, b, K
        if tjump >= tend:
            # switch time without a jump: carry the threshold, move to the new eigenbasis
            tau = tend - t0
            lp = _log_no_jump(w, lk, d, tau)
            log_thr -= lp
            for k in range(d):
                buf[k] = a[k] * np.exp(-0.5 * lk[k] * tau - 0.5 * lp)
            _matvec(V_p[piece], off_V[g], d, buf, psi)
            piece += 1
            _matTvec(V_p[piece], off_V[g], d, psi, a)
            t0 = tend
            continue
        # --- a jump at tjump in this piece
        tau = tjump - t0
        for k in range(d):
            buf[k] = a[k] * np.exp(-0.5 * lk[k] * tau)
        _matvec(V_p[piece], off_V[g], d, buf, psi)
        Kt = blk[b, 1]
        total = 0.0
        for k in range(C):
            prob[k] = 0.0
            Kn = K + ch_dir[k]
            if rates[piece, k] == 0.0 or Kn < 0 or Kn > Kt:
                continue
            prob[k] = rates[piece, k] * _apply_channel(k, psi, d, off_d[g], dims[g + ch_dir[k]],
                                                       ch_dom, ch_dir, low_tgt, low_amp, up_tgt,
                                                       up_amp, cand[k])
            total += prob[k]
        kc = pick_channel(prob[:C], rng_uniform(state) * total)
        if njumps < cap:
            rec_time[njumps] = tjump
            rec_chan[njumps] = kc
            rec_K[njumps] = K + Kshift
            if keep_jz:
                _observe_jz(psi, d, off_d[g], nexc, half_b, b, obs)
                for i in range(M):
                    rec_jzb[njumps, i] = obs[i]
        elif cap > 0:
            overflow = True
        njumps += 1
        quanta[ch_res[kc]] -= ch_dir[kc]
        K += ch_dir[kc]
        g = base + K
        dn = dims[g]
        nrm = np.sqrt(prob[kc] / rates[piece, kc])
        for q in range(dn):
            tmp[q] = cand[kc, q] / nrm
        if keep_jz and njumps <= cap:
            _observe_jz(tmp, dn, off_d[g], nexc, half_b, b, obs)
            for i in range(M):
                rec_jza[njumps - 1, i] = obs[i]
        _matTvec(V_p[piece], off_V[g], dn, tmp, a)
        t0 = tjump
        log_thr = np.log(rng_uniform(state))  # a fresh threshold for the next waiting time
        if overflow:
            return njumps, K + Kshift, False, overflow, b, K


@njit(cache=True)
def _observe_jz(psi, d, src, nexc, half_b, b, out):
    """<J_i^z> of the (unnormalised) vector psi[:d] of the sector whose states start at src."""
    M = half_b.shape[1]
    for i in range(M):
        out[i] = 0.0
    norm = 0.0
    for s in range(d):
        p = psi[s] * psi[s]
        norm += p
        for i in range(M):
            out[i] += p * (nexc[src + s, i] - half_b[b, i])
    for i in range(M):
        out[i] /= norm


@njit(cache=True)
def general_ensemble_kernel(seed, start, stop, times, horizon, dims, off_d, off_V, lam_p, V_p,
                            nexc, low_tgt, low_amp, up_tgt, up_amp, coh_off, coh_rows, coh_cols,
                            coh_amp, blk, half_b, exc_off, comp_block, comp_cum, choice_off,
                            choice_K, choice_cum, vec_off, vecs, ch_dom, ch_dir, ch_res, rates,
                            piece_end, lay, obs_sum, obs_sumsq, cross, final_counts, stats,
                            quanta_sum):
    """Trajectories start..stop-1 of ``general_kernel``, accumulated in index order (in place).

    obs_sum, obs_sumsq : float64[T, F]   sums of each conditional observable and its square
    cross : float64[T, M] or [0, M]      sum of <J_i^z> <(J_i^z)^2> (for the error of jz_var)
    final_counts[K] += 1 for the true final excitation; stats[0] += dark, stats[1] += jumps
    quanta_sum : int64[R]                net quanta per reservoir, summed
    """
    T = times.size
    M = half_b.shape[1]
    F = lay[L_F]
    dmax = 0
    for g in range(dims.size):
        dmax = max(dmax, dims[g])
    obs = np.empty((T, F))
    psi = np.empty(dmax)
    q = np.empty(quanta_sum.size, dtype=np.int64)
    no_t = np.empty(0)
    no_i = np.empty(0, dtype=np.int64)
    no_jz = np.empty((0, M))
    o2 = lay[L_JZ2]
    for idx in range(start, stop):
        st = rng_init(seed, idx)
        nj, Kf, dk, _, _, _ = general_kernel(
            st, times, horizon, dims, off_d, off_V, lam_p, V_p, nexc, low_tgt, low_amp, up_tgt,
            up_amp, coh_off, coh_rows, coh_cols, coh_amp, blk, half_b, exc_off, comp_block,
            comp_cum, choice_off, choice_K, choice_cum, vec_off, vecs, ch_dom, ch_dir, ch_res,
            rates, piece_end, lay, obs, psi, q, no_t, no_i, no_i, no_jz, no_jz)
        for t in range(T):
            for f in range(F):
                x = obs[t, f]
                obs_sum[t, f] += x
                obs_sumsq[t, f] += x * x
            if cross.shape[0] > 0:
                for i in range(M):
                    cross[t, i] += obs[t, i] * obs[t, o2 + i]
        final_counts[Kf] += 1
        if dk:
            stats[0] += 1
        stats[1] += nj
        for r in range(q.size):
            quanta_sum[r] += q[r]
