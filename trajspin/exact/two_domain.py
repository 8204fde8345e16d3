"""Two domains at t -> infinity from angular-momentum coupling alone (O(N_2), any N_1).

For two domains the one reservoir acts through L = J_1^- + J_2^- = J^-, the lowering operator
of the total spin J = J_1 + J_2.  The dissipator conserves J^2 and drives every component
|J, M> to |J, -J>, so from the paper's initial state |j_1, j_1>|j_2, -j_2> (eq. 4,
j_i = N_i / 2) the state at t -> infinity is the mixture

    rho(inf) = sum_J P_J |J, -J><J, -J|,     J = j_1 - j_2, ..., j_1 + j_2,

with P_J = |<j_1 j_1; j_2 -j_2 | J, j_1 - j_2>|^2.  Racah's formula has a single term when
m_1 = j_1:

    P_J = (2J + 1) N_1! N_2! / [(j_1 + j_2 + J + 1)! (j_1 + j_2 - J)!],

(P at J = j_1 - j_2 is (N_1 - N_2 + 1)/(N_1 + 1)), evaluated through log-gamma.  In |J, M>
the projection theorem gives

    <J_2^z> = M [J(J+1) + j_2(j_2+1) - j_1(j_1+1)] / (2 J (J+1)),   <J_1^z> = M - <J_2^z>,

with M = -J, and the excitation left is K = (N_1 + N_2)/2 - J.  The rate gamma sets only how
fast this is reached.  Cost O(N_2) whatever N_1 (10^9 included).
"""
from __future__ import annotations

import numpy as np

__all__ = ["two_domain_steady"]


def two_domain_steady(N1, N2):
    """t -> infinity of the two-domain paper model from |j_1, j_1>|j_2, -j_2>.

    Parameters
    ----------
    N1, N2 : int   domain sizes (N1 >= 1, N2 >= 1; any order)

    Returns
    -------
    jz : ndarray (2,)            <J_1^z>, <J_2^z> at t -> infinity
    populations : ndarray (Kmax + 1,)   probability that K quanta are left forever,
                                 K = 0 .. min(N_1, N_2) (no other K is reached)
    """
    N1, N2 = int(N1), int(N2)
    a, b = max(N1, N2), min(N1, N2)
    j1, j2 = N1 / 2.0, N2 / 2.0
    # J = (a - b)/2 + k, k = 0 .. b, leaving K = b - k quanta.  P from its first value,
    # (a - b + 1)/(a + 1), and the ratio P_{J+1}/P_J = (2J+3)/(2J+1) (S - J)/(S + J + 2),
    # S = j_1 + j_2, summed in logs (gammaln at 1e9 would lose 6 digits).
    k = np.arange(b + 1, dtype=float)
    J = (a - b) / 2.0 + k
    S = (a + b) / 2.0
    Jr = J[:-1]
    steps = np.log1p(2.0 / (2 * Jr + 1)) + np.log(S - Jr) - np.log(S + Jr + 2)
    logP = np.log((a - b + 1.0) / (a + 1.0)) + np.concatenate([[0.0], np.cumsum(steps)])
    P = np.exp(logP)
    # J(J+1) + j2(j2+1) - j1(j1+1) = (J - j1)(J + j1 + 1) + j2(j2+1): J - j1 exact
    num = (J - j1) * (J + j1 + 1) + j2 * (j2 + 1)
    jz2 = np.zeros_like(J)
    pos = J > 0
    jz2[pos] = -num[pos] / (2 * (J[pos] + 1))
    jz1 = -J - jz2
    jz = np.array([P @ jz1, P @ jz2])
    pops = P[::-1].copy()                              # index K = b - k
    return jz, pops
