"""Reservoir parameters, jump channels, initial states and observable tables against closed
forms and the dense reference ``tests/naive.py``."""
import math

import numpy as np
import pytest

import naive
from trajspin import Chain, InputError
from trajspin.initial import Coherent, Dicke, SpinsUp, resolve_initial
from trajspin.model import HBAR, K_B, Schedule, thermal_occupation
from trajspin.observables import check_observables, coherence_elements

CHAINS = [
    Chain([3, 2]),
    Chain([3, 2, 2], gamma=[1.0, 0.5], n_thermal=[0.3, 0.0], kappa=[0.2, 0.0, 0.1],
          n_thermal_local=[0.0, 0.0, 0.4]),
    Chain([1, 1], gamma=0.7, kappa=[0.3, 1.1]),
    Chain([2, 1, 2, 1], n_thermal=1.5),
]


def test_thermal_occupation_closed_form_and_paper_value():
    omega = 2 * np.pi * 1e10
    x = HBAR * omega / (K_B * 1.6)
    assert thermal_occupation(1.6, omega) == pytest.approx(1.0 / (np.exp(x) - 1.0), rel=1e-14)
    assert float(thermal_occupation(1.6, omega)) == pytest.approx(2.8588, abs=1e-4)
    assert float(thermal_occupation(0.0, omega)) == 0.0
    # high temperature: n -> k_B T / (hbar omega) - 1/2
    assert float(thermal_occupation(1e4, omega)) == pytest.approx(K_B * 1e4 / (HBAR * omega) - 0.5, rel=1e-6)
    chain = Chain([20, 2], temperature=1.6, omega0=omega)
    assert chain.n_thermal[0] == pytest.approx(thermal_occupation(1.6, omega))
    assert Chain.from_dict(chain.to_dict()) == chain


@pytest.mark.parametrize("kwargs, words", [
    (dict(n_thermal=-1.0), "non-negative"),
    (dict(n_thermal=[0.1, 0.2]), "one value per reservoir"),
    (dict(kappa=[1.0, 2.0, 3.0]), "one value per domain"),
    (dict(temperature=1.0), "omega0"),
    (dict(temperature=1.0, omega0=1e10, n_thermal=0.5), "not both"),
    (dict(schedule=([1.0, 0.5], [[1], [0], [1]])), "strictly increasing"),
    (dict(schedule=([1.0], [[1]])), "intervals"),
    (dict(schedule=([1.0], [[1, 0], [0, 1]])), "one column per shared reservoir"),
    (dict(schedule=([1.0], [[1], [-1]])), "non-negative"),
])
def test_bad_reservoir_parameters_are_refused_in_one_line(kwargs, words):
    with pytest.raises(InputError, match=words):
        Chain([3, 2], **kwargs)


def test_schedule_pieces():
    s = Schedule([2.0, 5.0], [[1, 0], [0, 1], [1, 1]])
    assert [s.piece(t) for t in (0.0, 1.999, 2.0, 4.9, 5.0, 1e9)] == [0, 0, 1, 1, 2, 2]
    chain = Chain([2, 2, 1], schedule=s)
    ch = chain.channels()
    assert ch.P == 3 and ch.rates.tolist() == [[1, 0], [0, 1], [1, 1]]
    assert not chain.is_paper_model


@pytest.mark.parametrize("chain", CHAINS, ids=repr)
def test_channel_operators_and_generators_match_the_dense_reference(chain):
    ch = chain.channels()
    ops = naive.collapse_operators(chain.sizes, chain.gamma, chain.n_thermal, chain.kappa,
                                   chain.n_thermal_local)
    assert len(ops) == ch.C
    G_full = sum(o.T @ o for o in ops)
    basis = chain.sectors
    for K in range(basis.K_max + 1):
        idx = basis.sector(K).codes
        G = basis.channel_generator(K, ch, ch.rates[0])
        assert np.abs(G - G_full[np.ix_(idx, idx)]).max() < 1e-12
        for k in range(ch.C):
            O = basis.channel_matrix(ch, k, K).toarray()
            target = K + ch.direction[k]
            if not 0 <= target <= basis.K_max:
                assert O.shape[0] == 0
                continue
            ref = ops[k][np.ix_(basis.sector(target).codes, idx)] / np.sqrt(ch.rates[0, k])
            assert np.abs(O - ref).max() < 1e-12


def test_paper_model_channels_are_the_reservoirs_in_order():
    ch = Chain([5, 3, 2], gamma=[1.0, 2.0]).channels()
    assert ch.C == 2 and ch.direction.tolist() == [-1, -1] and ch.reservoir.tolist() == [0, 1]
    assert ch.rates.tolist() == [[1.0, 2.0]]


def _spin_moments(state, N):
    """(<J^z>, <J^z^2>, <J^+J^->, <J^2>) of a one-domain InitialState, mixing its j sectors."""
    out = np.zeros(4)
    for w, (two_j,), (v,) in [(c[0], c[1][:1], c[2][:1]) for c in state.components]:
        j = two_j / 2
        p = v**2
        m = np.arange(two_j + 1) - j
        out += w * np.array([p @ m, p @ m**2, p @ ((j + m) * (j - m + 1)), j * (j + 1)])
    return out


@pytest.mark.parametrize("N, k", [(4, 2), (5, 1), (7, 4), (12, 6), (9, 0), (9, 9)])
def test_k_of_n_spins_up_mixture_has_the_product_state_moments(N, k):
    chain = Chain([N, 1])
    state = resolve_initial(chain, [SpinsUp(k), 0])
    assert state.weights.sum() == pytest.approx(1.0, abs=1e-14)
    jz, jz2, jpjm, j2 = _spin_moments(state, N)
    m = k - N / 2
    # product state with k up, averaged over which spins: no single-spin coherence
    assert jz == pytest.approx(m, abs=1e-12)
    assert jz2 == pytest.approx(m * m, abs=1e-12)
    assert jpjm == pytest.approx(k, abs=1e-12)               # sum_n <s+_n s-_n>
    assert j2 == pytest.approx(m * m + N / 2, abs=1e-12)     # <J^2> = m^2 + (<J+J-> + <J-J+>)/2
    # multiplet counting: sum_j d_j = C(N, k)
    assert sum(c[0] for c in state.components) * math.comb(N, k) == pytest.approx(math.comb(N, k))


@pytest.mark.parametrize("N, theta", [(1, 0.3), (6, 1.1), (40, 2.5), (3, np.pi), (5, 4.0), (7, -2.0)])
def test_coherent_state_moments(N, theta):
    state = resolve_initial(Chain([N, 1]), [Coherent(theta), "ground"])
    jz, jz2, jpjm, _ = _spin_moments(state, N)
    c2, s2 = np.cos(theta / 2) ** 2, np.sin(theta / 2) ** 2
    assert jz == pytest.approx(N / 2 * np.cos(theta), abs=1e-12)
    # <J^x> = <J^+> = sum_n v_{n+1} v_n sqrt((n+1)(N-n)) = (N/2) sin(theta): the signs matter
    v = state.components[0][2][0]
    n = np.arange(N)
    assert v[1:] @ (v[:-1] * np.sqrt((n + 1.0) * (N - n))) == pytest.approx(N / 2 * np.sin(theta), abs=1e-12)
    assert jpjm == pytest.approx(N * c2 + N * (N - 1) * c2 * s2, abs=1e-10)
    assert jz2 == pytest.approx(N / 4 + N * (N - 1) / 4 * np.cos(theta) ** 2, abs=1e-10)


def test_dicke_requests_and_sector_vectors():
    chain = Chain([4, 3])
    assert resolve_initial(chain, None).basis_state == (4, 0)
    assert resolve_initial(chain, ["half", "excited"]).basis_state == (2, 3)
    assert resolve_initial(chain, [Dicke(1), "dicke:2"]).basis_state == (1, 2)
    state = resolve_initial(chain, ["coherent:1.0", "up:1"])
    for c in range(len(state.components)):
        w = state.sector_weights(c)
        assert w.sum() == pytest.approx(1.0, abs=1e-12)
        for K in np.nonzero(w > 1e-14)[0]:
            assert np.linalg.norm(state.sector_vector(c, int(K))) == pytest.approx(1.0)
    blocks = {}
    for s2j in state.by_effective_chain():
        for K, b in state.blocks(s2j).items():
            blocks[(s2j, K)] = np.trace(b)
    assert sum(blocks.values()) == pytest.approx(1.0, abs=1e-12)


def test_user_vector_is_split_into_its_sectors():
    chain = Chain([2, 1])
    psi = np.zeros(6)
    psi[[1, 2, 5]] = [0.6, 0.0, 0.8]              # |0,1> (K=1) and |2,1> (K=3)
    state = resolve_initial(chain, psi)
    assert np.allclose(state.sector_weights(0), [0.0, 0.36, 0.0, 0.64])
    with pytest.raises(InputError, match="not normalised"):
        resolve_initial(chain, 2 * psi)
    bad = np.zeros(6, complex)
    bad[1], bad[2] = 0.6, 0.8j                    # |0,1> and |1,0>: same sector K = 1, phase i
    ok = bad.copy()
    ok[2] = 0.8                                   # one global phase per sector is fine
    assert np.allclose(resolve_initial(chain, 1j * ok).sector_weights(0), [0, 1, 0, 0])
    with pytest.raises(InputError, match="complex relative phases"):
        resolve_initial(chain, bad)


@pytest.mark.parametrize("request_, words", [
    ([5, 0], "Dicke excitation"), (["up:5", 0], "k spins up"), (["coherent:inf", 0], "finite"),
    (["sideways", 0], "unknown request"), ([1, 1, 1], "one item per domain"), ([0.5, 0], "integers"),
])
def test_impossible_initial_states_are_refused(request_, words):
    with pytest.raises(InputError, match=words):
        resolve_initial(Chain([4, 3]), request_)


def test_observable_names_are_checked():
    assert check_observables(None) == ("jz",)
    assert check_observables(["n_dist", "jz"]) == ("jz", "n_dist")
    with pytest.raises(InputError, match="unknown observable"):
        check_observables("energy")
    with pytest.raises(InputError, match="density matrix"):
        check_observables("log_negativity", solver="trajectories")


@pytest.mark.parametrize("sizes", [(3, 2), (2, 3, 1), (1, 2, 2, 1)])
def test_coherence_elements_match_dense_operators(sizes):
    chain = Chain(sizes)
    jm, _ = naive.domain_operators(sizes)
    basis = chain.sectors
    for i in range(len(sizes) - 1):
        op = jm[i].T @ jm[i + 1]
        for K in range(basis.K_max + 1):
            idx = basis.sector(K).codes
            rows, cols, amps = coherence_elements(basis, K, i)
            dense = np.zeros((idx.size, idx.size))
            dense[rows, cols] = amps
            assert np.abs(dense - op[np.ix_(idx, idx)]).max() < 1e-12


def test_to_qutip_matches_the_dense_reference():
    qutip = pytest.importorskip("qutip")
    chain = Chain([2, 1, 1], gamma=[1.0, 0.4], n_thermal=[0.2, 0.0], kappa=[0.0, 0.3, 0.0])
    q = chain.to_qutip(initial=["coherent:0.7", 1, 0])
    ref = naive.collapse_operators(chain.sizes, chain.gamma, chain.n_thermal, chain.kappa,
                                   chain.n_thermal_local)
    assert len(q["c_ops"]) == len(ref)
    for a, b in zip(q["c_ops"], ref):
        assert np.abs(a.full() - b).max() < 1e-12
    _, jz = naive.domain_operators(chain.sizes)
    for a, b in zip(q["jz"], jz):
        assert np.abs(a.full() - b).max() < 1e-12
    assert q["rho0"].tr() == pytest.approx(1.0)
    assert qutip.expect(q["jz"][0], q["psi0"]) == pytest.approx(np.cos(0.7), abs=1e-12)
    with pytest.raises(InputError, match="mixes spin-j"):
        chain.to_qutip(initial=["up:1", 0, 0])
