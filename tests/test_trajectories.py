"""Event-driven trajectories against the exact solver, the dense naive unravelling, and themselves.

Statistical checks run at fixed seeds; each states how many standard errors it allows.
Where all sampled trajectories agree (no jump yet), the sample error is 0 while the exact
value still moves by (jump probability) x O(N); the error is then floored at N_i / ntraj,
the resolution one trajectory adds.
"""
import numpy as np
import pytest
from scipy import stats

import naive
import trajspin
from trajspin import Chain, InputError

ZMAX = 5.0     # max |mean - exact| over the grid, in standard errors


def _z(ens, exact):
    sizes = np.asarray(ens.chain.sizes, dtype=float)
    floor = sizes / ens.ntraj
    return np.abs(ens.jz - exact.jz) / np.maximum(ens.jz_err, floor)


@pytest.mark.parametrize("sizes, gamma, ntraj, seed", [
    ((4, 1), 1.0, 20000, 1),
    ((4, 2), [0.5], 20000, 2),
    ((12, 6, 2), 1.0, 8000, 3),
    ((3, 2, 1), [1.0, 2.0], 20000, 4),
    ((2, 2, 2, 1), [1.0, 0.5, 2.0], 20000, 5),
])
def test_ensemble_mean_matches_master_equation(sizes, gamma, ntraj, seed):
    chain = Chain(sizes, gamma=gamma)
    t = np.concatenate([[0.0], np.logspace(-3, 2, 60)])
    ens = trajspin.run_trajectories(chain, t, ntraj, seed=seed, progress=False)
    exact = trajspin.solve_master(chain, t)
    z = _z(ens, exact)
    assert z.max() < ZMAX, (z.max(), np.unravel_index(z.argmax(), z.shape))
    assert np.allclose(ens.jz[0], exact.jz[0])


def test_half_excited_initial_state_matches_master_equation():
    chain = Chain([6, 3, 1])
    t = np.logspace(-2, 2, 30)
    ens = trajspin.run_trajectories(chain, t, 20000, seed=9, initial=(3, 0, 0), progress=False)
    exact = trajspin.solve_master(chain, t, initial=(3, 0, 0))
    assert _z(ens, exact).max() < ZMAX


def test_standard_error_is_honest_and_shrinks_like_inverse_sqrt_n():
    chain = Chain([4, 2])
    t = np.array([0.2, 0.6, 2.0])
    exact = trajspin.solve_master(chain, t)
    # independent seeds: z-scores should have unit spread
    zs = []
    for seed in range(30):
        e = trajspin.run_trajectories(chain, t, 1000, seed=100 + seed, progress=False)
        zs.append(((e.jz - exact.jz) / e.jz_err).ravel())
    rms = np.sqrt(np.mean(np.concatenate(zs) ** 2))
    assert 0.75 < rms < 1.25, rms        # 180 z-values: the rms is 1 +- 0.05
    small = trajspin.run_trajectories(chain, t, 1000, seed=7, progress=False)
    big = trajspin.run_trajectories(chain, t, 16000, seed=7, progress=False)
    ratio = small.jz_err / big.jz_err
    assert np.all((ratio > 3.4) & (ratio < 4.6)), ratio     # sqrt(16) = 4


@pytest.mark.parametrize("sizes", [(4, 1), (6, 3, 1), (2, 2, 1, 1)])
def test_final_excitation_matches_exact_steady_sector_weights(sizes):
    chain = Chain(sizes)
    ntraj = 20000
    ens = trajspin.run_trajectories(chain, [1e4], ntraj, seed=11, progress=False)
    p = trajspin.steady_state(chain).sector_populations
    counts = ens.final_excitation_counts
    keep = p > 1e-12
    assert counts[~keep].sum() == 0
    chi2 = np.sum((counts[keep] - ntraj * p[keep]) ** 2 / (ntraj * p[keep]))
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3, (counts, ntraj * p)


@pytest.mark.parametrize("sizes, gamma", [((1, 1), 1.0), ((2, 1), 1.0), ((1, 1, 1), [1.0, 0.5])])
def test_event_driven_sampler_matches_naive_time_stepping(sizes, gamma):
    """First-jump time and number of jumps: same distributions as the full-space dt unravelling."""
    tmax, dt, n = 8.0, 2e-3, 600
    ref = naive.naive_jump_statistics(sizes, gamma, tmax, dt, n, seed=5)
    chain = Chain(sizes, gamma=gamma)
    first, njumps = [], []
    for k in range(4000):
        tr = trajspin.trajectory(chain, [tmax], seed=21, index=k)
        first.append(tr.jump_times[0] if tr.jump_times.size else np.inf)
        njumps.append(np.sum(tr.jump_times <= tmax))
    first, njumps = np.array(first), np.array(njumps)
    # naive jumps land at the end of their dt step: shift back by dt/2 on average
    a = ref["first_jump_time"][np.isfinite(ref["first_jump_time"])] - dt / 2
    b = first[np.isfinite(first)]
    assert stats.ks_2samp(a, b).pvalue > 1e-3
    kmax = max(njumps.max(), ref["njumps"].max()) + 1
    table = np.array([np.bincount(ref["njumps"], minlength=kmax), np.bincount(njumps, minlength=kmax)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] > 1:
        assert stats.chi2_contingency(table)[1] > 1e-3


def test_same_seed_and_index_give_the_identical_trajectory_in_any_order():
    chain = Chain([12, 6, 2])
    t = np.logspace(-3, 2, 50)
    a = trajspin.trajectory(chain, t, seed=4, index=17)
    for k in (3, 99, 0):
        trajspin.trajectory(chain, t, seed=4, index=k)
    b = trajspin.trajectory(chain, t, seed=4, index=17)
    assert np.array_equal(a.jz, b.jz) and np.array_equal(a.jump_times, b.jump_times)
    assert np.array_equal(a.jump_channels, b.jump_channels)
    c = trajspin.trajectory(chain, t, seed=5, index=17)
    d = trajspin.trajectory(chain, t, seed=4, index=18)
    assert not np.array_equal(a.jump_times, c.jump_times)
    assert not np.array_equal(a.jump_times, d.jump_times)


def test_ensemble_is_bitwise_reproducible_and_merges_exactly():
    chain = Chain([6, 3, 1])
    t = np.logspace(-2, 2, 20)
    a = trajspin.run_trajectories(chain, t, 1000, seed=8, progress=False)
    b = trajspin.run_trajectories(chain, t, 1000, seed=8, progress=False)
    assert np.array_equal(a.jz_sum, b.jz_sum) and np.array_equal(a.jz_sumsq, b.jz_sumsq)
    other = trajspin.run_trajectories(chain, t, 1000, seed=9, progress=False)
    assert not np.array_equal(a.jz_sum, other.jz_sum)
    # [0, 512) + [512, 1000) by run_chunk equals the whole run (chunk boundaries at 256)
    from trajspin.trajectories import run_chunk
    K0, pos = chain.sectors.index_of(chain.default_excitations())
    first = run_chunk(chain, t, 8, 0, 512, K0, pos)
    second = run_chunk(chain, t, 8, 512, 1000, K0, pos)
    from trajspin.results import EnsembleResult
    ea = EnsembleResult(chain, t, 8, first.jz_sum, first.jz_sumsq, 512, first.final_counts,
                        first.ndark, first.njumps, [[0, 512]],
                        meta=a.meta)
    eb = EnsembleResult(chain, t, 8, second.jz_sum, second.jz_sumsq, 488, second.final_counts,
                        second.ndark, second.njumps,
                        [[512, 1000]], meta=a.meta)
    merged = eb.merge(ea)
    assert merged.ntraj == 1000 and merged.index_ranges.tolist() == [[0, 1000]]
    np.testing.assert_allclose(merged.jz, a.jz, rtol=1e-13, atol=1e-13)
    assert np.array_equal(merged.final_excitation_counts, a.final_excitation_counts)
    with pytest.raises(InputError, match="overlap"):
        ea.merge(ea)


def test_single_trajectory_record_and_energy_balance():
    chain = Chain([12, 6, 2])
    for k in range(50):
        tr = trajspin.trajectory(chain, [0.0, 1.0, 1e4], seed=1, index=k)
        assert np.all(np.diff(tr.jump_times) > 0)
        assert set(tr.jump_channels.tolist()) <= {0, 1}
        # T = 0: every jump takes exactly one quantum
        assert tr.excitation_left + tr.jump_times.size == 12
        assert tr.dark == (tr.excitation_left > 0)
        assert abs(np.linalg.norm(tr.final_state) - 1) < 1e-12
        np.testing.assert_allclose(tr.jz[-1], tr.final_jz, atol=1e-9)
        assert abs(tr.final_jz.sum() - (tr.excitation_left - 10)) < 1e-9
    assert "jumps" in str(tr)


def test_target_error_stops_early():
    chain = Chain([4, 2])
    t = np.array([0.5, 1.0])
    ens = trajspin.run_trajectories(chain, t, 256, seed=1, target_err=0.01, progress=False)
    assert ens.ntraj % 256 == 0 and ens.ntraj < 25600
    assert np.max(ens.jz_over_n_err) <= 0.01
    prev = trajspin.run_trajectories(chain, t, ens.ntraj - 256, seed=1, progress=False)
    assert np.max(prev.jz_over_n_err) > 0.01


def test_result_file_round_trip(tmp_path):
    ens = trajspin.run_trajectories(Chain([3, 1]), [0.1, 1.0], 300, seed=2, progress=False)
    back = trajspin.load(ens.save(tmp_path / "e.npz"))
    assert np.array_equal(back.jz, ens.jz) and np.array_equal(back.jz_err, ens.jz_err)
    assert back.ntraj == 300 and back.seed == 2 and "± standard error" in str(back)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(ntraj=0), "ntraj"), (dict(ntraj=-5), "ntraj"), (dict(ntraj=2.5), "ntraj"),
    (dict(seed=-1), "seed"), (dict(target_err=-1.0), "target_err"), (dict(chunk=0), "chunk"),
])
def test_bad_ensemble_input(kwargs, msg):
    args = dict(ntraj=10, seed=0)
    args.update(kwargs)
    with pytest.raises(InputError, match=msg):
        trajspin.run_trajectories(Chain([2, 1]), [1.0], progress=False, **args)


def test_bad_trajectory_input():
    with pytest.raises(InputError, match="strictly increasing"):
        trajspin.trajectory(Chain([2, 1]), [1.0, 0.5])
    with pytest.raises(InputError, match="index"):
        trajspin.trajectory(Chain([2, 1]), [1.0], index=-1)
