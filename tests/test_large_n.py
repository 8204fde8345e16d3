"""Exact trajectories at 10^5-10^6 spins: every jump counted, every trajectory in its final sector.

For two domains L = J_1^- + J_2^- lowers the total spin J = J_1 + J_2 only, so a trajectory
from |j_1, j_1>|j_2, -j_2> (paper eq. 4) ends in |J, -J> with K_final = N_2 + (j_1 - j_2 - J)
quanta left, after N_1 - N_2 jumps when J = j_1 - j_2 (probability (N_1 - N_2 + 1)/(N_1 + 1),
0.9999 and more here).  In |J, M> the projection theorem gives

    <J_2^z> = M [J(J+1) + j_2(j_2+1) - j_1(j_1+1)] / (2 J (J+1)),   <J_1^z> = M - <J_2^z>.

Before the fix the Lanczos path stored excitation numbers as int16: from N_1 = 32768 on they
wrapped, which crashed (segmentation fault) or sent trajectories to the wrong sector.
"""
import itertools
import time

import numpy as np
import pytest

import trajspin
from trajspin import Chain, InputError, steady_state, trajectory
from trajspin.resources import check_countable, krylov_memory_estimate
from trajspin.trajectories.lanczos import krylov_trajectory
from trajspin.kernels.matrix_free import build_sector, count_table, rank

TIMES = np.array([0.0, 1e-7, 1e-5, 1e-3, 1.0])


def _dark_jz(N1, N2):
    """<J_i^z> of |J, -J>, J = (N1 - N2)/2, coupled from j_1 = N1/2, j_2 = N2/2."""
    j1, j2 = N1 / 2, N2 / 2
    J = j1 - j2
    jz2 = -J * (J * (J + 1) + j2 * (j2 + 1) - j1 * (j1 + 1)) / (2 * J * (J + 1))
    return np.array([-J - jz2, jz2])


def _check_two_domain(tr, N1, N2):
    assert len(tr.jump_times) == N1 - N2
    assert tr.excitation_left == N2 and tr.dark
    # one quantum per jump, from N_1 down to N_2 + 1, at increasing times
    np.testing.assert_array_equal(tr.jump_excitation, np.arange(N1, N2, -1))
    assert np.all(np.diff(tr.jump_times) >= 0)
    np.testing.assert_allclose(tr.final_jz, _dark_jz(N1, N2), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(tr.jz[-1], _dark_jz(N1, N2), rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("sizes, index", [((100000, 10), 0), ((100000, 10), 1),
                                          ((100000, 2), 0), ((34000, 10), 0)])
def test_lanczos_path_at_1e5_ends_in_the_smallest_total_spin(sizes, index):
    tr = krylov_trajectory(Chain(sizes), TIMES, seed=1, index=index)
    _check_two_domain(tr, *sizes)


def test_lanczos_path_at_1e6_ends_in_the_smallest_total_spin():
    sizes = (1000000, 1)
    tr = trajectory(Chain(sizes), TIMES, seed=9, index=0)     # auto: the Lanczos path
    _check_two_domain(tr, *sizes)


def test_three_domains_beyond_int16_conserve_the_quanta():
    """(40000, 50, 12) crashed with method='auto'; every jump removes one quantum."""
    sizes = (40000, 50, 12)
    tr = trajectory(Chain(sizes), TIMES, seed=1, index=0)
    n = len(tr.jump_times)
    assert n + tr.excitation_left == sizes[0] and tr.dark
    np.testing.assert_array_equal(tr.jump_excitation, np.arange(sizes[0], tr.excitation_left, -1))
    # <J^z_total> = K - N/2 at the end
    assert tr.final_jz.sum() == pytest.approx(tr.excitation_left - sum(sizes) / 2, abs=1e-6)
    assert np.all(np.abs(tr.final_jz) <= np.array(sizes) / 2 + 1e-9)


@pytest.mark.parametrize("sizes", [(3, 2, 1), (1, 1), (5,), (4, 7, 2, 3), (10, 1, 6)])
def test_count_table_counts_every_tuple(sizes):
    s = np.array(sizes, dtype=np.int64)
    K = int(s.sum())
    cum = count_table(s, K)
    for i in range(len(sizes) + 1):
        cnt = np.zeros(K + 1, dtype=np.int64)
        for t in itertools.product(*[range(n + 1) for n in sizes[i:]]):
            cnt[sum(t)] += 1
        np.testing.assert_array_equal(np.diff(cum[i]), cnt)


def test_sector_tables_hold_excitations_beyond_int16():
    sizes = np.array([70000, 3], dtype=np.int64)
    K = 69999
    cum = count_table(sizes, int(sizes.sum()))
    nexc, diag, hop_tgt, hop_amp = build_sector(sizes, np.ones(1), K, cum)
    np.testing.assert_array_equal(nexc[:, 0], K - 3 + np.arange(4))     # lexicographic
    np.testing.assert_array_equal(nexc.sum(axis=1), K)
    assert [rank(n, K, cum) for n in nexc] == list(range(4))
    assert hop_tgt.max() < 4


def test_tables_that_cannot_be_indexed_are_refused_with_the_numbers():
    with pytest.raises(InputError, match=r"1e\+20 Dicke states.*2\*\*62"):
        krylov_memory_estimate(Chain([10**5] * 4))
    assert check_countable(Chain((1000000, 100))).max() == 101


# --------------------------------------------------------------------------- t -> infinity
@pytest.mark.parametrize("sizes", [(4, 2), (12, 6), (3, 5), (40, 7), (7, 40), (200, 30), (1, 1)])
def test_total_spin_steady_state_matches_the_sector_cascade(sizes):
    from trajspin.exact.master import _steady_paper, _resolve
    chain = Chain(sizes, gamma=0.7)
    closed = steady_state(chain)
    assert closed.meta["solver"].startswith("total-spin")
    cascade = _steady_paper(chain, _resolve(chain, None, ("jz",)), ("jz",), [], False)
    np.testing.assert_allclose(closed.jz, cascade.jz, rtol=0, atol=1e-12 * max(sizes))
    assert closed.sector_populations.shape == cascade.sector_populations.shape
    np.testing.assert_allclose(closed.sector_populations, cascade.sector_populations,
                               rtol=0, atol=1e-13)


@pytest.mark.parametrize("N1", [4, 1000, 10**6, 10**9])
def test_total_spin_steady_state_reproduces_eq_s8(N1):
    """N_2 = 1: <J_2^z>(inf) = (N_1^2 - 2N_1 - 1) / (2 (N_1 + 1)^2) (paper eq. S8; 7/50 at N_1 = 4)."""
    res = steady_state(Chain([N1, 1]))
    assert res.jz[1] == pytest.approx((N1**2 - 2 * N1 - 1) / (2 * (N1 + 1) ** 2), rel=1e-12)
    P = res.sector_populations
    assert res.jz.sum() == pytest.approx(np.dot(np.arange(P.size), P) - (N1 + 1) / 2, rel=1e-12)


def test_total_spin_steady_state_at_1e9_spins():
    N1, N2 = 10**9, 10**3
    res = steady_state(Chain([N1, N2]))
    P = res.sector_populations
    assert P.size == N2 + 1 and np.all(P >= 0)
    assert P.sum() == pytest.approx(1.0, abs=1e-12)
    assert P[N2] == pytest.approx((N1 - N2 + 1) / (N1 + 1), rel=1e-12)   # J = j_1 - j_2
    # every surviving J leaves K = N_2 - k quanta; <J^z_total> = <K> - (N_1 + N_2)/2
    assert res.jz.sum() == pytest.approx(np.dot(np.arange(N2 + 1), P) - (N1 + N2) / 2, rel=1e-14)
    np.testing.assert_allclose(res.jz, _dark_jz(N1, N2), rtol=1e-5)   # J_min carries 1 - 1e-6


# --------------------------------------------------------------------------- bounds before work
@pytest.mark.parametrize("call", [
    lambda: trajectory(Chain([10**10, 2]), [0.0, 1.0]),
    lambda: trajspin.run_trajectories(Chain([10**10, 2]), [0.0, 1.0], ntraj=2, progress=False),
    lambda: trajspin.solve_master(Chain([10**10, 2]), [0.0, 1.0]),
    lambda: steady_state(Chain([10**10, 2, 1])),
    lambda: trajspin.estimate(Chain([10**10, 2])),
    lambda: trajectory(Chain([10**6, 10]), [0.0, 1.0], initial=["up:500000", 0]),
])
def test_oversized_chains_are_refused_in_one_line_before_allocating(call):
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"needs about [0-9.]+ GiB but only"):
        call()
    assert time.perf_counter() - t0 < 10.0


def test_two_domain_steady_state_needs_no_vector_of_n1():
    res = steady_state(Chain([10**10, 10]))
    assert res.jz[1] / 10 == pytest.approx(0.5 * (1 - 1e-9), rel=1e-9)
    assert res.sector_populations.size == 11


# --------------------------------------------------------------------------- budgets, progress
@pytest.mark.parametrize("call", [
    lambda: steady_state(Chain([10000, 100, 10]), max_seconds=60),
    lambda: trajspin.run_trajectories(Chain([10**6, 100]), [0.0, 1.0], 100, max_seconds=60,
                                      progress=False),
    lambda: trajspin.solve_master(Chain([2000, 50, 5]), [0.0, 1.0], max_seconds=1),
])
def test_a_run_over_its_budget_is_refused_before_it_starts(call):
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"estimated at [0-9.e+]+ s.*> max_seconds"):
        call()
    assert time.perf_counter() - t0 < 10.0


def test_a_run_within_its_budget_runs_and_shows_sectors_done(capsys):
    res = steady_state(Chain([30, 10, 3]), max_seconds=600, progress=True)
    assert res.meta["solver"] == "sector cascade (direct)"
    assert "steady: 31/31 (100.0%)" in capsys.readouterr().err     # a log: one line at the end
    with pytest.raises(InputError, match="max_seconds"):
        steady_state(Chain([30, 10, 3]), max_seconds=-1)
