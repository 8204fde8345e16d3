"""Exact solver beyond the paper model, against the dense reference (tests/naive.py)
and closed forms.

Finite temperature, local reservoirs (Minganti et al. setup), schedules, every initial-state kind,
every observable, logarithmic negativity, stationary states, detailed balance.
"""
import numpy as np
import pytest
import naive
import trajspin
from trajspin import Chain, InputError, Schedule

ALL = ("jz2", "jz_var", "n_dist", "coherence", "channel_rates", "reservoir_rates", "log_negativity")
NO_EN = ALL[:-1]
GRID = np.array([0.0, 0.01, 0.1, 0.5, 1.0, 1.7, 3.0, 10.0, 100.0])
TOL = 1e-9          # absolute, on every observable (the goal for <J_i^z>/N_i is 1e-8)


def _reference(chain, times, rho0, spins=(), pairs=()):
    """Observables of the dense schedule-aware propagation, channel rates of the piece at t."""
    sizes = chain.sizes
    sw = () if chain.schedule is None else chain.schedule.switch_times
    fac = None if chain.schedule is None else chain.schedule.factors
    rhos = naive.solve_general(sizes, times, rho0, chain.gamma, chain.n_thermal, chain.kappa,
                               chain.n_thermal_local, spins=spins, switch_times=sw, factors=fac)
    every = naive.general_channels(sizes, chain.gamma, chain.n_thermal, chain.kappa,
                                   chain.n_thermal_local, spins)
    present = [k for k, (_, r) in enumerate(every) if r > 0]     # the chain's channel list
    out = []
    for t, rho in zip(times, rhos):
        p = 0 if chain.schedule is None else chain.schedule.piece(t)
        g = chain.gamma * (1.0 if fac is None else fac[p])
        ops = naive.general_channels(sizes, g, chain.n_thermal, chain.kappa, chain.n_thermal_local,
                                     spins)
        o = naive.naive_observables(rho, sizes, [(O, 1.0) for O, _ in ops], spins=spins,
                                    pairs=pairs)
        o["channel_rates"] = np.array([ops[k][1] * o["channel_rates"][k] for k in present])
        out.append(o)
    return out


def _reservoir_rates(chain, channel_rates):
    ch = chain.channels()
    res = np.zeros(channel_rates.shape[:-1] + (ch.n_reservoirs,))
    for k in range(ch.C):
        res[..., ch.reservoir[k]] -= ch.direction[k] * channel_rates[..., k]
    return res


def _check(res, ref, names, tol=TOL):
    errs = {}
    for name in ("jz",) + tuple(n for n in names if n != "reservoir_rates"):
        got = getattr(res, name)
        want = np.array([o[name] for o in ref])
        assert got.shape == want.shape, (name, got.shape, want.shape)
        errs[name] = float(np.max(np.abs(got - want)))
    if "reservoir_rates" in names:
        want = _reservoir_rates(res.chain, np.array([o["channel_rates"] for o in ref]))
        errs["reservoir_rates"] = float(np.max(np.abs(res.reservoir_rates - want)))
    bad = {k: v for k, v in errs.items() if not v < tol}
    assert not bad, bad
    return errs


def _pure(sizes, n):
    psi = naive.basis_state(sizes, n).real
    return np.outer(psi, psi)


CHAINS = [
    # finite temperature, M = 2 and 3, several n
    ((3, 2), dict(n_thermal=0.7)),
    ((4, 1), dict(n_thermal=2.8588)),
    ((2, 2, 1), dict(n_thermal=[0.3, 1.2], gamma=[1.0, 0.5])),
    ((2, 1, 2), dict(n_thermal=0.05)),
    # Minganti et al.: two single spins, unequal local rates plus one shared reservoir
    ((1, 1), dict(kappa=[0.3, 1.1], gamma=0.5)),
    ((1, 1), dict(kappa=[0.3, 1.1], gamma=0.5, n_thermal=0.4, n_thermal_local=[0.2, 0.9])),
    # local reservoirs only at T = 0 on bigger domains, and kappa + T on three domains
    ((3, 2), dict(kappa=[0.0, 0.4])),
    ((2, 1, 1), dict(kappa=[0.2, 0.0, 0.5], n_thermal_local=[0.4, 0.0, 1.0], n_thermal=0.5)),
]


@pytest.mark.parametrize("sizes, kw", CHAINS)
def test_dynamics_and_every_observable_match_dense_lindblad(sizes, kw):
    chain = Chain(sizes, **kw)
    res = trajspin.solve_master(chain, GRID, observables=ALL)
    ref = _reference(chain, GRID, _pure(sizes, chain.default_excitations()), pairs=res.pairs)
    _check(res, ref, ALL)
    assert np.abs(res.trace - 1).max() < 1e-10
    np.testing.assert_allclose(res.jump_rates, res.reservoir_rates[:, :chain.M - 1])
    np.testing.assert_allclose(res.jz_var, res.jz2 - res.jz**2)
    assert res.n_dist.shape == (GRID.size, chain.M, max(sizes) + 1)


def test_fig_s1_temperature_matches_dense_lindblad():
    """Fig. S1 parameters (T = 1.6 K, omega0/2pi = 10 GHz) on a small chain, stiff log grid."""
    chain = Chain((4, 2), temperature=1.6, omega0=2 * np.pi * 1e10)
    assert abs(chain.n_thermal[0] - 2.8588) < 1e-4
    t = np.concatenate([[0.0], np.logspace(-4, 3, 15)])
    res = trajspin.solve_master(chain, t)
    ref = _reference(chain, t, _pure((4, 2), (4, 0)))
    err = np.abs(res.jz - np.array([o["jz"] for o in ref])) / np.array([4, 2])
    assert err.max() < 1e-10, err.max()


def test_schedule_open_r1_then_r2_zero_temperature():
    """Route energy: only reservoir 1 until t = 1, then only reservoir 2 (exact switch)."""
    chain = Chain((3, 2, 1), schedule=Schedule([1.0], [[1, 0], [0, 1]]))
    t = np.array([0.0, 0.3, 1.0 - 1e-9, 1.0, 1.0 + 1e-9, 4.0])
    res = trajspin.solve_master(chain, t, observables=ALL)
    ref = _reference(chain, t, _pure((3, 2, 1), (3, 0, 0)), pairs=res.pairs)
    _check(res, ref, ALL)
    # the last domain receives nothing before the switch, the rates jump at it
    assert np.max(np.abs(res.jz[:3, 2] + 0.5)) < 1e-12
    assert res.channel_rates[2, 1] == 0.0 and res.channel_rates[3, 1] > 0.1


def test_schedule_with_temperature_and_local_reservoirs():
    chain = Chain((2, 2, 1), n_thermal=0.6, kappa=[0.3, 0.0, 0.2],
                  schedule=Schedule([1.0, 2.0], [[1, 0], [0, 1], [1, 0.5]]))
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 20.0])
    res = trajspin.solve_master(chain, t, observables=ALL)
    ref = _reference(chain, t, _pure((2, 2, 1), (2, 0, 0)), pairs=res.pairs)
    _check(res, ref, ALL)


def _rho_ground(N):
    e = naive.ladder_state(N, 0)
    return np.outer(e, e)


INITIALS = [
    # (sizes, request, dense initial state builder, spin-resolved domains, negativity allowed)
    ((3, 2), ["half", "excited"], lambda: _pure((3, 2), (1, 2)), (), True),
    ((3, 2), ["dicke:2", 1], lambda: _pure((3, 2), (2, 1)), (), True),
    ((3, 1), ["up:2", "ground"], lambda: naive.product_rho([naive.spins_up_mixture(3, 2),
                                                            _rho_ground(1)]), (0,), True),
    ((2, 2), ["up:1", "up:1"], lambda: naive.product_rho([naive.spins_up_mixture(2, 1),
                                                          naive.spins_up_mixture(2, 1)]),
     (0, 1), True),
    ((3, 1), ["coherent:1.1", "dicke:1"], lambda: naive.product_rho([
        np.outer(naive.coherent_spins(3, 1.1), naive.coherent_spins(3, 1.1)),
        np.outer(naive.ladder_state(1, 1), naive.ladder_state(1, 1))]), (0,), False),
    ((3, 2), "vector", None, (), False),
]


def _vector():
    psi = np.random.default_rng(1).normal(size=12)
    return psi / np.linalg.norm(psi)


@pytest.mark.parametrize("kw", [dict(), dict(n_thermal=0.5), dict(kappa=[0.2, 0.1])],
                         ids=["T0", "T", "kappa"])
@pytest.mark.parametrize("sizes, request_, build, spins, neg", INITIALS,
                         ids=["half", "dicke", "up2", "up1up1", "coherent", "vector"])
def test_every_initial_state_kind(kw, sizes, request_, build, spins, neg):
    """k of N up is compared with the permutation-averaged mixture on the full 2^N spin space,
    the coherent state with the product of single-spin states (not K-dephased: the
    observables commute with K, so the dephasing of the solvers must not show)."""
    chain = Chain(sizes, **kw)
    if request_ == "vector":
        initial, rho0 = _vector(), np.outer(_vector(), _vector())
    else:
        initial, rho0 = request_, build()
    names = ALL if neg else NO_EN
    t = np.array([0.0, 0.1, 1.0, 3.0])
    res = trajspin.solve_master(chain, t, initial=initial, observables=names)
    ref = _reference(chain, t, rho0, spins=spins, pairs=res.pairs)
    _check(res, ref, names)
    assert np.abs(res.trace - 1).max() < 1e-10


def test_negativity_of_mixed_third_domain_groups_its_j_sectors():
    """'up:1' on domain 3 mixes two j_3 sectors; the reduced state of domains (1, 2) must add
    them before the partial transpose, of (1, 3) keep them apart: both against the full
    2^N_3 spin space (zero temperature: a warm reservoir soon destroys the entanglement)."""
    chain = Chain((2, 1, 2))
    rho0 = naive.product_rho([_pure((2,), (2,)), _rho_ground(1), naive.spins_up_mixture(2, 1)])
    t = np.array([0.0, 0.2, 1.0, 50.0])
    res = trajspin.solve_master(chain, t, initial=["excited", "ground", "up:1"],
                                observables=("log_negativity",), pairs=[(0, 1), (0, 2), (1, 2)])
    ref = _reference(chain, t, rho0, spins=(2,), pairs=res.pairs)
    _check(res, ref, ("log_negativity",))
    assert np.all(res.log_negativity[-1] > 0.02)     # entanglement is created: the test can fail


def test_log_negativity_is_created_between_two_spins():
    """Two spins from |1>|0> with a shared reservoir (paper eq. 1): the dark state
    (|10> - |01>)/sqrt2 is reached with weight 1/2 and is entangled."""
    res = trajspin.solve_master(Chain([1, 1]), [0.0, 1.0, 100.0], observables="log_negativity")
    assert abs(res.log_negativity[0, 0]) < 1e-14
    rho = np.zeros((4, 4))        # |n1 n2>: 1/2 |00><00| + 1/2 |psi-><psi-|
    rho[0, 0] = 0.5
    rho[np.ix_([1, 2], [1, 2])] = 0.25 * np.array([[1, -1], [-1, 1]])
    exact = naive.naive_log_negativity(rho, [2, 2], 0, 1)
    # partial transpose: (|00>,|11>) block [[1/2, -1/4], [-1/4, 0]] -> ||.||_1 = (1 + sqrt2)/2
    assert abs(exact - np.log2((1 + np.sqrt(2)) / 2)) < 1e-12
    assert abs(res.log_negativity[-1, 0] - exact) < 1e-10
    ss = trajspin.steady_state(Chain([1, 1]), observables="log_negativity")
    assert abs(ss.log_negativity[0] - exact) < 1e-12


STEADY = [
    ((3, 2), dict(n_thermal=0.7), None, None, ()),
    ((2, 2, 1), dict(n_thermal=[0.3, 1.2], gamma=[1.0, 0.5]), None, None, ()),
    ((1, 1), dict(kappa=[0.3, 1.1], gamma=0.5), None, None, ()),
    ((1, 1), dict(kappa=[0.3, 1.1], gamma=0.5, n_thermal=0.4), None, None, ()),
    ((2, 1, 1), dict(kappa=[0.2, 0.0, 0.5], n_thermal_local=[0.4, 0.0, 1.0], n_thermal=0.5),
     None, None, ()),
    ((3, 2), dict(kappa=[0.0, 0.4]), None, None, ()),
    ((2, 2), dict(), ["up:1", "up:1"], "up1up1", (0, 1)),
    ((2, 2), dict(n_thermal=0.5), ["up:1", "up:1"], "up1up1", (0, 1)),
    ((3, 1), dict(n_thermal=0.5), ["up:2", "ground"], "up2", (0,)),
]


@pytest.mark.parametrize("sizes, kw, initial, kind, spins", STEADY)
def test_steady_state_matches_dense_kernel_projection(sizes, kw, initial, kind, spins):
    chain = Chain(sizes, **kw)
    if kind is None:
        rho0 = _pure(sizes, chain.default_excitations())
    elif kind == "up1up1":
        rho0 = naive.product_rho([naive.spins_up_mixture(2, 1), naive.spins_up_mixture(2, 1)])
    else:
        rho0 = naive.product_rho([naive.spins_up_mixture(3, 2), _rho_ground(1)])
    ss = trajspin.steady_state(chain, initial=initial, observables=ALL)
    ops = naive.general_channels(sizes, chain.gamma, chain.n_thermal, chain.kappa,
                                 chain.n_thermal_local, spins)
    L = naive.general_liouvillian(ops, np.zeros(rho0.shape))
    rho = naive.stationary_kernel_projection(L, rho0)
    ref = _reference_static(chain, rho, spins, ss.pairs)
    for name in ("jz",) + ALL:
        assert np.max(np.abs(getattr(ss, name) - ref[name])) < TOL, name
    assert abs(ss.sector_populations.sum() - 1) < 1e-10


def _reference_static(chain, rho, spins, pairs):
    every = naive.general_channels(chain.sizes, chain.gamma, chain.n_thermal, chain.kappa,
                                   chain.n_thermal_local, spins)
    o = naive.naive_observables(rho, chain.sizes, every, spins=spins, pairs=pairs)
    o["channel_rates"] = o["channel_rates"]          # zero-rate channels already left out
    o["reservoir_rates"] = _reservoir_rates(chain, o["channel_rates"])
    return o


def test_steady_state_with_schedule_starts_from_the_last_switch():
    chain = Chain((2, 2, 1), n_thermal=0.4, schedule=Schedule([0.7], [[1, 0], [0, 1]]))
    rho0 = _pure((2, 2, 1), (2, 0, 0))
    rho_sw = naive.solve_general((2, 2, 1), [0.7], rho0, chain.gamma, chain.n_thermal,
                                 switch_times=[0.7], factors=[[1, 0], [0, 1]])[0]
    ops = naive.general_channels((2, 2, 1), chain.gamma * np.array([0, 1]), chain.n_thermal)
    rho = naive.stationary_kernel_projection(naive.general_liouvillian(ops, np.zeros((18, 18))),
                                             rho_sw)
    ss = trajspin.steady_state(chain, observables=("coherence",))
    ref = naive.naive_observables(rho, (2, 2, 1), ops)
    assert np.max(np.abs(ss.jz - ref["jz"])) < TOL
    assert np.max(np.abs(ss.coherence - ref["coherence"])) < TOL
    # T = 0 schedule: cascade from the blocks at the switch
    chain0 = Chain((2, 2, 1), schedule=Schedule([0.7], [[1, 0], [0, 1]]))
    late = trajspin.solve_master(chain0, [1e4]).jz[0]
    assert np.max(np.abs(trajspin.steady_state(chain0).jz - late)) < 1e-9


def _total_spin_projectors(sizes):
    jm, jz = naive.domain_operators(sizes)
    Jm, Jz = sum(jm), sum(jz)
    J2 = Jm.T @ Jm + Jz @ Jz - Jz                       # J^+ J^- + Jz^2 - Jz
    w, U = np.linalg.eigh(J2)
    Js = np.round((-1 + np.sqrt(1 + 4 * w)) / 2 * 2) / 2
    return {J: U[:, Js == J] @ U[:, Js == J].T for J in np.unique(Js)}, Jz


@pytest.mark.parametrize("sizes, n, initial", [((3, 2), 0.8, None), ((4, 1), 2.8588, None),
                                               ((2, 2), 0.3, (1, 1)), ((3, 2), 1.5, "vector")])
def test_detailed_balance_two_domains(sizes, n, initial):
    """All reservoirs at n: rho(inf) = sum_J p_J x^{J^z} Pi_J / Z_J, x = n/(n+1) =
    exp(-beta omega0), p_J = <Pi_J>(0) (Pi_J: total spin J of J_1 + J_2, conserved by
    L = J_1^- + J_2^-)."""
    chain = Chain(sizes, n_thermal=n)
    if initial == "vector":
        psi = np.random.default_rng(5).normal(size=int(np.prod([N + 1 for N in sizes])))
        initial = psi / np.linalg.norm(psi)
        # the solver evolves the K-dephased state (observables commute with K)
        basis = chain.sectors
        rho0 = np.zeros((psi.size, psi.size))
        for K in range(basis.K_max + 1):
            idx = basis.sector(K).codes
            rho0[np.ix_(idx, idx)] = np.outer(initial[idx], initial[idx])
    else:
        rho0 = _pure(sizes, initial if initial else chain.default_excitations())
    projectors, Jz = _total_spin_projectors(sizes)
    x = n / (n + 1.0)
    gibbs = np.diag(x ** np.diag(Jz))
    rho_th = sum(np.trace(P @ rho0) * (P @ gibbs @ P) / np.trace(P @ gibbs @ P)
                 for P in projectors.values())
    ss = trajspin.steady_state(chain, initial=initial, keep_blocks=True)
    basis = chain.sectors
    for K, block in enumerate(ss.blocks):
        idx = basis.sector(K).codes
        np.testing.assert_allclose(block, rho_th[np.ix_(idx, idx)], atol=1e-10)
    # sector populations follow: sum_J p_J x^(K - J_z offset) / Z_J summed inside each sector K
    pops = [np.trace(rho_th[np.ix_(basis.sector(K).codes, basis.sector(K).codes)])
            for K in range(basis.K_max + 1)]
    np.testing.assert_allclose(ss.sector_populations, pops, atol=1e-10)
    _, jz = naive.domain_operators(sizes)
    np.testing.assert_allclose(ss.jz, [np.trace(J @ rho_th) for J in jz], atol=1e-10)
    # and the evolution reaches it: the long-time state is stationary
    late = trajspin.solve_master(chain, [2e3, 4e3], initial=initial)
    np.testing.assert_allclose(late.jz, [ss.jz, ss.jz], atol=1e-9)


def test_three_domains_same_temperature_long_time_state_is_stationary():
    chain = Chain((2, 2, 1), n_thermal=0.6)
    ss = trajspin.steady_state(chain, observables=("coherence", "reservoir_rates"))
    late = trajspin.solve_master(chain, [1e3, 3e3], observables=("coherence", "reservoir_rates"))
    np.testing.assert_allclose(late.jz, [ss.jz, ss.jz], atol=1e-9)
    np.testing.assert_allclose(late.coherence[-1], ss.coherence, atol=1e-9)
    # detailed balance: no net flow into any reservoir in the stationary state
    assert np.max(np.abs(ss.reservoir_rates)) < 1e-10


def test_excitation_balance_every_channel():
    """d<K>/dt = sum_k direction_k r_k <O_k^dag O_k> = -(total net rate into the reservoirs)."""
    chain = Chain((2, 2, 1), n_thermal=0.5, kappa=[0.3, 0.0, 0.2])
    t = np.linspace(0.2, 2.0, 401)
    res = trajspin.solve_master(chain, t, observables="reservoir_rates")
    K = res.sector_populations @ np.arange(res.sector_populations.shape[1])
    dKdt = np.gradient(K, t, edge_order=2)
    np.testing.assert_allclose(dKdt[2:-2], -res.reservoir_rates.sum(axis=1)[2:-2], atol=2e-5)


def test_zero_temperature_general_path_agrees_with_paper_cascade():
    """A paper-model chain from a multi-sector initial state: weighted sum of basis-state runs."""
    chain = Chain((3, 2))
    t = np.array([0.0, 0.2, 2.0, 20.0])
    res = trajspin.solve_master(chain, t, initial=["up:2", "dicke:1"], observables="n_dist")
    # up:2 of 3 spins: j = 3/2 (weight 1/3, n' = 2) and j = 1/2 (weight 2/3, n' = 1 of 1)
    a = trajspin.solve_master(chain, t, initial=(2, 1))
    b = trajspin.solve_master(Chain((1, 2)), t, initial=(1, 1))
    want = a.jz / 3 + 2 * b.jz / 3
    assert np.max(np.abs(res.jz - want)) < 1e-10


def test_result_with_observables_round_trips(tmp_path):
    chain = Chain((2, 1), n_thermal=0.5, kappa=[0.1, 0.2])
    res = trajspin.solve_master(chain, [0.0, 1.0], initial=["up:1", "ground"], observables=ALL)
    back = trajspin.load(res.save(tmp_path / "r.npz"))
    assert back.chain == chain and back.chain.to_dict() == chain.to_dict()
    for name in ("jz", "jump_rates") + ALL:
        assert np.array_equal(getattr(back, name), getattr(res, name)), name
    assert back.meta["initial_label"] == "up:1, ground"
    assert back.meta["observables"][0] == "jz" and back.pairs == [(0, 1)]
    ss = trajspin.steady_state(chain, observables=ALL)
    sback = trajspin.load(ss.save(tmp_path / "s.npz"))
    for name in ("jz",) + ALL:
        assert np.array_equal(getattr(sback, name), getattr(ss, name)), name


@pytest.mark.parametrize("kwargs, msg", [
    (dict(observables="bogus"), "unknown observable"),
    (dict(observables="log_negativity", pairs=[(0, 0)]), "two different domains"),
    (dict(observables="log_negativity", pairs=[(0, 5)]), "two different domains"),
    (dict(pairs=[(0, 1)]), "only applies"),
    (dict(observables="log_negativity", initial=["coherent:1.0", "ground"]), "superpositions"),
    (dict(initial=["up:5", "ground"]), "k spins up"),
    (dict(initial=np.ones(6)), "not normalised"),
])
def test_bad_requests_fail_before_work(kwargs, msg):
    with pytest.raises(InputError, match=msg):
        trajspin.solve_master(Chain((2, 1), n_thermal=0.3), [1.0], **kwargs)


def test_memory_refusal_at_finite_temperature(monkeypatch):
    import trajspin.validation as v
    monkeypatch.setattr(v, "available_memory", lambda: 10**6)
    with pytest.raises(InputError, match="needs about"):
        trajspin.solve_master(Chain((12, 6, 2), n_thermal=1.0), [1.0])
    with pytest.raises(InputError, match="needs about"):
        trajspin.steady_state(Chain((12, 6, 2), n_thermal=1.0))


def test_paper_cascade_and_general_cascade_agree_on_every_observable():
    """The same state as a basis state (original cascade) and as a state vector (general path)."""
    chain = Chain((4, 2, 1), gamma=[1.0, 0.6])
    t = np.array([0.0, 0.05, 0.4, 2.0, 30.0])
    a = trajspin.solve_master(chain, t, initial=(3, 1, 0), observables=ALL)
    psi = naive.basis_state((4, 2, 1), (3, 1, 0)).real
    b = trajspin.solve_master(chain, t, initial=psi, observables=ALL)
    assert "Krylov" not in b.meta["solver"] and b.meta["initial"] == "state vector"
    for name in ("jz", "sector_populations", "jump_rates") + ALL:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-10, err_msg=name)
    sa = trajspin.steady_state(chain, initial=(3, 1, 0), observables=ALL)
    sb = trajspin.steady_state(chain, initial=psi, observables=ALL)
    for name in ("jz", "sector_populations") + ALL:
        np.testing.assert_allclose(getattr(sa, name), getattr(sb, name), atol=1e-10, err_msg=name)


def test_krylov_result_does_not_depend_on_shift_ladder_and_windows(monkeypatch):
    """Beyond dense sizes: a Fig. S1-like chain on a 1e-4..1e3 log grid, default shifts/windows
    against one shift per octave and short windows (a posteriori error control, tol 1e-12)."""
    import trajspin.exact.packed as eg
    chain = Chain((6, 3, 2), temperature=1.6, omega0=2 * np.pi * 1e10)
    t = np.concatenate([[0.0], np.logspace(-4, 3, 60)])
    a = trajspin.solve_master(chain, t, observables="coherence")
    monkeypatch.setattr(eg, "LADDER", 2.0)
    monkeypatch.setattr(eg, "SIGMA_RATIO", 0.25)
    monkeypatch.setattr(eg, "WINDOW", 3.0)
    b = trajspin.solve_master(chain, t, observables="coherence")
    assert a.meta["solver"] != b.meta["solver"]
    np.testing.assert_allclose(a.jz, b.jz, atol=1e-10)
    np.testing.assert_allclose(a.coherence, b.coherence, atol=1e-10)
    assert np.abs(a.trace - 1).max() < 1e-10
    ss = trajspin.steady_state(chain)
    np.testing.assert_allclose(a.jz[-1], ss.jz, atol=1e-9)
