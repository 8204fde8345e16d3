"""Ensembles of the event kernel: trajectories start..stop-1 summed in index order.

``ensemble_kernel`` runs ``events.event_kernel`` for consecutive trajectory indices, each on
its own stream ``rng_init(seed, index)``, and adds every trajectory to the sums in index order
(so a block split into any slices gives bitwise the same sums), with per-trajectory
summaries and packed jump records when asked.  ``no_jump_trace`` is the no-jump evolution of
a one-choice initial state, shared by all its trajectories up to their first jump.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from trajspin.kernels.events import event_kernel
from trajspin.kernels.layout import L_F, L_JZ2
from trajspin.kernels.linalg import dicke_jz, eigen_state, matTvec
from trajspin.kernels.rng import rng_init

__all__ = ["ensemble_kernel", "no_jump_trace"]


@njit(cache=True)
def ensemble_kernel(seed, start, stop, tab, sw, times, horizon, init_jz, lay, obs_sum, obs_sumsq,
                    cross, final_counts, stats, quanta_sum, summ, rec):
    """Trajectories start..stop-1 of ``event_kernel``, accumulated in index order (in place).

    obs_sum, obs_sumsq : float64 (T, F)   sums of each conditional observable and its square
    cross : float64 (T, M) or (0, M)      sum of <J_i^z> <(J_i^z)^2> (for the error of jz_var)
    final_counts[K] += 1 for the true final excitation; stats[0] += dark, stats[1] += jumps
    quanta_sum : int64 (reservoirs,)      net quanta per reservoir, summed
    summ : (njumps, k_final, dark, final_jz, quanta, final_mask)   per trajectory
           n = idx - start (shapes (n,), (n,), (n,), (n, M), (n, reservoirs), (n,)), or all
           empty: none kept.  final_jz: <J_i^z> of the final conditional state.
    rec : (time, chan, K, jzb, jza, mask)  every jump, packed in index order (trajectory n's
           jumps after those of 0..n-1), with room for all of them; size 0: none kept.
    """
    T = times.size
    M = tab.half_b.shape[1]
    F = lay[L_F]
    dmax = 0
    for g in range(tab.dims.size):
        dmax = max(dmax, tab.dims[g])
    keep = summ.njumps.size > 0
    obs = np.empty((T, F))
    psi = np.empty(dmax)
    q = np.empty(quanta_sum.size, dtype=np.int64)
    o2 = lay[L_JZ2]
    cursor = 0
    for idx in range(start, stop):
        nj, Kf, dk, _, b, Kp, mask = event_kernel(rng_init(seed, idx), tab, sw, times, horizon,
                                                  init_jz, lay, obs, psi, q, rec, cursor)
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
        if keep:
            n = idx - start
            summ.njumps[n] = nj
            summ.k_final[n] = Kf
            summ.dark[n] = dk
            summ.final_mask[n] = mask
            for r in range(q.size):
                summ.quanta[n, r] = q[r]
            g = tab.blk[b, 0] + Kp
            dicke_jz(psi, tab.dims[g], tab.nexc, tab.off_d[g], tab.half_b[b], summ.final_jz[n])
        if rec.time.size > 0:
            cursor += nj


@njit(cache=True)
def no_jump_trace(tab, row, times):
    """<J_i^z>(t) of the normalised no-jump evolution of the first initial choice, (T, M).

    The start vector of choice 0 (component 0) under table row ``row``: what every
    trajectory of a one-choice initial state shows until its first jump (``init_jz``).
    """
    b = tab.comp_block[0]
    g = tab.blk[b, 0] + tab.choice_K[0]
    d = tab.dims[g]
    M = tab.half_b.shape[1]
    psi, a, buf = np.empty(d), np.empty(d), np.empty(d)
    for s in range(d):
        psi[s] = tab.vecs[tab.vec_off[0] + s]
    matTvec(tab.V_p[row], tab.off_V[g], d, psi, a)
    lk = tab.lam_p[row, tab.off_d[g]:tab.off_d[g] + d]
    out = np.empty((times.size, M))
    for j in range(times.size):
        eigen_state(a, lk, tab.V_p[row], tab.off_V[g], d, times[j], buf, psi)
        dicke_jz(psi, d, tab.nexc, tab.off_d[g], tab.half_b[b], out[j])
    return out
