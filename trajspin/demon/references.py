"""What the demon's statistics should be, from the exact solvers.

The jump rate of each reservoir gamma_c <L_c^dag L_c>(t) from ``solve_master``, and at T = 0
the probability of n quanta with the conditional final state, from the steady-state blocks.
"""
from __future__ import annotations

import numpy as np

from trajspin.errors import InputError
from trajspin.exact.master import solve_master, steady_state

__all__ = ["exact_jump_rates", "exact_conditional_final_jz"]


def exact_jump_rates(chain, times, initial=None):
    """Exact jump rate of each shared reservoir, gamma_c <L_c^dag L_c>(t), from ``solve_master``.

    Parameters
    ----------
    chain : Chain
        The chain.
    times : array_like, shape (T,)
        Increasing output times, units of 1/gamma.
    initial : optional
        Initial state, as for every solver (default: the paper's eq. 4, domain 1 excited).

    Returns
    -------
    ndarray, shape (T, M-1)
        Net quanta per unit time taken by reservoir c (units of gamma; emission minus
        absorption at finite temperature): what :func:`photocurrent` estimates.
    """
    res = solve_master(chain, times, initial=initial)
    rates = getattr(res, "jump_rates", None)
    if rates is None or not np.all(np.isfinite(rates)):
        raise InputError("this trajspin's solve_master does not return jump_rates")
    return rates


def exact_conditional_final_jz(chain, initial=None):
    """Exact P(n quanta) and <J_i^z>(inf)/N_i given n quanta, from the steady-state blocks.

    Given n quanta the state left is rho_{K0-n}(inf) / Tr rho_{K0-n}(inf), so
    <n_i> = Tr(rho_K diag(n_i)) / Tr rho_K in the coupled Dicke basis of sector K = K0 - n
    (zero temperature: each quantum taken lowers the excitation K by one).

    Parameters
    ----------
    chain : Chain
        The chain, at zero temperature.
    initial : optional
        Initial state, as for every solver (default: the paper's eq. 4, domain 1 excited).

    Returns
    -------
    dict {n: (probability, jz_over_n)}
        For every number of quanta n of probability above 1e-14: P(n) and ``jz_over_n``,
        ndarray (M,), the conditional final <J_i^z>/N_i (dimensionless, in [-1/2, 1/2]);
        compare with :func:`counting_statistics` and :func:`conditional_final_jz`.
    """
    ss = steady_state(chain, initial=initial, keep_blocks=True)
    K0 = ss.sector_populations.size - 1
    sizes = np.asarray(chain.sizes, dtype=float)
    out = {}
    for K in range(K0, -1, -1):
        block = ss.blocks[K]
        if block is None:
            continue
        p = float(np.trace(block))
        if p <= 1e-14:
            continue
        states = chain.sectors.sector(K).states
        n_mean = np.diag(block) @ states / p
        out[K0 - K] = (p, (n_mean - 0.5 * sizes) / sizes)
    return out
