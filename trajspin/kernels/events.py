"""The event-driven trajectory kernel: one sampler for every dense-table path.

Tables (``tab``: a named tuple with the fields below, built by
``trajspin.trajectories.tables``).  Sector data of every effective chain a run needs (one per
spin-j pattern of the initial mixture; the paper's model has one) are stacked as "global
sectors" g = blk[b, 0] + K' (K' the effective excitation):

    dims[g], off_d[g], off_V[g]           d_g; start of g in the per-state arrays; start of
                                          its row-major d_g x d_g eigenvector block
    lam_p[row, off_d[g] + k]              eigenvalues of G_K (exactly 0 for dark states)
    V_p[row, off_V[g] + s * d + k]        row-major eigenvectors of G_K
    nexc[off_d[g] + s, i]                 effective excitation n'_i of state s
    low_tgt/low_amp[off_d[g] + s, i]      J_i^- |s> in sector K'-1 (position, amplitude)
    up_tgt/up_amp[off_d[g] + s, i]        J_i^+ |s> in sector K'+1 (may be (0, M) if unused)
    coh_off[g * (M-1) + i] .. coh_off[g * (M-1) + i + 1]   elements of J_i^+ J_{i+1}^- (rows,
                                          cols, amps) in sector g
    blk[b] = [sec_base, K_top, K_shift]   K_top: highest K' tabulated; K_shift: true K - K'
    half_b[b, i] = j_i;  exc_off[b, i] = N_i/2 - j_i (true n_i = n'_i + exc_off)
    comp_block[c], comp_w[c]              initial mixture: block and weight of component c
    choice_off[c] .. choice_off[c + 1]    its sectors: choice_K, weight choice_w, start vector
                                          vecs[vec_off[ch]:..] (normalised, Dicke basis)
    draw_initial                          bool: draw the component and the sector (general
                                          tables, even for one choice), or not (one choice)
    ch_dom[k] = (i1, i2 or -1), ch_dir[k] = -1/+1, ch_res[k] = reservoir, rates[p, k],
    piece_end[p]                          channels (``trajspin.channels``) and schedule pieces

Table rows.  G_K = sum_k rates[p, k] O_k^T O_k over the channels k open in schedule piece p
and reservoir mask ``mask`` (feedback, ``sw``: rules (R, 5), mask0, mask_rows):
row = mask_rows[mask] with feedback (one piece), row = p without (mask_rows empty).

Between jumps, a = V^T psi evolves as a_k exp(-lambda_k tau / 2); the no-jump probability
over several pieces is the product of each piece's sum_k a_k^2 exp(-lambda_k tau), so one
threshold r is carried across switch times (log r -= log p(piece end)).  If r is below the
dark weight, no jump happens (before the piece's end; never, in the last piece).

Random numbers, in this order, from the trajectory's own stream (``rng``): the component of
the initial mixture and its sector (with ``draw_initial``: always for the general tables,
never for the paper's one basis state), then one threshold per waiting time and one uniform
per jump for the channel (``pick_channel``: the one tie rule for all three choices).

Observables: one row of F numbers per output time, layout ``lay`` (``layout``: offsets, -1
when not asked for); <J_i^z> is always at 0..M-1.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from trajspin.kernels.layout import L_CHAN, L_COH, L_F, L_JZ2, L_NBINS, L_NDIST, L_RES
from trajspin.kernels.linalg import (FAST, dicke_jz, eigen_state, eigen_weights,
                                     log_no_jump, matTvec, matvec, newton_waiting_time,
                                     pick_channel)
from trajspin.kernels.rng import rng_uniform
from trajspin.kernels.rules import apply_rules, is_open

__all__ = ["event_kernel", "table_row"]


@njit(cache=True, inline="always")
def table_row(sw, piece, mask):
    """Row of lam_p / V_p for schedule piece ``piece`` under reservoir mask ``mask``."""
    if sw.mask_rows.size > 0:
        return sw.mask_rows[mask]
    return piece


@njit(cache=True, inline="always")
def _choose(weights, state, draw):
    """An index drawn with probability weights[k] / sum (``pick_channel``).

    With ``draw`` False there must be one choice and no number is drawn (the paper's one
    basis state); with ``draw`` True one uniform is drawn even for one choice (the stream of
    the general tables does not depend on how many choices the initial state has).
    """
    if not draw:
        return 0
    u = rng_uniform(state)
    total = 0.0
    for k in range(weights.size):
        total += weights[k]
    return pick_channel(weights, u * total)


@njit(cache=True, fastmath=FAST, inline="always")
def _apply_channel(k, psi, d, src, dst_d, ch_dom, ch_dir, low_tgt, low_amp, up_tgt, up_amp,
                   out):
    """out[:dst_d] = O_k psi (unscaled) for psi on the sector whose states start at ``src``;
    returns ||O_k psi||^2.  (Plain arrays, not the table tuple: called per channel and jump.)"""
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


@njit(cache=True, fastmath=FAST, inline="always")
def _channel_probs(psi, d, g, Kt, K, rates_p, mask, dims, off_d, ch_dom, ch_dir, ch_res, low_tgt,
                   low_amp, up_tgt, up_amp, cand, prob):
    """prob[k] = rates_p[k] ||O_k psi||^2 (0: channel closed or leaving the table, K' beyond
    0..Kt), cand[k] = O_k psi; returns the total."""
    total = 0.0
    for k in range(ch_dir.size):
        prob[k] = 0.0
        Kn = K + ch_dir[k]
        r = rates_p[k]
        if r == 0.0 or Kn < 0 or Kn > Kt or not is_open(mask, ch_res[k]):
            continue
        prob[k] = r * _apply_channel(k, psi, d, off_d[g], dims[g + ch_dir[k]], ch_dom, ch_dir,
                                     low_tgt, low_amp, up_tgt, up_amp, cand[k])
        total += prob[k]
    return total


@njit(cache=True, fastmath=FAST)
def _observe_extra(psi, d, g, b, K, piece, mask, tab, lay, buf, out):
    """The observables beyond <J^z> of the (unnormalised) state psi[:d] of global sector g,
    into out[M:F] (layout ``lay``)."""
    M = tab.half_b.shape[1]
    F = lay[L_F]
    src = tab.off_d[g]
    norm = 0.0
    for s in range(d):
        norm += psi[s] * psi[s]
    inv = 1.0 / norm
    for f in range(M, F):
        out[f] = 0.0
    if lay[L_JZ2] >= 0 or lay[L_NDIST] >= 0:
        for s in range(d):
            p = psi[s] * psi[s] * inv          # probability of basis state s
            for i in range(M):
                if lay[L_JZ2] >= 0:
                    m = tab.nexc[src + s, i] - tab.half_b[b, i]
                    out[lay[L_JZ2] + i] += p * m * m
                if lay[L_NDIST] >= 0:
                    n = np.int64(tab.nexc[src + s, i]) + tab.exc_off[b, i]
                    out[lay[L_NDIST] + i * lay[L_NBINS] + n] += p
    if lay[L_COH] >= 0:
        for i in range(M - 1):
            v = 0.0
            for e in range(tab.coh_off[g * (M - 1) + i], tab.coh_off[g * (M - 1) + i + 1]):
                v += tab.coh_amp[e] * psi[tab.coh_rows[e]] * psi[tab.coh_cols[e]]
            out[lay[L_COH] + i] = v * inv
    if lay[L_CHAN] >= 0 or lay[L_RES] >= 0:
        Kt = tab.blk[b, 1]
        for k in range(tab.ch_dir.size):
            r = tab.rates[piece, k]
            Kn = K + tab.ch_dir[k]
            if r == 0.0 or Kn < 0 or Kn > Kt or not is_open(mask, tab.ch_res[k]):
                continue
            rate = r * inv * _apply_channel(k, psi, d, src, tab.dims[g + tab.ch_dir[k]],
                                            tab.ch_dom, tab.ch_dir, tab.low_tgt, tab.low_amp,
                                            tab.up_tgt, tab.up_amp, buf)
            if lay[L_CHAN] >= 0:
                out[lay[L_CHAN] + k] = rate
            if lay[L_RES] >= 0:
                out[lay[L_RES] + tab.ch_res[k]] -= tab.ch_dir[k] * rate


@njit(cache=True, inline="always")
def _next_jump(w, lk, d, dark_w, bright, log_thr, t0, tend):
    """Time of the next jump for threshold log_thr, or inf (none before ``tend``, or never:
    the dark weight alone at or above the threshold, as in ``linalg.waiting_time``)."""
    if not bright or (dark_w > 0.0 and np.log(dark_w) >= log_thr):
        return np.inf
    if tend < np.inf and log_no_jump(w, lk, d, tend - t0) > log_thr:
        return np.inf
    # min: rounding at a switch time jumps right at it
    return min(t0 + newton_waiting_time(w[:d], lk, log_thr, 200), tend)


@njit(cache=True, fastmath=FAST, inline="always")
def _dark_part(a, lk, V, off, d, psi_out):
    """psi_out[:d] = the normalised dark part V P_dark a (t -> infinity), or V a if none."""
    nrm = 0.0
    for s in range(d):
        v = 0.0
        for k in range(d):
            if lk[k] == 0.0:
                v += V[off + s * d + k] * a[k]
        psi_out[s] = v
        nrm += v * v
    if nrm == 0.0:                            # nothing dark (K' at the bottom of every channel)
        matvec(V, off, d, a, psi_out)
        for s in range(d):
            nrm += psi_out[s] * psi_out[s]
    for s in range(d):
        psi_out[s] /= np.sqrt(nrm)


@njit(cache=True, fastmath=FAST)
def _output_rows(j, times, tstop, t0, a, w, lk, d, dark_w, bright, V, off, nexc, src, half,
                 buf, psi, obs, obs_out, extra, g, b, K, piece, mask, lay, tmp):
    """Observables at the output times in [t_j, tstop) of the segment started at t0; returns
    the next output index.  When no event ends the segment, the rows stop changing once the
    bright weight is below 1e-20 of the dark weight.

    <J^z> from plain arrays (V, off: eigenvectors; nexc, src, half: the sector's states);
    ``extra`` is the table tuple when observables beyond <J^z> are asked for, else None (a
    tuple of many arrays costs at every call: the jz-only paths do not pass it).
    """
    T = times.size
    jz = obs[:half.size]
    frozen = False
    while j < T and times[j] < tstop:
        if not frozen:
            dt = times[j] - t0
            eigen_state(a, lk, V, off, d, dt, buf, psi)
            dicke_jz(psi, d, nexc, src, half, jz)
            if extra is not None:
                _observe_extra(psi, d, g, b, K, piece, mask, extra, lay, tmp, obs)
            if tstop == np.inf:
                bsum = 0.0
                for k in range(d):
                    if lk[k] > 0.0:
                        bsum += w[k] * np.exp(-lk[k] * dt)
                frozen = bsum <= 1e-20 * dark_w or not bright
        for f in range(obs.size):
            obs_out[j, f] = obs[f]
        j += 1
    return j


@njit(cache=True, inline="always")
def _copy_rows(rows, j, times, tstop, out):
    """out[j, :M] = rows[j] for the output times in [t_j, tstop); returns the next index."""
    while j < times.size and times[j] < tstop:
        for i in range(rows.shape[1]):
            out[j, i] = rows[j, i]
        j += 1
    return j


@njit(cache=True, inline="always")
def _normalise(psi, d, out):
    """out[:d] = psi[:d] / ||psi[:d]||."""
    nrm = 0.0
    for s in range(d):
        nrm += psi[s] * psi[s]
    for s in range(d):
        out[s] = psi[s] / np.sqrt(nrm)


@njit(cache=True, fastmath=FAST, inline="always")
def _switch(a, w, lk, d, tau, V, V_next, off, buf, psi):
    """Carry a to the next table at a switch time tau after the last event, in place:
    a <- V_next^T V (a exp(-lk tau / 2)) / sqrt(p(tau)); returns log p(tau), the log of the
    no-jump probability of the piece (the threshold's share)."""
    lp = log_no_jump(w, lk, d, tau)
    for k in range(d):
        buf[k] = a[k] * np.exp(-0.5 * lk[k] * tau - 0.5 * lp)
    matvec(V, off, d, buf, psi)
    matTvec(V_next, off, d, psi, a)
    return lp


@njit(cache=True, inline="always")
def _record_jump(rec, n, tjump, kc, K, psi, d, nexc, src, half):
    """Jump n of the record: time, channel, true excitation before, <J^z> before (if kept)."""
    rec.time[n] = tjump
    rec.chan[n] = kc
    rec.K[n] = K
    if rec.jzb.shape[0] > 0:
        dicke_jz(psi, d, nexc, src, half, rec.jzb[n])


@njit(cache=True, fastmath=FAST)
def event_kernel(state, tab, sw, times, horizon, init_jz, lay, obs_out, psi_out, quanta, rec, at):
    """One trajectory of any chain, from its initial mixture, with feedback and jump record.

    Parameters
    ----------
    state : uint64 (4,)            random stream (``rng_init(seed, index)``), advanced in place
    tab                            tables (module docstring); sw : (rules, mask0, mask_rows)
    times : float64 (T,)           increasing output times (>= 0)
    horizon : float                stop after the last output time if finite (chains that can
                                   raise the excitation jump forever); inf: run until dark
    init_jz : float64 (T, M) or (0, M)   shared no-jump trace of the initial state up to the
                                   first jump (``ensemble.no_jump_trace``; only with one
                                   initial choice and F = M), or empty to compute it here
    lay : int64 (8,)               observable layout; obs_out : float64 (T, F) filled
    psi_out : float64 (max d)      final conditional state: t -> inf (dark part) when horizon
                                   is inf, else at times[-1]
    quanta : int64 (reservoirs,)   net quanta taken by each reservoir (emission - absorption)
    rec : (time, chan, K, jzb, jza, mask)   jump records from index ``at`` on (capacity
                                   rec.time.size - at; 0 keeps none): time, channel, true
                                   excitation before, <J_i^z> before / after ((0, M): not
                                   kept), reservoir mask after ((0,): not kept)

    Returns
    -------
    njumps, K_final, dark, overflow, block, K'_final, mask : int, int, bool, bool, int, int, int
        dark: no jump can happen any more, with excitation left; overflow: more jumps than
        the record capacity (the caller reruns with more room); mask: open reservoirs at the end.

    Notes
    -----
    One function, not a chain of calls: the state it carries from segment to segment (a, K,
    piece, table row, mask, threshold, output index) would have to travel through every call,
    and each call that takes the table tuple pays a reference count per member (passing it
    to the per-segment output loop made the paper path 1.6 times slower).  The table fields
    are bound once, at the start.
    """
    T = times.size
    M = tab.half_b.shape[1]
    C = tab.ch_dir.size
    dmax = psi_out.size
    cap = rec.time.size - at
    keep_jz = rec.jzb.shape[0] > 0         # (_record_jump keeps <J^z> before when asked)
    keep_mask = rec.mask.size > 0
    nrules = sw.rules.shape[0]
    extra = lay[L_F] > M
    fired = np.zeros(max(nrules, 1), dtype=np.bool_)
    for q in range(quanta.size):
        quanta[q] = 0
    dims, off_d, off_V, lam_p, V_p = tab.dims, tab.off_d, tab.off_V, tab.lam_p, tab.V_p
    nexc, rates, ch_res, ch_dir = tab.nexc, tab.rates, tab.ch_res, tab.ch_dir
    ch_dom, low_tgt, low_amp = tab.ch_dom, tab.low_tgt, tab.low_amp
    up_tgt, up_amp = tab.up_tgt, tab.up_amp
    piece_end = tab.piece_end
    c = _choose(tab.comp_w, state, tab.draw_initial)
    lo = tab.choice_off[c]
    ch = lo + _choose(tab.choice_w[lo:tab.choice_off[c + 1]], state, tab.draw_initial)
    b = tab.comp_block[c]
    K = tab.choice_K[ch]
    base, Kshift = tab.blk[b, 0], tab.blk[b, 2]
    half = tab.half_b[b]
    mask = np.int64(sw.mask0)
    piece = 0                                 # switch times are > 0: t = 0 is in piece 0
    row = table_row(sw, piece, mask)
    psi, a, w = np.empty(dmax), np.zeros(dmax), np.empty(dmax)
    buf, tmp = np.empty(dmax), np.empty(dmax)
    cand, prob = np.empty((C, dmax)), np.empty(C)
    obs, jz_after = np.empty(obs_out.shape[1]), np.empty(M)
    g = base + K
    d = dims[g]
    for s in range(d):
        psi[s] = tab.vecs[tab.vec_off[ch] + s]
    matTvec(V_p[row], off_V[g], d, psi, a)
    t0 = 0.0
    log_thr = np.log(rng_uniform(state))
    j = 0
    njumps = 0
    overflow = False
    while True:
        g = base + K
        d = dims[g]
        lk = lam_p[row, off_d[g]:off_d[g] + d]
        V = V_p[row]
        tend = piece_end[piece]
        dark_w, bright = eigen_weights(a, lk, d, w)
        tjump = _next_jump(w, lk, d, dark_w, bright, log_thr, t0, tend)
        tstop = min(tjump, tend)
        if njumps == 0 and piece == 0 and init_jz.shape[0] == T:
            j = _copy_rows(init_jz, j, times, tstop, obs_out)   # the shared no-jump trace
        if j < T and times[j] < tstop and extra:   # (no call without rows: its arguments
            j = _output_rows(j, times, tstop, t0, a, w, lk, d, dark_w, bright, V, off_V[g], nexc,
                             off_d[g], half, buf, psi, obs, obs_out, tab, g, b, K, piece, mask,
                             lay, tmp)
        elif j < T and times[j] < tstop:          # cost reference counts)
            j = _output_rows(j, times, tstop, t0, a, w, lk, d, dark_w, bright, V, off_V[g], nexc,
                             off_d[g], half, buf, psi, obs, obs_out, None, g, b, K, piece, mask,
                             lay, tmp)
        if j >= T and horizon < np.inf:
            # chains that raise the excitation: stop at the last output time
            eigen_state(a, lk, V, off_V[g], d, times[T - 1] - t0 if T > 0 else 0.0, buf, psi)
            _normalise(psi, d, psi_out)
            dk = tjump == np.inf and tend == np.inf and K + Kshift > 0
            return njumps, K + Kshift, dk, overflow, b, K, mask
        if tjump == np.inf and tend == np.inf:
            _dark_part(a, lk, V, off_V[g], d, psi_out)   # no jump ever again
            return njumps, K + Kshift, K + Kshift > 0, overflow, b, K, mask
        if tjump >= tend:
            # switch time without a jump: carry the threshold, move to the new eigenbasis
            piece += 1
            row = table_row(sw, piece, mask)
            log_thr -= _switch(a, w, lk, d, tend - t0, V, V_p[row], off_V[g], buf, psi)
            t0 = tend
            continue
        # --- a jump at tjump: the state there, the channel, the state after
        tau = tjump - t0
        for k in range(d):
            buf[k] = a[k] * np.exp(-0.5 * lk[k] * tau)
        matvec(V, off_V[g], d, buf, psi)
        total = _channel_probs(psi, d, g, tab.blk[b, 1], K, rates[piece], mask, dims, off_d,
                               ch_dom, ch_dir, ch_res, low_tgt, low_amp, up_tgt,
                               up_amp, cand, prob)
        kc = pick_channel(prob, rng_uniform(state) * total)
        if njumps < cap:
            _record_jump(rec, at + njumps, tjump, kc, K + Kshift, psi, d, nexc, off_d[g],
                         half)
        elif cap > 0:
            overflow = True
        njumps += 1
        quanta[ch_res[kc]] -= ch_dir[kc]
        K += ch_dir[kc]
        g = base + K
        dn = dims[g]
        if (keep_jz and njumps <= cap) or nrules > 0:
            dicke_jz(cand[kc], dn, nexc, off_d[g], half, jz_after)
            if keep_jz and njumps <= cap:
                for i in range(M):
                    rec.jza[at + njumps - 1, i] = jz_after[i]
        if nrules > 0:
            mask = apply_rules(sw.rules, fired, mask, quanta, njumps, tjump, jz_after, half)
            row = table_row(sw, piece, mask)
        if keep_mask and njumps <= cap:
            rec.mask[at + njumps - 1] = mask
        nrm = np.sqrt(prob[kc] / rates[piece, kc])
        for q in range(dn):
            tmp[q] = cand[kc, q] / nrm
        matTvec(V_p[row], off_V[g], dn, tmp, a)   # a = V^T (O_k psi) / ||O_k psi||
        t0 = tjump
        log_thr = np.log(rng_uniform(state))  # a fresh threshold for the next waiting time
        if overflow:
            return njumps, K + Kshift, False, overflow, b, K, mask
