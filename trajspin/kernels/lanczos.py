"""Restarted Lanczos propagation of the matrix-free trajectory path (plain arrays in and out).

Sector tables and G_K x come from ``matrix_free``; the waiting time, the channel pick and
<J^z> from ``linalg``.  Propagation between jumps (Lanczos, full reorthogonalisation): from
the unit vector u, G Q_m = Q_m T_m + beta_m q_{m+1} e_m^T, T_m = S diag(theta) S^T, and

    psi(h) = exp(-G h / 2) u  ~  Q_m S exp(-theta h / 2) S^T e_1,
    p(h)   = ||psi(h)||^2     ~  sum_k S_{1k}^2 exp(-theta_k h)     (Gauss quadrature of
                                 the spectral measure of u: a lower bound of p(h) for every h),

with the a-posteriori bound (variation of constants on the Lanczos relation, ||exp(-G s/2)|| <= 1)

    ||psi(h) - psi_m(h)|| <= (beta_m / 2) sum_k |S_{mk} S_{1k}| (1 - exp(-theta_k h / 2)) / (theta_k / 2).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from trajspin.kernels.linalg import FAST, dicke_jz, fill_rows, pick_channel, waiting_time
from trajspin.kernels.matrix_free import apply_generator, fill_sector, lower, sector_extra, sector_jz
from trajspin.kernels.rng import rng_uniform
from trajspin.kernels.rules import RULE_ABOVE, RULE_BELOW, apply_rules, is_open

__all__ = ["lanczos", "run_visits", "sector_visit", "VISIT_JUMP", "VISIT_DARK", "VISIT_GROUND"]

VISIT_JUMP = 0      # the trajectory jumped out of the sector
VISIT_DARK = 1      # froze in the dark subspace (no jump within the horizon)
VISIT_GROUND = 2    # K = 0


@njit(cache=True, fastmath=FAST)
def lanczos(diag, hop_tgt, hop_amp, Q, alpha, beta, m_start, m_stop):
    """Lanczos steps m_start..m_stop-1 with full reorthogonalisation.

    Q : float64 (m_max + 1, d); row 0 is the unit start vector; rows 1..m_stop are filled.
    alpha, beta : float64 (m_max,); T_m = tridiag(beta[:m-1], alpha[:m], beta[:m-1]) and
    beta[m-1] is the residual norm beta_m.  Returns the number of steps m done; it is
    smaller than m_stop after a breakdown (beta[m-1] = 0: Q spans an invariant subspace).
    """
    d = diag.size
    w = np.empty(d)
    coef = np.empty(Q.shape[0])
    for j in range(m_start, m_stop):
        apply_generator(diag, hop_tgt, hop_amp, Q[j], w)
        a = 0.0
        for s in range(d):
            a += Q[j, s] * w[s]
        alpha[j] = a
        # two passes of classical Gram-Schmidt against all previous vectors
        for _ in range(2):
            for i in range(j + 1):
                c = 0.0
                qi = Q[i]
                for s in range(d):
                    c += qi[s] * w[s]
                coef[i] = c
            for i in range(j + 1):
                c = coef[i]
                qi = Q[i]
                for s in range(d):
                    w[s] -= c * qi[s]
        b = 0.0
        for s in range(d):
            b += w[s] * w[s]
        b = np.sqrt(b)
        scale = abs(a)
        if j > 0:
            scale = max(scale, beta[j - 1])
        if b <= 1e-13 * scale or b == 0.0:
            beta[j] = 0.0
            return j + 1
        beta[j] = b
        inv = 1.0 / b
        for s in range(d):
            Q[j + 1, s] = w[s] * inv
    return m_stop


@njit(cache=True)
def _tridiag_eig(alpha, beta, m, cut):
    T = np.zeros((m, m))
    for k in range(m):
        T[k, k] = alpha[k]
        if k + 1 < m:
            T[k, k + 1] = beta[k]
            T[k + 1, k] = beta[k]
    theta, S = np.linalg.eigh(T)
    for k in range(m):
        if theta[k] <= cut:
            theta[k] = 0.0          # dark: G is PSD, |theta| <= cut is rounding
    return theta, S


@njit(cache=True)
def _p_proj(w, theta, h):
    p = 0.0
    for k in range(w.size):
        p += w[k] * np.exp(-theta[k] * h)
    return p


@njit(cache=True)
def _err_bound(c, theta, betam, h):
    """Vector error bound of the Lanczos propagator at step h (unit start vector).

    ||psi(h) - psi_m(h)|| <= (beta_m / 2) int_0^h |e_m^T exp(-s T / 2) e_1| ds.  The integrand
    has one sign for all s (exp(-s T / 2) is, up to the signature diag((-1)^k), an entrywise
    non-negative matrix, T having positive off-diagonals), so the integral is
    |sum_k c_k (1 - exp(-theta_k h / 2)) / (theta_k / 2)| with c_k = S_mk S_1k.  The signed
    sum cancels to O(h^m); its rounding, m 1e-15 sum_k |c_k| (..), is added to the bound.
    """
    e = 0.0
    ea = 0.0
    for k in range(c.size):
        a = 0.5 * theta[k]
        if a * h < 1e-8:
            f = h * (1.0 - 0.5 * a * h)
        else:
            f = -np.expm1(-a * h) / a
        e += c[k] * f
        ea += abs(c[k]) * f
    return 0.5 * betam * (abs(e) + c.size * 1e-15 * ea)


@njit(cache=True)
def _safe_step(w, c, theta, betam, tol):
    """Largest h (bisection in log h) with err_bound(h) <= tol sqrt(p_m(h)); inf if exact."""
    if betam == 0.0:
        return np.inf
    hi = 1e12
    if _err_bound(c, theta, betam, hi) <= tol * np.sqrt(_p_proj(w, theta, hi)):
        return np.inf
    lo = 1e-300
    # start bracket: err ~ grows from 0; find a lower point that satisfies
    lo = 1e-16
    while _err_bound(c, theta, betam, lo) > tol * np.sqrt(_p_proj(w, theta, lo)):
        lo *= 1e-4
        if lo < 1e-300:
            return 0.0
    for _ in range(80):
        mid = np.sqrt(lo * hi)
        if _err_bound(c, theta, betam, mid) <= tol * np.sqrt(_p_proj(w, theta, mid)):
            lo = mid
        else:
            hi = mid
        if hi <= lo * (1.0 + 1e-6):
            break
    return lo


@njit(cache=True, fastmath=FAST)
def _ritz_vector(Q, S, theta, m, h, d, out):
    """out[:d] = Q_m S exp(-theta h / 2) S^T e_1; returns ||out||^2."""
    y = np.zeros(m)
    for k in range(m):
        f = S[0, k] * np.exp(-0.5 * theta[k] * h)
        for i in range(m):
            y[i] += S[i, k] * f
    for s in range(d):
        out[s] = 0.0
    for i in range(m):
        yi = y[i]
        qi = Q[i]
        for s in range(d):
            out[s] += yi * qi[s]
    nrm = 0.0
    for s in range(d):
        nrm += out[s] * out[s]
    return nrm


@njit(cache=True)
def _still_tol(diag, hop_amp, gamma):
    """||G u|| below which a unit vector u of the sector is "still" (no longer decays).

    ||G u||^2 >= lambda_gap^2 x (bright weight of u), so u is dark up to its bright weight when
    ||G u|| <= max(1e-10 min gamma, 1e-13 x Gershgorin bound of G_K) (the second term: the
    rounding of G u, ~1e-16 x the bound, with a margin).  <J_i^z> of u differs from that of
    its dark part by O(N_i sqrt(bright weight)) <= O(N_i still_tol / lambda_gap).
    """
    d = diag.size
    gmax = 0.0
    for s in range(d):
        gmax = max(gmax, diag[s])
    for ch in range(hop_amp.shape[1]):
        hmax = 0.0
        for s in range(d):
            hmax = max(hmax, hop_amp[s, ch])
        gmax += 2.0 * hmax
    gmin = np.inf                 # over the open reservoirs (all closed: G = 0, all still)
    for ch in range(gamma.size):
        if gamma[ch] > 0.0:
            gmin = min(gmin, gamma[ch])
    return max(1e-10 * gmin, 1e-13 * gmax)


@njit(cache=True)
def _observe(psi, d, nexc, hop_tgt, sizes, half, gam, lay, obs):
    """obs (F,) = the observable row (layout ``lay``) of the unnormalised state psi[:d]."""
    dicke_jz(psi, d, nexc, 0, half, obs[:sizes.size])
    if obs.size > sizes.size:
        sector_extra(psi, d, nexc, hop_tgt, sizes, half, gam, lay, obs)


@njit(cache=True)
def _ritz_rows(Q, S, theta, m, tc, d, times, j, tstop, nexc, hop_tgt, sizes, half, gam, lay, psi,
               obs, obs_out):
    """Observables of the Lanczos-propagated state at the output times in [t_j, tstop);
    returns the next output index."""
    while j < times.size and times[j] < tstop:
        _ritz_vector(Q, S, theta, m, times[j] - tc, d, psi)
        _observe(psi, d, nexc, hop_tgt, sizes, half, gam, lay, obs)
        for f in range(obs.size):
            obs_out[j, f] = obs[f]
        j += 1
    return j


@njit(cache=True)
def _krylov_space(diag, hop_tgt, hop_amp, Q, alpha, beta, m_max, m_check, tol, log_r, horizon,
                  dark):
    """Grow a Krylov space from Q[0] until the step reaches the jump (or m_max / breakdown).

    Returns (m, theta, S, w, c, h_safe, h_root): the Ritz values and vectors of T_m, the
    spectral weights w_k = S_1k^2, c_k = S_mk S_1k, the safe step and the root of
    p(h) = r on the projected spectrum (inf when ``dark`` or no root).
    """
    m = 0
    h_root = np.inf
    while True:
        m = lanczos(diag, hop_tgt, hop_amp, Q, alpha, beta, m, min(m + m_check, m_max))
        theta, S = _tridiag_eig(alpha, beta, m, 0.0)
        w = np.empty(m)
        c = np.empty(m)
        for k in range(m):
            w[k] = S[0, k] * S[0, k]
            c[k] = S[m - 1, k] * S[0, k]
        h_safe = _safe_step(w, c, theta, beta[m - 1], tol)
        if not dark:
            h_root = waiting_time(w, theta, log_r, 400)
            if h_root <= h_safe and h_root <= horizon:
                return m, theta, S, w, c, h_safe, h_root
        if beta[m - 1] == 0.0 or m >= m_max:
            return m, theta, S, w, c, h_safe, h_root


@njit(cache=True)
def _jump_from(state, psi, nexc, sizes, K, cum, gamma, low, dl):
    """Pick the channel of a jump from the unit state psi (d_K,) and leave the normalised
    post-jump state in low[ch, :dl]; returns ch."""
    C = gamma.size
    total = 0.0
    prob = np.empty(C)
    for ch in range(C):
        prob[ch] = gamma[ch] * lower(psi, nexc, sizes, K, cum, ch, low[ch], dl)
        total += prob[ch]
    ch = pick_channel(prob, rng_uniform(state) * total)
    inv = 1.0 / np.sqrt(prob[ch] / gamma[ch])
    for q in range(dl):
        low[ch, q] *= inv
    return ch


@njit(cache=True)
def _report(info, status, t_jump, ch, j, matvecs, segments, perr):
    """info[:7] = [status, t_jump, channel, j, matvecs, segments, p error bound]."""
    info[0] = status
    info[1] = t_jump
    info[2] = ch
    info[3] = j
    info[4] = matvecs
    info[5] = segments
    info[6] = perr


@njit(cache=True)
def sector_visit(state, K, u, t0, times, j, obs_out, lay, nexc, diag, hop_tgt, hop_amp, sizes,
                 gamma, half, cum, m_max, m_check, tol, horizon, need_final, Q, alpha, beta, psi,
                 low, dl, info, jz_before):
    """Evolve a trajectory through one visit of sector K (from its last jump to the next).

    Draws the waiting-time threshold r first and, at the jump, the channel draw (the order
    of ``trajspin.kernels.events.event_kernel``).  Restarted Lanczos: each segment builds a
    Krylov space from the current unit vector, takes the largest step h_safe whose vector
    error bound is below ``tol`` relative, solves p = r on the projected spectrum and jumps if
    the root lies within h_safe; otherwise it advances by h_safe and restarts.

    Parameters
    ----------
    state : uint64[4]              random state (advanced in place)
    K : int                        sector; u : float64 (d_K,) unit state just after the jump
    t0 : float                     time of the last jump; times : float64 (T,)
    j : int                        first output index with times[j] >= t0
    obs_out : float64 (T, F)       observables (layout ``lay``, ``kernels.layout``; F = M:
                                   <J_i^z> only), filled for times in [t0, next jump)
    nexc, diag, hop_tgt, hop_amp   sector K (``build_sector``, built with the rates ``gamma``)
    gamma : float64 (M - 1,)       rates of the open reservoirs (0: closed by feedback)
    m_max, m_check : int           Krylov dimension cap; check convergence every m_check steps
    tol : float                    per-segment relative vector error bound
    horizon : float                a trajectory that does not jump within ``horizon`` after its
                                   last restart (Gauss lower bound of p) is frozen (dark)
    need_final : bool              for a dark trajectory, keep evolving until the state is
                                   still (||G u|| <= ``_still_tol``: the t -> infinity state),
                                   even past the grid; else stop at the end of the grid
    Q : float64 (m_max + 1, >= d_K)   Krylov basis buffer
    psi : float64 (>= d_K)         out: state at the jump (normalised), or final state
    low : float64 (C, >= d_{K-1})  out: low[ch, :dl] is the post-jump state (normalised)
    info : float64 (8,)            out: [status, t_jump, channel, j, matvecs, segments,
                                   accumulated relative error bound on p, 0]
    jz_before : float64 (M,)       out: <J_i^z> just before the jump
    """
    d = diag.size
    obs = np.empty(obs_out.shape[1])
    log_r = np.log(rng_uniform(state))
    for s in range(d):
        Q[0, s] = u[s]
    if K == 0:
        _observe(u, d, nexc, hop_tgt, sizes, half, gamma, lay, obs)
        for s in range(d):
            psi[s] = u[s]
        _report(info, VISIT_GROUND, 0.0, 0, fill_rows(obs_out, j, obs), 0, 0, 0.0)
        return
    still_tol = _still_tol(diag, hop_amp, gamma)
    matvecs = 0
    segments = 0
    perr = 0.0
    logp = 0.0             # log ||psi(tc)||^2 since the jump
    tc = t0
    dark = False
    while True:
        segments += 1
        if segments > 1000000:
            raise RuntimeError("sector_visit: no progress after 1e6 Krylov restarts")
        m, theta, S, w, c, h_safe, h_root = _krylov_space(
            diag, hop_tgt, hop_amp, Q, alpha, beta, m_max, m_check, tol, log_r - logp, horizon,
            dark)
        matvecs += m
        if not dark and h_root <= h_safe and h_root <= horizon:
            # ---- jump inside this segment ---------------------------------------
            tj = tc + h_root
            j = _ritz_rows(Q, S, theta, m, tc, d, times, j, tj, nexc, hop_tgt, sizes, half, gamma,
                           lay, psi, obs, obs_out)
            nrm = _ritz_vector(Q, S, theta, m, h_root, d, psi)
            perr += 2.0 * _err_bound(c, theta, beta[m - 1], h_root) / np.sqrt(_p_proj(w, theta, h_root))
            inv = 1.0 / np.sqrt(nrm)
            for s in range(d):
                psi[s] *= inv
            dicke_jz(psi, d, nexc, 0, half, jz_before)
            ch = _jump_from(state, psi[:d], nexc, sizes, K, cum, gamma, low, dl)
            _report(info, VISIT_JUMP, tj, ch, j, matvecs, segments, perr)
            return
        # ---- no jump within h_safe and the horizon ----------------------------------------
        # Gauss quadrature is a lower bound of p(horizon): above r, no jump within the horizon
        if not dark and np.log(_p_proj(w, theta, horizon)) + logp >= log_r:
            dark = True
        # a still state (bright weight <= (still_tol / lambda_gap)^2) no longer decays: it is
        # dark (r would have to lie within that weight of p to jump later).  Lanczos:
        # G u = alpha_1 u + beta_1 q_2, so ||G u||^2 = alpha_1^2 + beta_1^2.
        still = np.sqrt(alpha[0] ** 2 + beta[0] ** 2) <= still_tol
        if still:
            dark = True
        if dark and (still or (j >= times.size and not need_final)):
            _observe(Q[0, :d], d, nexc, hop_tgt, sizes, half, gamma, lay, obs)
            for s in range(d):
                psi[s] = Q[0, s]
            _report(info, VISIT_DARK, 0.0, 0, fill_rows(obs_out, j, obs), matvecs, segments, perr)
            return
        if h_safe == np.inf:
            h_safe = horizon            # exact projection: advance by the horizon
        # ---- advance by h_safe and restart ---------------------------------------------
        j = _ritz_rows(Q, S, theta, m, tc, d, times, j, tc + h_safe, nexc, hop_tgt, sizes, half,
                       gamma, lay, psi, obs, obs_out)
        h_safe = max(h_safe, 0.0)
        nrm = _ritz_vector(Q, S, theta, m, h_safe, d, psi)
        perr += 2.0 * tol
        logp += np.log(nrm)
        tc += h_safe
        inv = 1.0 / np.sqrt(nrm)
        for s in range(d):
            Q[0, s] = psi[s] * inv


@njit(cache=True)
def run_visits(state, carry, tc, u, times, obs_out, lay, sizes, gamma, gam, half, cum, m_max,
               m_check, tol, horizon, need_final, nexc, diag, hop_tgt, hop_amp, fill, d_cached, Q,
               alpha, beta, psi, low, info, jz_before, rules, fired, quanta, jz_after, rec_t,
               rec_c, rec_K, rec_b, rec_a, rec_m, stats, max_visits):
    """Run one trajectory for at most ``max_visits`` sector visits (resumable).

    The loop over sectors K0, K0 - 1, ... of ``sector_visit`` without Python in between.
    With ``fill``, each sector's tables are rebuilt in place (``fill_sector`` with the rates
    ``gam``, O(d_K M^2), about one Krylov space's work) and the call returns before a sector
    of d_cached states or more, whose tables the caller keeps between trajectories and passes
    with ``fill`` False (then for exactly one visit, max_visits = 1).

    Feedback (``kernels.rules``): after every jump the rules see the quanta per reservoir,
    the jump count, the time and <J_i^z> just after the jump; when they change the reservoir
    mask, ``gam`` becomes gamma on the open reservoirs and 0 on the closed ones, and the next
    visit's tables (and its channel pick) use it, as the dense path's table row does.

    Parameters
    ----------
    state : uint64 (4,)            random stream (``kernels.rng.rng_init(seed, index)``)
    carry : int64 (5,)             in/out [K, j, njumps, status, mask]: current sector, next
                                   output index, jumps so far; status -1 while running,
                                   else VISIT_DARK or VISIT_GROUND; open reservoirs (bits)
    tc : float64 (1,)              in/out time of the last jump
    u : float64 (>= max d_K)       in/out state at the start of the visit (unit norm)
    times : float64 (T,); obs_out : float64 (T, F); lay : int64 (8,)   output grid, the
                                   observables on it and their layout (``kernels.layout``)
    gamma, gam : float64 (M - 1,)  the chain's rates; in/out the rates of the open reservoirs
    nexc, diag, hop_tgt, hop_amp   table buffers (``build_sector`` types): with ``fill``
                                   at least min(max d_K, d_cached - 1) rows, else sector K's
                                   (built with ``gam``)
    fill : bool;  d_cached : int
    Q, alpha, beta, psi, low, info, jz_before   work buffers of ``sector_visit``
    rules : float64 (n_rules, 5); fired : bool (>= n_rules)   feedback rules (none: (0, 5))
                                   and which have fired
    quanta : int64 (M - 1,)        in/out quanta each reservoir took;  jz_after : float64 (M,)
    rec_t, rec_c, rec_K, rec_m : (J,)   jump times, channels, sector before, mask after
    rec_b, rec_a : (J, M)          (J = K0 with records, else 0); <J_i^z> just before and
                                   after each jump
    stats : float64 (3,)           in/out [matvecs, segments, largest p error bound]
    max_visits : int               return after this many visits (status stays -1)

    Returns
    -------
    int : sector visits done in this call.  On a final status, psi[:d_K] is the final state.
    """
    M = sizes.size
    record = rec_t.size > 0
    nrules = rules.shape[0]
    reads_jz = record          # <J^z> after a jump: for the record and the excitation rules
    for r in range(nrules):
        if rules[r, 0] == RULE_ABOVE or rules[r, 0] == RULE_BELOW:
            reads_jz = True
    for v in range(max_visits):
        K = carry[0]
        d = cum[0, K + 1] - cum[0, K]
        if fill:
            if d >= d_cached:
                return v
            fill_sector(sizes, gam, K, cum, nexc, diag, hop_tgt, hop_amp)
        dl = cum[0, K] - cum[0, K - 1] if K > 0 else 0
        sector_visit(state, K, u[:d], tc[0], times, carry[1], obs_out, lay, nexc[:d], diag[:d],
                     hop_tgt[:d], hop_amp[:d], sizes, gam, half, cum, m_max, m_check, tol,
                     horizon, need_final, Q, alpha, beta, psi, low, dl, info, jz_before)
        carry[1] = int(info[3])
        stats[0] += info[4]
        stats[1] += info[5]
        stats[2] = max(stats[2], info[6])
        status = int(info[0])
        if status != VISIT_JUMP:
            carry[3] = status
            return v + 1
        ch = int(info[2])
        tc[0] = info[1]
        nj = carry[2]
        for q in range(dl):
            u[q] = low[ch, q]
        quanta[ch] += 1
        if reads_jz:
            sector_jz(u[:dl], sizes, K - 1, half, jz_after)
        if nrules > 0:
            mask = apply_rules(rules, fired, carry[4], quanta, nj + 1, info[1], jz_after, half)
            if mask != carry[4]:
                carry[4] = mask
                for c in range(gam.size):
                    gam[c] = gamma[c] if is_open(mask, c) else 0.0
        if record:
            rec_t[nj] = info[1]
            rec_c[nj] = ch
            rec_K[nj] = K
            rec_m[nj] = carry[4]
            for i in range(M):
                rec_b[nj, i] = jz_before[i]
                rec_a[nj, i] = jz_after[i]
        carry[0] = K - 1
        carry[2] = nj + 1
    return max_visits
