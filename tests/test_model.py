"""The chain model and its excitation-sector basis against the dense reference."""
import itertools

import numpy as np
import pytest

import naive
import trajspin
from trajspin import Chain, InputError
from trajspin.sectors import sector_dims


@pytest.mark.parametrize("bad, msg", [
    (dict(sizes=[3]), "at least 2 domains"),
    (dict(sizes=[]), "at least 2 domains"),
    (dict(sizes=[3, 0]), "at least 1 spin"),
    (dict(sizes=[3, -2]), "at least 1 spin"),
    (dict(sizes=[3, 2.5]), "integer"),
    (dict(sizes="abc"), "integer"),
    (dict(sizes=5), "sequence"),
    (dict(sizes=[3, 2, 1], gamma=[1, 2, 3]), "expected 2, got 3"),
    (dict(sizes=[3, 2, 1], gamma=[1, 0]), "positive"),
    (dict(sizes=[3, 2], gamma=-1), "positive"),
    (dict(sizes=[3, 2], gamma=np.nan), "finite"),
])
def test_chain_rejects_bad_input(bad, msg):
    with pytest.raises(InputError, match=msg):
        Chain(**bad)


def test_chain_parameters():
    c = Chain([12, 6, 2], gamma=[1.0, 0.5])
    assert c.M == 3 and c.n_reservoirs == 2
    assert c.gamma.tolist() == [1.0, 0.5]
    assert c.hilbert_dim == 13 * 7 * 3
    assert Chain.from_dict(c.to_dict()) == c
    assert Chain([4, 2], gamma=2.0).gamma.tolist() == [2.0]


@pytest.mark.parametrize("sizes", [(3, 2), (4, 1, 2), (2, 2, 2, 1), (5, 3)])
def test_sector_dims_count_states(sizes):
    counts = np.zeros(sum(sizes) + 1, dtype=int)
    for n in itertools.product(*[range(N + 1) for N in sizes]):
        counts[sum(n)] += 1
    assert np.array_equal(sector_dims(sizes), counts)
    basis = Chain(sizes).sectors
    for K in range(sum(sizes) + 1):
        states = basis.sector(K).states
        assert states.shape == (counts[K], len(sizes))
        assert np.all(states.sum(axis=1) == K)
        assert len({tuple(s) for s in states}) == counts[K]


def _dense_index(sizes, n):
    return int(np.ravel_multi_index(tuple(n), [N + 1 for N in sizes]))


@pytest.mark.parametrize("sizes, gamma", [((3, 2), 1.0), ((2, 3, 1), [0.7, 1.3]),
                                          ((2, 1, 2, 1), [1.0, 2.0, 0.5])])
def test_jump_blocks_and_generator_match_dense_operators(sizes, gamma):
    chain = Chain(sizes, gamma=gamma)
    basis = chain.sectors
    dense_L = naive.channel_jump_operators(sizes)
    for K in range(1, sum(sizes) + 1):
        hi, lo = basis.sector(K).states, basis.sector(K - 1).states
        rows = [_dense_index(sizes, n) for n in lo]
        cols = [_dense_index(sizes, n) for n in hi]
        for c, L in enumerate(basis.jump_matrices(K)):
            np.testing.assert_allclose(L.toarray(), dense_L[c][np.ix_(rows, cols)], atol=1e-14)
        G_dense = sum(g * Ld.T @ Ld for g, Ld in zip(chain.gamma, dense_L))
        np.testing.assert_allclose(basis.generator(K), G_dense[np.ix_(cols, cols)], atol=1e-12)


def test_spectrum_is_a_decomposition_with_exact_dark_zeros():
    basis = Chain([6, 3, 2]).sectors
    for K in range(12):
        lam, V = basis.spectrum(K)
        G = basis.generator(K)
        np.testing.assert_allclose(V @ np.diag(lam) @ V.T, G, atol=1e-10)
        np.testing.assert_allclose(V.T @ V, np.eye(lam.size), atol=1e-12)
        assert np.all(lam >= 0)
        # dark states are annihilated by every jump operator
        for L in basis.jump_matrices(K) if K else []:
            assert np.abs(L @ V[:, lam == 0]).max(initial=0) < 1e-10


def test_memory_estimate_refuses_huge_chain():
    chain = Chain([100000, 50000, 20000])
    assert trajspin.master_memory_estimate(chain) > 1e13
    with pytest.raises(InputError, match="GiB"):
        trajspin.steady_state(chain)
