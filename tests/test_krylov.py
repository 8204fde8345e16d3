"""The matrix-free (Lanczos) trajectory path against the dense path, the exact solver and itself.

Same (seed, index) means the same random numbers, so the Lanczos and the dense samplers must
give the same jump record (channels exactly, times to the stated tolerance).  Statistical checks
run at fixed seeds and state how many standard errors they allow (floored at N_i / ntraj where
every trajectory agrees, as in test_trajectories.py).
"""
import numpy as np
import pytest
from scipy import stats

import trajspin
from trajspin import Chain, InputError
from trajspin.resources import choose_method, krylov_memory_estimate
from trajspin.trajectories.lanczos import (KrylovOptions, KrylovSectors, krylov_trajectory,
                                           run_chunk_krylov)
from trajspin.kernels.matrix_free import apply_generator
from trajspin.kernels.lanczos import (_err_bound, _safe_step, _tridiag_eig,
                                     lanczos)

ZMAX = 5.0
T_GRID = np.concatenate([[0.0], np.logspace(-3, 2, 40)])


def _dense_matrix(tab):
    nexc, diag, hop_tgt, hop_amp = tab
    d = diag.size
    G = np.zeros((d, d))
    e, y = np.zeros(d), np.empty(d)
    for s in range(d):
        e[:] = 0.0
        e[s] = 1.0
        apply_generator(diag, hop_tgt, hop_amp, e, y)
        G[:, s] = y
    return G


@pytest.mark.parametrize("sizes, gamma", [((4, 1), 1.0), ((12, 6, 2), [1.0, 0.5]),
                                          ((3, 2, 2, 1), [1.0, 2.0, 0.7]), ((2, 1, 2, 1, 1), 1.0)])
def test_matrix_free_tables_match_the_sector_basis(sizes, gamma):
    chain = Chain(sizes, gamma=gamma)
    ks = KrylovSectors(chain)
    assert np.array_equal(ks.dims, trajspin.sectors.sector_dims(sizes))
    for K in range(sum(sizes) + 1):
        tab = ks.table(K)
        assert np.array_equal(tab[0], chain.sectors.sector(K).states)
        G0 = chain.sectors.generator(K)
        assert np.allclose(_dense_matrix(tab), G0, rtol=0, atol=1e-12 * max(1.0, abs(G0).max()))


def test_error_bound_bounds_the_true_error_and_is_not_vacuous():
    chain = Chain((12, 6, 2))
    K = 10
    tab = KrylovSectors(chain).table(K)
    G = chain.sectors.generator(K)
    lam, V = np.linalg.eigh(G)
    rng = np.random.default_rng(3)
    u = rng.standard_normal(G.shape[0])
    u /= np.linalg.norm(u)
    for m in (4, 8, 16):
        Q = np.zeros((m + 1, u.size))
        Q[0] = u
        alpha, beta = np.zeros(m), np.zeros(m)
        assert lanczos(tab[1], tab[2], tab[3], Q, alpha, beta, 0, m) == m
        theta, S = _tridiag_eig(alpha, beta, m, 0.0)
        c = S[m - 1] * S[0]
        for h in np.logspace(-4, 1, 30):
            exact = V @ (np.exp(-0.5 * lam * h) * (V.T @ u))
            approx = Q[:m].T @ (S @ (np.exp(-0.5 * theta * h) * S[0]))
            err = np.linalg.norm(exact - approx)
            bound = _err_bound(c, theta, beta[m - 1], h)
            assert err <= bound * (1 + 1e-6) + 1e-14, (m, h, err, bound)
        w = S[0] ** 2
        for tol in (1e-11, 1e-9, 1e-7):
            h = _safe_step(w, c, theta, beta[m - 1], tol)
            exact = V @ (np.exp(-0.5 * lam * h) * (V.T @ u))
            approx = Q[:m].T @ (S @ (np.exp(-0.5 * theta * h) * S[0]))
            ratio = np.linalg.norm(exact - approx) / (tol * np.linalg.norm(approx))
            # within tol, and tight where the steps are taken (not vacuous): the bound is loose
            # only at long times, where ||exp(-G (h - s) / 2)|| <= 1 overestimates
            assert 0.3 < ratio <= 1.0, (m, tol, ratio)


@pytest.mark.parametrize("sizes, gamma, initial", [
    ((12, 6, 2), 1.0, None),
    ((8, 6, 5, 1), [1.0, 0.7, 1.3], None),
    ((20, 10, 4), 1.0, None),
    ((6, 3, 1), 1.0, (3, 0, 0)),
    ((16, 8, 4, 2, 1), 1.0, None),
])
def test_same_seed_and_index_give_the_dense_jump_record(sizes, gamma, initial):
    chain = Chain(sizes, gamma=gamma)
    n, agree, worst = 60, 0, 0.0
    for idx in range(n):
        a = trajspin.trajectory(chain, T_GRID, 17, idx, initial=initial)
        b = krylov_trajectory(chain, T_GRID, 17, idx, initial=initial)
        same = (np.array_equal(a.jump_channels, b.jump_channels) and a.dark == b.dark
                and a.excitation_left == b.excitation_left)
        if same and len(a.jump_times):
            rel = np.max(np.abs(a.jump_times - b.jump_times) / a.jump_times)
            worst = max(worst, rel)
            same = rel < 1e-8
        if same:
            assert np.allclose(a.jz, b.jz, rtol=0, atol=1e-8 * max(sizes))
            assert np.allclose(a.final_jz, b.final_jz, rtol=0, atol=1e-8 * max(sizes))
            assert np.allclose(a.jz_before, b.jz_before, rtol=0, atol=1e-8 * max(sizes))
            assert np.allclose(a.jz_after, b.jz_after, rtol=0, atol=1e-8 * max(sizes))
            for field in ("jump_reservoirs", "jump_directions", "quanta", "reservoirs_open"):
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
            assert a.final_sizes == b.final_sizes and set(a.observables) == set(b.observables)
        agree += same
        assert b.p_error_bound <= 1e-10
    # measured: every one agrees, jump times to ~3e-11 relative
    assert agree >= n - 1, (agree, worst)


def test_forced_restarts_keep_the_dense_record_within_the_accumulated_bound():
    # Krylov spaces of 4 vectors: ~1800 restarts per trajectory instead of ~15
    chain = Chain((12, 6, 2))
    opt = KrylovOptions(m_max=4, m_check=2)
    segments = jumps = 0
    for idx in range(30):
        a = trajspin.trajectory(chain, T_GRID, 5, idx)
        b = krylov_trajectory(chain, T_GRID, 5, idx, options=opt)
        assert np.array_equal(a.jump_channels, b.jump_channels) and a.dark == b.dark
        # measured: rel. error of the jump times <= 4.2e-9 with p error bounds <= 2e-9
        assert b.p_error_bound < 1e-8
        assert np.max(np.abs(a.jump_times - b.jump_times) / a.jump_times) < 1e-7
        assert np.allclose(a.jz, b.jz, rtol=0, atol=1e-6)
        segments += b.segments
        jumps += len(b.jump_times)
    assert segments > 50 * jumps


def test_without_a_table_cache_the_trajectory_is_bitwise_the_same():
    chain = Chain((8, 6, 5, 1))
    a = krylov_trajectory(chain, T_GRID, 4, 2)
    b = krylov_trajectory(Chain((8, 6, 5, 1)), T_GRID, 4, 2, options=KrylovOptions(cache_bytes=0))
    assert np.array_equal(a.jz, b.jz) and np.array_equal(a.jump_times, b.jump_times)
    assert np.array_equal(a.final_state, b.final_state)


def _z(mean, err, exact, sizes, n):
    return np.abs(mean - exact) / np.maximum(err, np.asarray(sizes, float) / n)


@pytest.mark.parametrize("sizes, gamma, ntraj, seed", [
    ((12, 6, 2), 1.0, 3000, 3),
    ((3, 2, 2, 1), [1.0, 0.5, 2.0], 6000, 5),
])
def test_ensemble_mean_matches_master_equation(sizes, gamma, ntraj, seed):
    chain = Chain(sizes, gamma=gamma)
    part = run_chunk_krylov(chain, T_GRID, seed, 0, ntraj)
    s, s2, counts, njumps = part.jz_sum, part.jz_sumsq, part.final_counts, part.njumps
    mean = s / ntraj
    err = np.sqrt(np.maximum(s2 / ntraj - mean**2, 0.0) / (ntraj - 1))
    exact = trajspin.solve_master(chain, T_GRID)
    z = _z(mean, err, exact.jz, sizes, ntraj)
    assert z.max() < ZMAX, (z.max(), np.unravel_index(z.argmax(), z.shape))
    assert counts.sum() == ntraj and 0 < njumps <= ntraj * sizes[0]


def test_chunks_add_up_and_match_the_dense_ensemble():
    chain = Chain((8, 6, 5, 1), gamma=[1.0, 0.7, 1.3])
    a = run_chunk_krylov(chain, T_GRID, 9, 0, 150)
    b = run_chunk_krylov(chain, T_GRID, 9, 150, 400)
    whole = run_chunk_krylov(chain, T_GRID, 9, 0, 400)
    for x, y, w in zip(a.components(), b.components(), whole.components()):
        assert np.allclose(np.asarray(x) + np.asarray(y), w, rtol=1e-12, atol=1e-12)
    dense = trajspin.run_trajectories(chain, T_GRID, 400, seed=9, progress=False)
    assert np.array_equal(whole.final_counts, dense.final_excitation_counts)
    assert whole.ndark == dense.meta["ndark"] and whole.njumps == dense.meta["njumps_sum"]
    assert np.allclose(whole.jz_sum / 400, dense.jz, rtol=0, atol=1e-8)


def test_dark_state_freezing_reproduces_eq_s8_and_the_steady_sector_weights():
    # (4, 1): <J_2^z>(inf) = (N1^2 - 2 N1 - 1) / (2 (N1 + 1)^2) = 7/50 (paper eq. S8)
    chain = Chain((4, 1))
    ntraj = 20000
    part = run_chunk_krylov(chain, [1e3], 21, 0, ntraj)
    s, s2, counts = part.jz_sum, part.jz_sumsq, part.final_counts
    mean = s[0, 1] / ntraj
    err = np.sqrt((s2[0, 1] / ntraj - mean**2) / (ntraj - 1))
    assert abs(mean - 7 / 50) < ZMAX * err, (mean, err)
    p = trajspin.steady_state(chain).sector_populations
    keep = p > 1e-12
    assert counts[~keep].sum() == 0
    chi2 = np.sum((counts[keep] - ntraj * p[keep]) ** 2 / (ntraj * p[keep]))
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3, (counts, ntraj * p)
    assert part.ndark == counts[1:].sum()          # every trajectory with excitation left is dark
    # a frozen trajectory's final state is dark: G_K psi = 0
    tr = next(tr for tr in (krylov_trajectory(chain, [1.0], 21, i) for i in range(50)) if tr.dark)
    G = chain.sectors.generator(tr.excitation_left)
    assert np.linalg.norm(G @ tr.final_state) < 1e-6 * np.abs(G).max()


def test_cost_model_and_memory_estimate():
    assert choose_method(Chain((12, 6, 2))) == "dense"
    assert choose_method(Chain((40, 20, 10, 4))) == "krylov"      # max d_K 1155 > 600
    assert choose_method(Chain((40, 20, 10, 4)), max_dense_dim=2000, max_dense_setup=60) == "dense"
    assert choose_method(Chain((40, 20, 10, 4), n_thermal=0.1)) == "dense"
    # small sectors but 1e5 of them: ~100 s of dense set-up, so the Lanczos path
    assert choose_method(Chain((100000, 2))) == "krylov"
    assert choose_method(Chain((2000, 2))) == "dense"
    big = Chain((200, 100, 50, 20))
    assert choose_method(big) == "krylov"
    # work (m_max + M + 4) d, the state counts, a buffer of 2047 states' tables and the
    # cached tables of the sectors of >= 2048 states (all of them: ~0.7 GB < 2 GiB)
    M, d = 4, 108171
    per = 8 * M + 8 + 12 * (M - 1)
    dims = trajspin.sectors.sector_dims(big.sizes)[:201]
    base = 8 * d * (40 + M + 4) + 8 * (M + 1) * (370 + 2) + per * 2047
    assert krylov_memory_estimate(big) == base + per * dims[dims >= 2048].sum()
    assert krylov_memory_estimate(big, cache_bytes=0) == base + per * 2 * d
    assert krylov_memory_estimate(big, records=True) == krylov_memory_estimate(big) + 8 * (4 + 2 * M) * 200
    # two domains: sectors of at most N_2 + 1 states, nothing cached
    two = Chain((10**6, 100))
    assert krylov_memory_estimate(two) == 8 * 101 * (40 + 2 + 4) + 8 * 3 * (10**6 + 102) + 36 * 101
    with pytest.raises(InputError, match="paper model"):
        choose_method(Chain((200, 100, 50, 20), n_thermal=0.1))


@pytest.mark.parametrize("call, msg", [
    (lambda c: krylov_trajectory(Chain((4, 2), n_thermal=0.2), [1.0]), "paper model"),
    (lambda c: krylov_trajectory(Chain((4, 2), kappa=0.5), [1.0]), "paper model"),
    (lambda c: krylov_trajectory(c, [1.0, 0.5]), "strictly increasing"),
    (lambda c: krylov_trajectory(c, [-1.0]), ">= 0"),
    (lambda c: krylov_trajectory(c, [1.0], initial=(5, 0)), "0..4"),
    (lambda c: krylov_trajectory(c, [1.0], seed=-1), "seed"),
    (lambda c: krylov_trajectory(c, [1.0], index=1.5), "index"),
    (lambda c: krylov_trajectory(c, [1.0], options="fast"), "KrylovOptions"),
    (lambda c: run_chunk_krylov(c, [1.0], 0, 5, 2), "stop"),
    (lambda c: KrylovOptions(tol=0.5), "tol"),
    (lambda c: KrylovOptions(m_max=1), "m_max"),
    (lambda c: KrylovOptions(horizon=-1.0), "horizon"),
    (lambda c: choose_method(c, K0=7), "K0"),
    (lambda c: krylov_memory_estimate(c, K0=-1), "K0"),
])
def test_bad_input(call, msg):
    with pytest.raises(InputError, match=msg):
        call(Chain((4, 2)))


@pytest.mark.parametrize("records", ["summaries", "full"])
def test_lanczos_ensembles_keep_records_like_single_trajectories(records):
    """Records on the matrix-free path (large N): each trajectory's record is that of
    ``krylov_trajectory`` with the same (seed, index), and the averages are bitwise those of
    the run without records."""
    chain = Chain([12, 6, 2])
    ens = trajspin.run_trajectories(chain, T_GRID, 9, seed=5, method="krylov", records=records,
                                    chunk=4, progress=False)
    plain = trajspin.run_trajectories(chain, T_GRID, 9, seed=5, method="krylov", chunk=4,
                                      progress=False)
    np.testing.assert_array_equal(ens.jz, plain.jz)
    np.testing.assert_array_equal(ens.final_excitation_counts, plain.final_excitation_counts)
    rec = ens.records
    assert rec.index.tolist() == list(range(9)) and rec.full == (records == "full")
    offsets = np.concatenate([[0], np.cumsum(rec.njumps)])
    for k in range(9):
        tr = krylov_trajectory(chain, T_GRID, 5, k)
        assert rec.njumps[k] == tr.jump_times.size
        assert rec.excitation_left[k] == tr.excitation_left and rec.dark[k] == tr.dark
        np.testing.assert_array_equal(rec.quanta[k], tr.quanta)
        np.testing.assert_allclose(rec.final_jz[k], tr.final_jz, rtol=0, atol=1e-12)
        assert rec.first_jump_time[k] == (tr.jump_times[0] if tr.jump_times.size else np.inf)
        if records == "full":
            part = slice(offsets[k], offsets[k + 1])
            np.testing.assert_array_equal(rec.jump_time[part], tr.jump_times)
            np.testing.assert_array_equal(rec.jump_reservoir[part], tr.jump_channels)
            np.testing.assert_array_equal(rec.jz_after[part], tr.jz_after)


def test_records_are_bounded_by_memory_before_any_work(monkeypatch):
    """Full records of (10^6, 100) take ~64 MB per trajectory: 10^6 trajectories are refused
    with the numbers before a single one runs."""
    def no_work(*args):
        raise AssertionError("trajectories ran before the records' memory was checked")

    monkeypatch.setattr(trajspin.trajectories.plan.EnsemblePlan, "chunk", no_work)
    with pytest.raises(InputError, match="jump records"):
        trajspin.run_trajectories(Chain([10**6, 100]), T_GRID, 10**6, records="full",
                                  progress=False)
