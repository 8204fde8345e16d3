"""Exact block solver against closed forms and the dense reference (tests/naive.py)."""
import numpy as np
import pytest

import naive
import trajspin
from trajspin import Chain, InputError

STIFF_GRID = np.concatenate([[0.0], np.logspace(-4, 4, 33)])


@pytest.mark.parametrize("N1", range(1, 13))
def test_eq_S8_steady_state(N1):
    """Paper eq. S8: <J_2^z>(inf) = (N1^2 - 2 N1 - 1) / (2 (N1 + 1)^2) for sizes (N1, 1)."""
    exact = (N1**2 - 2 * N1 - 1) / (2 * (N1 + 1) ** 2)
    assert abs(trajspin.steady_state(Chain([N1, 1])).jz[1] - exact) < 1e-10
    assert abs(trajspin.solve_master(Chain([N1, 1]), [1e4]).jz[0, 1] - exact) < 1e-10


def test_paper_two_spin_example():
    """Paper eq. (1): spins A, B from |1>|0>: n_B(inf) = 1/4, i.e. <J_2^z> = -1/4."""
    assert abs(trajspin.steady_state(Chain([1, 1])).jz[1] + 0.25) < 1e-12


@pytest.mark.parametrize("sizes, gamma, initial", [
    ((3, 2), 1.0, None),
    ((4, 1), 0.5, None),
    ((2, 2, 1), [1.0, 0.3], None),
    ((3, 1, 2), [2.0, 1.0], (2, 1, 0)),
    ((2, 1, 1, 1), [1.0, 0.5, 2.0], None),
    ((1, 2, 1, 1), 1.0, (1, 1, 0, 1)),
])
def test_block_solver_matches_dense_lindblad(sizes, gamma, initial):
    chain = Chain(sizes, gamma=gamma)
    res = trajspin.solve_master(chain, STIFF_GRID, initial=initial)
    psi0 = naive.basis_state(sizes, initial if initial else chain.default_excitations())
    ref = naive.solve_naive(sizes, STIFF_GRID, gamma=gamma, psi0=psi0)
    err = np.abs(res.jz - ref["jz"]) / np.asarray(sizes)
    assert err.max() < 1e-8, err.max()
    assert np.abs(res.trace - 1).max() < 1e-10


def test_trace_and_sector_populations_conserved_at_long_times():
    chain = Chain([12, 6, 2])
    t = np.logspace(-4, 4, 200)
    res = trajspin.solve_master(chain, t)
    assert np.abs(res.trace - 1).max() < 1e-10
    assert np.all(res.sector_populations > -1e-10)
    ss = trajspin.steady_state(chain)
    np.testing.assert_allclose(res.jz[-1], ss.jz, atol=1e-9)
    np.testing.assert_allclose(res.sector_populations[-1], ss.sector_populations, atol=1e-10)


@pytest.mark.parametrize("sizes, initial", [((3, 2, 1), None), ((2, 1, 1, 1), None),
                                            ((4, 3), (2, 1))])
def test_steady_state_matches_dense_kernel_projection(sizes, initial):
    chain = Chain(sizes)
    psi0 = naive.basis_state(sizes, initial if initial else chain.default_excitations())
    ref_jz, ref_rho = naive.steady_naive(sizes, psi0=psi0)
    ss = trajspin.steady_state(chain, initial=initial, keep_blocks=True)
    np.testing.assert_allclose(ss.jz, ref_jz, atol=1e-10)
    # blocks agree element by element
    basis = chain.sectors
    for K, block in enumerate(ss.blocks):
        if block is None:
            continue
        idx = [int(np.ravel_multi_index(tuple(n), [N + 1 for N in sizes]))
               for n in basis.sector(K).states]
        np.testing.assert_allclose(block, ref_rho[np.ix_(idx, idx)].real, atol=1e-10)


def test_times_need_not_start_at_zero_and_match_a_grid_with_zero():
    chain = Chain([5, 2, 1])
    a = trajspin.solve_master(chain, [0.0, 0.3, 2.0, 50.0])
    b = trajspin.solve_master(chain, [0.3, 2.0, 50.0])
    np.testing.assert_allclose(a.jz[1:], b.jz, atol=1e-11)
    assert np.allclose(a.jz[0], [2.5, -1.0, -0.5])


@pytest.mark.parametrize("times, msg", [
    ([0.0, 1.0, 0.5], "strictly increasing"),
    ([1.0, 1.0], "strictly increasing"),
    ([-1.0, 1.0], ">= 0"),
    ([0.0, np.inf], "finite"),
    ([], "non-empty"),
    ([[0.0, 1.0]], "1-d"),
])
def test_bad_time_grids(times, msg):
    with pytest.raises(InputError, match=msg):
        trajspin.solve_master(Chain([2, 1]), times)


@pytest.mark.parametrize("initial, msg", [((5, 0), "0..4"), ((1, 2, 3), "one excitation number"),
                                          ((1.5, 0), "integers"), ("ab", "sequence")])
def test_bad_initial_states(initial, msg):
    with pytest.raises(InputError, match=msg):
        trajspin.solve_master(Chain([4, 1]), [1.0], initial=initial)


def test_result_round_trips_through_file(tmp_path):
    res = trajspin.solve_master(Chain([4, 2], gamma=[0.5]), [0.0, 1.0, 10.0])
    path = res.save(tmp_path / "m.npz")
    back = trajspin.load(path)
    assert back.chain == res.chain
    assert np.array_equal(back.jz, res.jz) and np.array_equal(back.times, res.times)
    assert back.meta["initial"] == [4, 0]
    assert "D1 (N=4)" in str(back)


def test_memory_refusal_before_work(monkeypatch):
    import trajspin.validation as v
    monkeypatch.setattr(v, "available_memory", lambda: 1000)
    with pytest.raises(InputError, match="needs about .* GiB but only"):
        trajspin.solve_master(Chain([12, 6, 2]), [1.0])


def test_deep_superradiant_cascade_with_short_steps_stays_exact():
    """Regression: a rational exponential per output step failed here by O(1) for (1000, 10).

    Many short steps during the superradiant burst must agree with one long step and keep the trace.
    """
    chain = Chain([150, 3])
    many = trajspin.solve_master(chain, np.linspace(0.004, 0.08, 20))
    one = trajspin.solve_master(chain, [0.08])
    assert np.abs(many.trace - 1).max() < 1e-10
    assert np.abs(many.jz[-1] - one.jz[0]).max() < 1e-8 * 150


def test_jump_rates_match_dense_reference_and_energy_balance():
    """gamma_c <L_c^dag L_c>(t) against the dense operators; at T = 0 the total rate is -dK/dt."""
    sizes, gamma = (3, 2, 1), [1.0, 0.4]
    chain = Chain(sizes, gamma=gamma)
    t = np.array([0.05, 0.3, 1.0, 3.0])
    res = trajspin.solve_master(chain, t)
    ref = naive.solve_naive(sizes, t, gamma=gamma)
    Ls = naive.channel_jump_operators(sizes)
    for k, rho in enumerate(ref["rho"]):
        exact = [g * np.trace(L.T @ L @ rho).real for g, L in zip(gamma, Ls)]
        np.testing.assert_allclose(res.jump_rates[k], exact, atol=1e-9)
    # mean excitation K decreases at exactly the total jump rate
    dense = np.logspace(-2, 1, 400)
    r2 = trajspin.solve_master(chain, dense)
    K = r2.sector_populations @ np.arange(r2.sector_populations.shape[1])
    dKdt = np.gradient(K, dense)
    np.testing.assert_allclose(-dKdt[5:-5], r2.jump_rates.sum(axis=1)[5:-5], rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("scale", [1e-11, 1e6])
def test_rate_scale_only_rescales_time(scale):
    """gamma -> s gamma, t -> t / s leaves everything unchanged (no absolute cutoffs anywhere)."""
    t = np.array([0.0, 0.05, 0.5, 5.0, 1e3])
    ref = trajspin.solve_master(Chain([4, 2, 1], gamma=[1.0, 0.5]), t)
    got = trajspin.solve_master(Chain([4, 2, 1], gamma=[scale, 0.5 * scale]), t / scale)
    np.testing.assert_allclose(got.jz, ref.jz, atol=1e-9)
    np.testing.assert_allclose(trajspin.steady_state(Chain([4, 1], gamma=scale)).jz,
                               trajspin.steady_state(Chain([4, 1])).jz, atol=1e-10)
    a = trajspin.run_trajectories(Chain([4, 1], gamma=scale), t / scale, 500, seed=3, progress=False)
    b = trajspin.run_trajectories(Chain([4, 1]), t, 500, seed=3, progress=False)
    np.testing.assert_allclose(a.jz, b.jz, atol=1e-9)
