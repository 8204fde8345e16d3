"""The one exact cascade (``trajspin.exact.cascade``) against references that do not use it.

Up to e144d97 the package held two zero-temperature cascades: ``master._Cascade`` /
``_steady_paper`` for the paper model and ``general.LoweringCascade`` / ``cascade_stationary``
for everything else.  Before the first pair was deleted, the e144d97 paper path and the
survivor ran on every paper chain of this file and of tests/test_master.py (41 log-spaced times
in 1e-4..1e4 and t = 0; steady state with blocks).  Largest differences: <J_i^z> 2.8e-14
((150, 3)), sector populations 2.2e-16, jump rates 4.5e-13 ((150, 3), rates ~1e3); steady
state (<J_i^z>, populations, blocks) bitwise equal; same steps and sweeps.  The general path
(local reservoirs, schedules, temperature, mixtures) stayed bitwise equal.

The survivor is checked here against

* tests/naive.py: the dense Lindblad equation on the full space (small chains);
* ``_block_reference``: expm_multiply (scipy, Al-Mohy & Higham) of the Liouvillian of eq. (1)
  of ``trajspin.exact.cascade`` in the Dicke basis, built in this file from the sector tables
  of ``trajspin.sectors`` — no eigenbasis, no implicit Euler, no extrapolation, no numba.
  It agrees with dense scipy.linalg.expm of the same matrix to <= 3e-14 for t <= 1 on
  (6, 3, 2) and (40, 2);
* closed forms: two spins (paper eq. 1) in time, eq. S8 for (N, 1), and the two-domain
  total-spin decomposition ``trajspin.exact.two_domain.two_domain_steady``.

Tolerances.  The cascade keeps the local error of each step below TOL = 1e-12 (largest
block entry) over ~10^3 steps.  Measured against these references in time: sector
populations <= 3.1e-12, <J_i^z>/N_i <= 5.2e-13 (the error of <J_i^z>/N_i is at most the summed
error of the populations of the basis states, as n_i/N_i <= 1); at t -> infinity (one pass,
no time steps) <J_i^z> and populations <= 2.4e-13.  Bounds: TIME_TOL = 1e-11 on populations
and on <J_i^z>/N_i, STEADY_TOL = 1e-12 on <J_i^z> and populations.  tests/naive.py is used
for t <= 100 only: its dense expm loses the trace by ~1e-12 at t = 1e4.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import expm_multiply

import naive
import trajspin
from trajspin import Chain
from trajspin.exact.two_domain import two_domain_steady

TIME_TOL = 1e-11
STEADY_TOL = 1e-12


def _block_reference(chain, initial, times):
    """<J_i^z> (T, M) and sector populations (T, K0 + 1) from expm_multiply of eq. (1).

    rho_K is vectorised row-major (d_K^2 entries); the generator of the blocks K = 0..K0 is
    -1/2 (G_K x I + I x G_K) on the diagonal and gamma_c L_c x L_c from sector K + 1 to K.
    """
    basis = chain.sectors
    K0, pos = basis.index_of(initial)
    dims = [basis.dim(K) for K in range(K0 + 1)]
    off = np.concatenate([[0], np.cumsum(np.square(dims))])
    rows = [[None] * (K0 + 1) for _ in range(K0 + 1)]
    for K in range(K0 + 1):
        G = sp.csr_matrix(basis.generator(K))
        eye = sp.identity(dims[K], format="csr")
        rows[K][K] = -0.5 * (sp.kron(G, eye) + sp.kron(eye, G))
        if K < K0:
            rows[K][K + 1] = sum(g * sp.kron(L, L)
                                 for g, L in zip(chain.gamma, basis.jump_matrices(K + 1)))
    A = sp.bmat(rows, format="csr")
    x0 = np.zeros(A.shape[0])
    x0[off[K0] + pos * dims[K0] + pos] = 1.0
    jz = np.zeros((len(times), chain.M))
    pops = np.zeros((len(times), K0 + 1))
    for k, t in enumerate(times):
        x = expm_multiply(A * t, x0) if t > 0 else x0
        for K, d in enumerate(dims):
            diag = np.diag(x[off[K]:off[K + 1]].reshape(d, d))
            pops[k, K] = diag.sum()
            jz[k] += diag @ basis.number_diagonals(K)
        jz[k] -= 0.5 * np.asarray(chain.sizes, dtype=float)
    return jz, pops


def _slowest_rate(chain, K0):
    """Smallest positive eigenvalue of G_K over K <= K0: coherences (dark, bright) decay at half."""
    lam = [chain.sectors.spectrum(K)[0] for K in range(1, K0 + 1)]
    return min(float(np.min(v[v > 0])) for v in lam if np.any(v > 0))


# --------------------------------------------------------------------------- closed forms
def test_two_spins_in_time():
    """Paper eq. (1): |10> = (|T> + |S>)/sqrt 2, |T> decays at 2 gamma, the coherence at gamma:
    n_A = (1 + e^{-t})^2 / 4, n_B = (1 - e^{-t})^2 / 4, P_1 = (1 + e^{-2t}) / 2."""
    t = np.concatenate([[0.0], np.logspace(-4, 2, 25)])
    res = trajspin.solve_master(Chain([1, 1]), t)
    e = np.exp(-t)
    np.testing.assert_allclose(res.jz[:, 0], (1 + e) ** 2 / 4 - 0.5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.jz[:, 1], (1 - e) ** 2 / 4 - 0.5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.sector_populations[:, 1], (1 + e**2) / 2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.sector_populations[:, 0], (1 - e**2) / 2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("N1", list(range(1, 13)) + [40])
def test_eq_S8_through_the_cascade(N1):
    """(N_1, 1): <J_2^z>(inf) = (N_1^2 - 2 N_1 - 1) / (2 (N_1 + 1)^2); keep_blocks forces the
    cascade (without it two domains take the total-spin closed form)."""
    res = trajspin.steady_state(Chain([N1, 1]), keep_blocks=True)
    assert res.meta["solver"] == "sector cascade (direct)"
    exact = (N1**2 - 2 * N1 - 1) / (2 * (N1 + 1) ** 2)
    assert abs(res.jz[1] - exact) <= STEADY_TOL


@pytest.mark.parametrize("sizes", [(40, 2), (10, 5), (12, 6), (150, 3), (7, 40), (4, 4)])
def test_two_domain_steady_state_through_the_cascade(sizes):
    res = trajspin.steady_state(Chain(sizes), keep_blocks=True)
    assert res.meta["solver"] == "sector cascade (direct)"
    jz, pops = two_domain_steady(*sizes)
    np.testing.assert_allclose(res.jz, jz, rtol=0, atol=STEADY_TOL)
    full = np.zeros(res.sector_populations.size)
    full[:pops.size] = pops
    np.testing.assert_allclose(res.sector_populations, full, rtol=0, atol=STEADY_TOL)


# --------------------------------------------------------------------------- dense Lindblad
@pytest.mark.parametrize("sizes, gamma, initial", [
    ((3, 2, 1), 1.0, None),
    ((3, 1, 2), [2.0, 1.0], (2, 1, 0)),
    ((5, 2), 0.7, None),
])
def test_small_chains_match_dense_lindblad(sizes, gamma, initial):
    chain = Chain(sizes, gamma=gamma)
    n0 = initial if initial else chain.default_excitations()
    t = np.concatenate([[0.0], np.logspace(-4, 2, 9)])
    res = trajspin.solve_master(chain, t, initial=initial)
    psi0 = naive.basis_state(sizes, n0)
    ref = naive.solve_naive(sizes, t, gamma=gamma, psi0=psi0)
    K_of = np.array([sum(n) for n in np.ndindex(*[N + 1 for N in sizes])])
    pops = np.array([np.bincount(K_of, weights=np.diag(r).real)[:sum(n0) + 1] for r in ref["rho"]])
    np.testing.assert_allclose(res.jz / sizes, ref["jz"] / sizes, rtol=0, atol=TIME_TOL)
    np.testing.assert_allclose(res.sector_populations, pops, rtol=0, atol=TIME_TOL)
    ss = trajspin.steady_state(chain, initial=initial, keep_blocks=True)    # the cascade
    assert ss.meta["solver"] == "sector cascade (direct)"
    ref_jz, ref_rho = naive.steady_naive(sizes, gamma=gamma, psi0=psi0)
    np.testing.assert_allclose(ss.jz, ref_jz, rtol=0, atol=STEADY_TOL)
    ref_pops = np.bincount(K_of, weights=np.diag(ref_rho).real)[:sum(n0) + 1]
    np.testing.assert_allclose(ss.sector_populations, ref_pops, rtol=0, atol=STEADY_TOL)


# --------------------------------------------------------------------------- paper chains
PAPER = [((40, 2), None, 3.0), ((12, 6, 2), None, 1.0), ((8, 6, 5, 1), None, 1.0),
         ((6, 3, 2), None, 10.0), ((10, 5), None, 3.0), ((4, 4, 4), None, 10.0),
         ((12, 6, 2), (6, 0, 0), 1.0)]


@pytest.mark.parametrize("sizes, initial, t_max", PAPER)
def test_paper_chains_match_block_expm(sizes, initial, t_max):
    """solve_master on a log grid 1e-4..t_max (the fast part of the dynamics; the tail is
    checked at t -> infinity below) against ``_block_reference``."""
    chain = Chain(sizes)
    n0 = initial if initial else chain.default_excitations()
    t = np.concatenate([[0.0], np.logspace(-4, np.log10(t_max), 9)])
    res = trajspin.solve_master(chain, t, initial=initial)
    jz, pops = _block_reference(chain, n0, t)
    np.testing.assert_allclose(res.jz / sizes, jz / sizes, rtol=0, atol=TIME_TOL)
    np.testing.assert_allclose(res.sector_populations, pops, rtol=0, atol=TIME_TOL)


@pytest.mark.parametrize("sizes, initial", [(s, i) for s, i, _ in PAPER if len(s) > 2])
def test_paper_steady_state_matches_long_time_block_expm(sizes, initial):
    """steady_state against ``_block_reference`` at t = 64 / lam_min: every decaying element
    has fallen by e^{-32} (1e-14) or more."""
    chain = Chain(sizes)
    n0 = initial if initial else chain.default_excitations()
    K0 = int(sum(n0))
    ss = trajspin.steady_state(chain, initial=initial, keep_blocks=True)
    jz, pops = _block_reference(chain, n0, [64.0 / _slowest_rate(chain, K0)])
    np.testing.assert_allclose(ss.jz, jz[0], rtol=0, atol=STEADY_TOL)
    np.testing.assert_allclose(ss.sector_populations, pops[0], rtol=0, atol=STEADY_TOL)
