"""Observables by name, shared by the exact solver and the trajectory engine.

Every solver accepts ``observables=`` (a name or a sequence of names; ``"jz"`` is always
computed) and returns each as an attribute of its result, with the time axis first:

    name              shape          meaning
    jz                (T, M)         <J_i^z>
    jz2               (T, M)         <(J_i^z)^2>
    jz_var            (T, M)         <(J_i^z)^2> - <J_i^z>^2   (from the averaged moments)
    n_dist            (T, M, Nmax+1) P(n_i = n): excitation-number distribution of domain i
                                     (n = 0..N_i; zero beyond N_i; Nmax = max N_i)
    coherence         (T, M-1)       <J_i^+ J_{i+1}^-> (real for the real states trajspin evolves)
    channel_rates     (T, C)         r_k <O_k^dag O_k>: quanta per unit time through channel k
                                     (order and names: ``chain.channels()``)
    reservoir_rates   (T, R)         net quanta per unit time into each reservoir, emission
                                     minus absorption (R = M-1 shared, then M local if any);
                                     its time integral is the energy each reservoir received
    log_negativity    (T, pairs)     exact solver only: E_N = log2 ||rho_AB^{T_B}||_1 of the
                                     reduced state of each domain pair (default: neighbours)

Trajectory ensembles average the conditional expectation of each observable (standard errors
as ``<name>_err``); ``jz_var`` is formed from the averaged moments.

The helpers below give, for one sector K of a (possibly effective) chain, the plain arrays
both solvers need: basis-state excitations for the diagonal observables, and the matrix
elements of J_i^+ J_{i+1}^- (which keeps K).
"""
from __future__ import annotations

import numpy as np

from trajspin.errors import InputError

__all__ = ["OBSERVABLES", "check_observables", "coherence_elements", "EXACT_ONLY"]

OBSERVABLES = ("jz", "jz2", "jz_var", "n_dist", "coherence", "channel_rates", "reservoir_rates",
               "log_negativity")
EXACT_ONLY = ("log_negativity",)


def check_observables(observables, solver="exact") -> tuple:
    """Checked tuple of observable names, ``"jz"`` first."""
    if observables is None:
        names = ()
    elif isinstance(observables, str):
        names = (observables,)
    else:
        try:
            names = tuple(observables)
        except TypeError:
            raise InputError(f"observables must be a name or a sequence of names, got {observables!r}") from None
    for n in names:
        if n not in OBSERVABLES:
            raise InputError(f"unknown observable {n!r}; choose from {', '.join(OBSERVABLES)}")
        if solver != "exact" and n in EXACT_ONLY:
            raise InputError(f"observable {n!r} needs the density matrix: use solve_master or steady_state")
    out = ["jz"] + [n for n in names if n != "jz"]
    return tuple(dict.fromkeys(out))


def coherence_elements(basis, K, i):
    """Matrix elements of J_i^+ J_{i+1}^- on sector K: (rows, cols, amps), each shape (n,).

    J_i^+ J_{i+1}^- |s> = amp |t> with t = rows, s = cols, so for a real state psi on the
    sector <J_i^+ J_{i+1}^-> = sum amp psi[rows] psi[cols], and for a block rho_K it is
    sum amp rho_K[cols, rows].
    """
    sec = basis.sector(K)
    n = sec.states
    Ni, Nj = basis.sizes[i], basis.sizes[i + 1]
    ok = (n[:, i + 1] > 0) & (n[:, i] < Ni)
    cols = np.nonzero(ok)[0]
    codes = sec.codes[ok] - basis.strides[i + 1] + basis.strides[i]
    rows = np.searchsorted(sec.codes, codes)
    ni, nj = n[ok, i].astype(float), n[ok, i + 1].astype(float)
    amps = np.sqrt(nj * (Nj - nj + 1.0)) * np.sqrt((ni + 1.0) * (Ni - ni))
    return rows.astype(np.int64), cols.astype(np.int64), amps
