"""Trajectories of every chain and initial state against a dense density-matrix reference.

The reference is built here from scratch: the full coupled-Dicke space of the (effective)
chain, one collapse operator per channel of ``chain.channels()`` with its rate in each
schedule piece, rho(t) by scipy ``expm`` of the dense Liouvillian, piece after piece.
Mixtures over spin-j sectors (k of N spins up) are the weighted sum of the effective chains'
evolutions; superpositions across excitation sectors are evolved WITHOUT dephasing, so the
tests also check that the dephased sampling gives the same observables.

Every comparison is |trajectory mean - exact| <= ZMAX standard errors at a fixed seed.  Where
all sampled trajectories agree (before the first jump, or in a deterministic corner of a
distribution) the sample error is 0 while the exact value still moves by (probability of the
unseen event) x (its effect); the error is then floored at SCALE / ntraj, the resolution one
trajectory adds (SCALE = the range of the observable: N_i for jz, N_i^2 for jz2, 1 for
probabilities, the largest exact value for rates and coherences).
"""
import numpy as np
import pytest
import scipy.linalg

import naive
import trajspin
from trajspin import Chain, InputError
from trajspin.initial import resolve_initial
from trajspin.model import Schedule

ZMAX = 5.0
ALL = ("jz", "jz2", "jz_var", "n_dist", "coherence", "channel_rates", "reservoir_rates")


# ---------------------------------------------------------------------------- dense reference

def _channel_ops(sizes, chans):
    """Unscaled full-space O_k of every channel (J^- sums or their adjoints)."""
    jm, _ = naive.domain_operators(sizes)
    ops = []
    for k in range(chans.C):
        O = sum(jm[i] for i in chans.domains[k] if i >= 0)
        ops.append(O if chans.direction[k] < 0 else O.T.copy())
    return ops


def _liouvillian(ops, rates):
    D = ops[0].shape[0]
    eye = np.eye(D)
    L = np.zeros((D * D, D * D))
    for O, r in zip(ops, rates):
        if r > 0:
            OdO = O.T @ O
            L += r * (np.kron(O, O) - 0.5 * (np.kron(OdO, eye) + np.kron(eye, OdO.T)))
    return L


def _evolve(sizes, chans, rho0, times):
    """rho(t) at each time, piecewise in the schedule (row-major vec, real generators)."""
    ops = _channel_ops(sizes, chans)
    D = rho0.shape[0]
    gens = [_liouvillian(ops, chans.rates[p]) for p in range(chans.P)]
    ends = list(chans.starts[1:]) + [np.inf]
    out, v, t_now, p = [], rho0.reshape(-1).astype(complex), 0.0, 0
    for t in times:
        while t >= ends[p]:
            v = scipy.linalg.expm(gens[p] * (ends[p] - t_now)) @ v
            t_now, p = ends[p], p + 1
        out.append((scipy.linalg.expm(gens[p] * (t - t_now)) @ v).reshape(D, D))
    return out, ops


def exact_observables(chain, times, initial):
    """Every observable of ``trajspin.observables`` from the dense reference, summed over the
    components of the initial mixture (their effective chains, true excitation numbers)."""
    init = resolve_initial(chain, initial)
    M, T = chain.M, len(times)
    chans = chain.channels()
    nb = max(chain.sizes) + 1
    R = chans.n_reservoirs
    res = {"jz": np.zeros((T, M)), "jz2": np.zeros((T, M)), "n_dist": np.zeros((T, M, nb)),
           "coherence": np.zeros((T, M - 1)), "channel_rates": np.zeros((T, chans.C)),
           "reservoir_rates": np.zeros((T, R))}
    for w, s2j, part in init.components:
        sizes = tuple(s2j)
        if isinstance(part, list):
            psi = np.ones(1)
            for v in part:
                psi = np.kron(psi, v)
        else:
            psi = np.asarray(part, dtype=float)
        rhos, ops = _evolve(sizes, chans, np.outer(psi, psi), times)
        jm, jz = naive.domain_operators(sizes)
        off = (np.asarray(chain.sizes) - np.asarray(sizes)) // 2
        piece = [chans.piece(t) for t in times]
        for k, rho in enumerate(rhos):
            for i in range(M):
                res["jz"][k, i] += w * np.trace(jz[i] @ rho).real
                res["jz2"][k, i] += w * np.trace(jz[i] @ jz[i] @ rho).real
                pops = np.real(np.diag(rho)).reshape([n + 1 for n in sizes])
                other = tuple(a for a in range(M) if a != i)
                dist = pops.sum(axis=other) if other else pops
                res["n_dist"][k, i, off[i]:off[i] + sizes[i] + 1] += w * dist
            for i in range(M - 1):
                res["coherence"][k, i] += w * np.trace(jm[i].T @ jm[i + 1] @ rho).real
            for c, O in enumerate(ops):
                r = chans.rates[piece[k], c] * np.trace(O.T @ O @ rho).real
                res["channel_rates"][k, c] += w * r
                res["reservoir_rates"][k, chans.reservoir[c]] -= w * chans.direction[c] * r
    res["jz_var"] = res["jz2"] - res["jz"] ** 2
    return res


def _scale(chain, name, exact):
    N = np.asarray(chain.sizes, dtype=float)
    if name == "jz":
        return N
    if name in ("jz2", "jz_var"):
        return N**2
    if name == "n_dist":
        return 1.0
    return max(np.abs(exact[name]).max(), 1e-12)


def assert_matches(ens, exact, names=ALL, zmax=ZMAX):
    worst = {}
    for name in names:
        mean, err = getattr(ens, name), getattr(ens, name + "_err")
        floor = np.broadcast_to(_scale(ens.chain, name, exact), mean.shape[1:] if name != "n_dist"
                                else mean.shape[1:]) / ens.ntraj
        z = np.abs(mean - exact[name]) / np.maximum(err, floor)
        worst[name] = float(z.max())
        assert z.max() < zmax, (name, z.max(), np.unravel_index(z.argmax(), z.shape))
    return worst


T_GRID = np.concatenate([[0.0], np.logspace(-2, 1.3, 14)])


# ---------------------------------------------------------------------------- physics

@pytest.mark.parametrize("sizes, nth, gamma, ntraj, seed", [
    ((3, 2), [0.7], 1.0, 3000, 1),
    ((2, 2, 1), [0.5, 1.2], [1.0, 0.6], 3000, 2),
])
def test_finite_temperature_matches_dense_reference(sizes, nth, gamma, ntraj, seed):
    chain = Chain(sizes, gamma=gamma, n_thermal=nth)
    ens = trajspin.run_trajectories(chain, T_GRID, ntraj, seed=seed, observables=ALL,
                                    progress=False)
    exact = exact_observables(chain, T_GRID, None)
    assert_matches(ens, exact)
    # absorption raises K: trajectories do not freeze, some end above the initial excitation
    assert ens.final_excitation_counts.size == sum(sizes) + 1
    assert ens.final_excitation_counts[sizes[0] + 1:].sum() > 0
    assert np.all(ens.reservoir_rates[1:].min(axis=0) < ens.reservoir_rates[1:].max(axis=0))


def test_hot_reservoir_keeps_the_singlet_dark():
    """Two single spins, one hot shared reservoir: |10> = (|T> + |S>)/sqrt2 and the singlet S is
    dark to both L and L^dag, so half the trajectories freeze in it forever (no jump can act),
    the other half keep jumping in the triplet."""
    chain = Chain([1, 1], n_thermal=0.6)
    t = np.concatenate([T_GRID, [100.0]])
    ens = trajspin.run_trajectories(chain, t, 3000, seed=3, observables=ALL, progress=False)
    assert_matches(ens, exact_observables(chain, t, None))
    assert abs(ens.ndark - 1500) < ZMAX * np.sqrt(3000 * 0.25)
    assert ens.final_excitation_counts[1] >= ens.ndark          # dark ones keep K = 1


def test_hot_trajectory_jumps_both_ways_and_keeps_its_energy_balance():
    chain = Chain([3, 2], n_thermal=0.8)
    tr = trajspin.trajectory(chain, [0.0, 5.0, 20.0], seed=3, index=1)
    assert set(tr.jump_directions.tolist()) == {-1, 1}
    assert np.all(tr.jump_reservoirs == 0) and np.all(np.diff(tr.jump_times) > 0)
    # K before each jump follows the directions; K_final = K0 - net quanta
    K = 3 - np.concatenate([[0], np.cumsum(-tr.jump_directions)])
    assert np.array_equal(tr.jump_excitation, K[:-1])
    assert tr.excitation_left == K[-1] == 3 - tr.quanta.sum()
    np.testing.assert_allclose(tr.jz[-1], tr.final_jz, atol=1e-12)
    np.testing.assert_allclose((tr.jz_after + [1.5, 1.0]).sum(axis=1), tr.jump_excitation + tr.jump_directions,
                               atol=1e-9)
    names = chain.channels().names
    assert [names[k] for k in tr.jump_channels[:2]] and "absorbed" in str(tr)


@pytest.mark.parametrize("nloc", [0.0, 0.4])
def test_local_reservoirs_two_spins_minganti(nloc):
    """Two single spins, unequal local rates plus one shared reservoir (Minganti et al. 2021)."""
    chain = Chain([1, 1], gamma=1.0, kappa=[0.3, 1.2], n_thermal_local=nloc)
    ens = trajspin.run_trajectories(chain, T_GRID, 4000, seed=5, observables=ALL, progress=False)
    exact = exact_observables(chain, T_GRID, None)
    assert_matches(ens, exact)
    assert ens.reservoir_rates.shape == (T_GRID.size, 3)       # R1, D1 local, D2 local
    if nloc == 0:
        # no dark state survives local decay: every trajectory ends in the ground state
        assert ens.final_excitation_counts.tolist() == [4000, 0] and ens.ndark == 0


def test_schedule_open_r1_then_r2_matches_dense_reference():
    chain = Chain([2, 2, 1], schedule=Schedule([0.8, 3.0], [[1, 0], [0, 1], [0.5, 0.5]]))
    t = np.unique(np.concatenate([T_GRID, [0.8, 3.0, 2.9999]]))
    ens = trajspin.run_trajectories(chain, t, 4000, seed=6, observables=ALL, progress=False)
    exact = exact_observables(chain, t, None)
    assert_matches(ens, exact)
    # while R2 is closed no quantum reaches domain 3, and R1 takes none after 0.8
    early = t < 0.8
    assert np.all(ens.jz[early, 2] == -0.5)
    assert np.all(ens.channel_rates[(t >= 0.8) & (t < 3.0), 0] == 0.0)


def test_schedule_waiting_times_are_exact_across_switches():
    """First-jump time distribution with R1 closed in [0.5, 1.5): the survival probability
    of the initial state is a product over pieces."""
    chain = Chain([1, 1], schedule=([0.5, 1.5], [[1.0], [0.0], [2.0]]))
    first = []
    for k in range(4000):
        tr = trajspin.trajectory(chain, [5.0], seed=9, index=k)
        first.append(tr.jump_times[0] if tr.jump_times.size else np.inf)
    first = np.asarray(first)
    # |10> = (|bright> + |dark>)/sqrt2, bright decays at 2 gamma f: survival
    # S(t) = 1/2 + 1/2 exp(-2 int_0^t f), jumps only while open
    def S(t):
        integral = np.minimum(t, 0.5) * 1.0 + np.clip(t - 1.5, 0, None) * 2.0
        return 0.5 + 0.5 * np.exp(-2 * integral)
    assert not np.any((first > 0.5) & (first < 1.5))
    for tq in (0.2, 0.5, 1.0, 1.6, 2.0, 3.0):
        p = S(tq)
        got = np.mean(first > tq)
        assert abs(got - p) < ZMAX * np.sqrt(p * (1 - p) / first.size), (tq, got, p)


@pytest.mark.parametrize("sizes, initial, chain_kw, ntraj, seed", [
    ((4, 2), ["up:2", 0], {}, 4000, 11),                     # k of N: mixture over j
    ((3, 2), ["coherent:1.1", "ground"], {}, 4000, 12),      # superposition across K
    ((4, 1, 1), ["half", 0, 0], {}, 4000, 13),               # Dicke |2, 0>, paper Fig. 4(a)
    ((3, 2), ["up:1", "coherent:2.0"], {"n_thermal": 0.4}, 3000, 14),
])
def test_initial_states_match_dense_reference(sizes, initial, chain_kw, ntraj, seed):
    chain = Chain(sizes, **chain_kw)
    ens = trajspin.run_trajectories(chain, T_GRID, ntraj, seed=seed, initial=initial,
                                    observables=ALL, progress=False)
    exact = exact_observables(chain, T_GRID, initial)
    assert_matches(ens, exact)
    assert ens.meta["initial_label"] == resolve_initial(chain, initial).label


def test_user_state_vector_matches_dense_reference():
    chain = Chain([2, 2], gamma=1.0, kappa=[0.0, 0.5])
    rng = np.random.default_rng(0)
    psi = rng.normal(size=chain.hilbert_dim)
    psi /= np.linalg.norm(psi)
    ens = trajspin.run_trajectories(chain, T_GRID, 4000, seed=15, initial=psi, observables=ALL,
                                    progress=False)
    assert_matches(ens, exact_observables(chain, T_GRID, psi))
    assert ens.meta["initial"] == "state vector"


def test_general_engine_agrees_with_fast_paper_engine():
    """The paper's model through both engines (asking for jz2 routes it to the general one)."""
    chain = Chain([6, 3, 1])
    t = np.concatenate([[0.0], np.logspace(-2, 2, 20)])
    fast = trajspin.run_trajectories(chain, t, 6000, seed=2, progress=False)
    gen = trajspin.run_trajectories(chain, t, 6000, seed=2, observables=["jz2"], progress=False)
    assert fast.meta["engine"] == "paper" and gen.meta["engine"] == "general"
    exact = trajspin.solve_master(chain, t)
    floor = np.asarray(chain.sizes) / 6000
    for e in (fast, gen):
        assert np.max(np.abs(e.jz - exact.jz) / np.maximum(e.jz_err, floor)) < ZMAX
    # the final excitation is t -> infinity for both: same distribution (chi-square-like)
    a, b = fast.final_excitation_counts, gen.final_excitation_counts
    assert a.size == b.size
    keep = (a + b) > 0
    chi2 = np.sum((a[keep] - b[keep]) ** 2 / (a[keep] + b[keep]))
    assert chi2 < keep.sum() + 5 * np.sqrt(2 * keep.sum())


def test_standard_errors_of_the_new_observables_are_honest():
    """Independent seeds: (mean - exact) / s.e. has unit spread for every observable."""
    chain = Chain([2, 1], n_thermal=0.5, kappa=[0.0, 0.4])
    t = np.array([0.3, 1.0, 3.0])
    exact = exact_observables(chain, t, ["up:1", 1])
    names = ("jz", "jz2", "jz_var", "n_dist", "coherence", "channel_rates", "reservoir_rates")
    zs = {n: [] for n in names}
    for seed in range(24):
        e = trajspin.run_trajectories(chain, t, 400, seed=200 + seed, initial=["up:1", 1],
                                      observables=names, progress=False)
        for n in names:
            err = getattr(e, n + "_err")
            ok = err > 0
            zs[n].append(((getattr(e, n) - exact[n])[ok] / err[ok]).ravel())
    for n in names:
        z = np.concatenate(zs[n])
        rms = np.sqrt(np.mean(z**2))
        # >= 72 z-values each: rms = 1 within about +-0.1 (1 s.d.); jz_var carries an O(1/n) bias
        assert 0.7 < rms < 1.3, (n, rms, z.size)


def test_named_basis_state_runs_on_the_fast_engine_bitwise():
    from trajspin.runners.batch import EnsembleTask
    chain = Chain([6, 3, 1])
    t = np.logspace(-2, 2, 15)
    a = trajspin.run_trajectories(chain, t, 500, seed=3, progress=False)
    b = trajspin.run_trajectories(chain, t, 500, seed=3, initial=["excited", "ground", 0],
                                  progress=False)
    assert b.meta["engine"] == "paper" and np.array_equal(a.jz_sum, b.jz_sum)
    task = EnsembleTask(chain, t, 3, ["excited", "ground", "ground"])
    part = task.compute(0, 256)
    assert np.array_equal(part.jz_sum, trajspin.trajectories.run_chunk(
        chain, t, 3, 0, 256, *chain.sectors.index_of((6, 0, 0))).jz_sum)


# ---------------------------------------------------------------------------- reproducibility

def test_general_trajectory_depends_on_seed_and_index_only():
    chain = Chain([3, 2], n_thermal=0.5, kappa=[0.2, 0.0])
    t = np.logspace(-2, 1, 30)
    init = ["up:2", "coherent:0.7"]
    a = trajspin.trajectory(chain, t, seed=4, index=17, initial=init, observables=ALL)
    for k in (3, 99, 0):
        trajspin.trajectory(chain, t, seed=4, index=k, initial=init)
    b = trajspin.trajectory(chain, t, seed=4, index=17, initial=init, observables=ALL)
    assert np.array_equal(a.jz, b.jz) and np.array_equal(a.jump_times, b.jump_times)
    assert np.array_equal(a.n_dist, b.n_dist) and np.array_equal(a.jump_channels, b.jump_channels)
    c = trajspin.trajectory(chain, t, seed=4, index=18, initial=init)
    assert not np.array_equal(a.jump_times, c.jump_times)
    # asking for more observables does not change the trajectory
    d = trajspin.trajectory(chain, t, seed=4, index=17, initial=init)
    assert np.array_equal(a.jz, d.jz) and np.array_equal(a.jump_times, d.jump_times)


def test_general_ensemble_chunks_fold_bitwise_in_any_order():
    from trajspin.runners.batch import EnsembleTask
    from trajspin.runners.chunks import ChunkPlan, OrderedSums
    chain = Chain([2, 2, 1], n_thermal=[0.3, 0.0], schedule=([1.0], [[1, 1], [0, 1]]))
    t = np.logspace(-2, 1, 12)
    init = ["up:1", 2, 0]
    ref = trajspin.run_trajectories(chain, t, 700, seed=8, initial=init, chunk=64,
                                    observables=["jz2", "n_dist"], progress=False)
    again = trajspin.run_trajectories(chain, t, 700, seed=8, initial=init, chunk=64,
                                      observables=["jz2", "n_dist"], progress=False)
    assert np.array_equal(ref.jz_sum, again.jz_sum)
    task = EnsembleTask(chain, t, 8, init, observables=["jz2", "n_dist"])
    plan = ChunkPlan(700, 64)
    sums = OrderedSums(task.zero(), plan.nchunks)
    order = list(range(plan.nchunks))[::-1]
    for c in order:
        sums.add(c, task.compute(*plan.bounds(c)))
    got = task.result(sums.total, 700)
    assert np.array_equal(got.jz_sum, ref.jz_sum) and np.array_equal(got.jz_sumsq, ref.jz_sumsq)
    assert np.array_equal(got.n_dist, ref.n_dist) and np.array_equal(got.jz2_err, ref.jz2_err)
    assert np.array_equal(got.final_excitation_counts, ref.final_excitation_counts)


def test_observables_merge_and_round_trip(tmp_path):
    import json
    from trajspin.results import EnsembleResult
    chain = Chain([2, 1], n_thermal=0.3)
    t = [0.1, 1.0]
    whole = trajspin.run_trajectories(chain, t, 600, seed=3, chunk=100, observables=ALL,
                                      progress=False)
    from trajspin.trajectories import EnsemblePlan
    plan = EnsemblePlan(chain, np.asarray(t), None, observables=ALL)
    parts = [plan.result(plan.chunk(3, a, b), 0, 3) for a, b in ((0, 300), (300, 600))]
    for p, (a, b) in zip(parts, ((0, 300), (300, 600))):
        p.ntraj, p.index_ranges = b - a, np.array([[a, b]])
        p.meta = dict(whole.meta)
    merged = parts[1].merge(parts[0])
    for name in ALL:
        np.testing.assert_allclose(getattr(merged, name), getattr(whole, name), rtol=1e-12,
                                   atol=1e-14)
    path = whole.save(tmp_path / "e.npz")
    with np.load(path) as f:
        header = json.loads(str(f["header"]))
        back = EnsembleResult.from_file_arrays(Chain.from_dict(header["chain"]),
                                               {k: f[k] for k in f.files}, header["meta"])
    assert header["chain"]["n_thermal"] == [0.3] and header["meta"]["observables"] == list(ALL)
    for name in ALL:
        assert np.array_equal(getattr(back, name), getattr(whole, name))
        assert np.array_equal(getattr(back, name + "_err"), getattr(whole, name + "_err"))
    plain = trajspin.load(path)             # trajspin.load keeps reading the averages
    assert np.array_equal(plain.jz, whole.jz)
    other = trajspin.run_trajectories(chain, t, 100, seed=3, progress=False)
    with pytest.raises(InputError):
        whole.merge(other)
    with pytest.raises(AttributeError, match="not computed"):
        other.n_dist


# ---------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("chain_kw, kwargs, msg", [
    (dict(n_thermal=0.5), dict(feedback="close R1 after 2 quanta"), "feedback needs the paper"),
    (dict(kappa=0.3), dict(records="full"), "records needs the paper"),
    ({}, dict(records="full", observables=["jz2"]), "records keeps"),
    ({}, dict(initial=["up:2", 0], feedback="close R1 after 2 quanta"), "feedback needs"),
    ({}, dict(observables=["log_negativity"]), "density matrix"),
    ({}, dict(observables=["entropy"]), "unknown observable"),
    ({}, dict(initial=["up:5", 0]), "k spins up"),
    ({}, dict(initial=[1, 1, 1]), "one item per domain"),
    ({}, dict(initial=np.ones(12)), "not normalised"),
])
def test_bad_input_is_one_line_before_work(chain_kw, kwargs, msg):
    chain = Chain([3, 2], **chain_kw)
    with pytest.raises(InputError, match=msg) as err:
        trajspin.run_trajectories(chain, [1.0], 10, progress=False, **kwargs)
    assert "\n" not in str(err.value)
    if "records" not in kwargs:
        with pytest.raises(InputError, match=msg) as err:
            trajspin.trajectory(chain, [1.0], **kwargs)
        assert "\n" not in str(err.value)
