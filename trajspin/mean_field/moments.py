r"""Initial moments: what the closure needs of an accepted initial state, for any N.

Collective operators conserve every J_i^2; the closed equations replace J_i^2 by one
c-number, the initial <J_i^2>: N_i bar = (N_i/2)(N_i/2 + 1) for Dicke and coherent states,
N_i/2 + m_i^2 for "k of N_i spins up".  Only U(1)-neutral moments (as many J^+ as J^-) are
asked for, so the K-dephased initial state that every solver evolves gives them the same
values as the pure request.  How each request sets the moments: ``analysis/MEAN_FIELD.md``,
section 4.
"""
from __future__ import annotations

import numpy as np

from trajspin.errors import InputError
from trajspin.initial import (Coherent, Dicke, InitialState, SpinsUp, describe_item, parse_item,
                              resolve_initial)
from trajspin.mean_field.algebra import MI, ONE, P, Z

__all__ = ["InitialMoments", "initial_moments", "dicke_casimir"]


def dicke_casimir(sizes):
    """<J_i^2> = (N_i/2)(N_i/2 + 1) of the symmetric ladders (the paper's N_i bar), shape (M,)."""
    s = np.asarray(sizes, dtype=float)
    return 0.5 * s * (0.5 * s + 1.0)


class InitialMoments:
    """Moments of an accepted initial state, as the closure needs them.

    The state is a weighted sum of components; each component is a product over domains
    (per-domain means of 1, J^z, J^+, J^-) or, for a user state vector, one whole-chain
    vector.  Only U(1)-neutral moments (as many J^+ as J^-) are asked for, so the K-dephased
    state that the solvers evolve gives the same values as the pure request.

    Attributes
    ----------
    casimir : ndarray, shape (M,)
        <J_i^2>, the c-number the closure uses for each conserved J_i^2.
    label : str
    excitations : tuple of int or None
        n_i when the state is a product of Dicke states.
    sharp : bool
        True when every J_i^z is sharp and <J_i^+-> = 0 (Dicke and "k of N up" products):
        every closed derivative is then exact at t = 0.
    """

    def __init__(self, chain, casimir, label, excitations=None, products=(), vectors=(),
                 sharp=False):
        self.chain = chain
        self.casimir = np.asarray(casimir, dtype=float)
        self.label = label
        self.excitations = excitations
        self.sharp = sharp
        self._products = list(products)     # [(weight, z (M,), a (M,))]: <J^z>, <J^+> = <J^->
        self._vectors = list(vectors)       # [(weight, tensor psi, [(jz, jplus) per domain])]

    @classmethod
    def dicke(cls, chain, n):
        """The product of Dicke states with n_i excitations, ``n`` of shape (M,)."""
        n = np.asarray(n, dtype=float)
        z = n - 0.5 * np.asarray(chain.sizes, dtype=float)
        return cls(chain, dicke_casimir(chain.sizes), "dicke", tuple(int(x) for x in n),
                   [(1.0, z, np.zeros(chain.M))], sharp=True)

    def value(self, mono):
        """<X> of a neutral monomial (tuple of per-domain symbols)."""
        total = 0.0
        for w, z, a in self._products:
            v = w
            for d, s in enumerate(mono):
                if s == Z:
                    v *= z[d]
                elif s in (P, MI):
                    v *= a[d]
            total += v
        for w, psi, ops in self._vectors:
            phi = psi
            for d, s in enumerate(mono):
                if s == ONE:
                    continue
                jz, jp = ops[d]
                mat = jz if s == Z else jp if s == P else jp.T
                phi = np.moveaxis(np.tensordot(mat, phi, axes=(1, d)), 0, d)
            total += w * float(np.sum(psi * phi))
        return total


def _ladder_ops(two_j):
    """J^z = diag(n' - j) and J^+ on the ladder n' = 0..2j (J^+|n'> = sqrt((n'+1)(2j-n'))|n'+1>)."""
    n = np.arange(two_j + 1, dtype=float)
    jp = np.zeros((two_j + 1, two_j + 1))
    jp[np.arange(1, two_j + 1), np.arange(two_j)] = np.sqrt((n[:-1] + 1.0) * (two_j - n[:-1]))
    return np.diag(n - 0.5 * two_j), jp


def _domain_moments(item, N):
    """(<J^z>, <J^+> = <J^->, <J^2>, sharp) of one domain's request, closed forms (any N)."""
    if isinstance(item, Dicke):
        return item.n - 0.5 * N, 0.0, 0.5 * N * (0.5 * N + 1.0), True
    if isinstance(item, SpinsUp):
        # k of N spins up, no single-spin coherence: J^z = m sharp, <J^+ J^-> = k, so
        # <J^2> = <J^+J^-> + m^2 - m = N/2 + m^2 (analysis/MEAN_FIELD.md, section 4).
        m = item.k - 0.5 * N
        return m, 0.0, 0.5 * N + m * m, True
    if isinstance(item, Coherent):
        # every spin cos(theta/2)|up> + sin(theta/2)|down>: <J^z> = (N/2) cos theta,
        # <J^+> = <J^-> = (N/2) sin theta, Var(J^z) = (N/4) sin^2 theta, j = N/2 sharp
        th = float(item.theta)
        return 0.5 * N * np.cos(th), 0.5 * N * np.sin(th), 0.5 * N * (0.5 * N + 1.0), False
    raise InputError(f"the mean field cannot read the initial request {item!r}")


def initial_moments(chain, initial=None) -> InitialMoments:
    """Parse ``initial=`` as every solver does and return the moments the closure needs.

    Per-domain requests (int, Dicke(n), "excited", "ground", "half", "dicke:n", SpinsUp(k) /
    "up:k", Coherent(theta) / "coherent:theta") use closed forms, so any N up to 10^8 works.
    A state vector on the coupled Dicke basis, or an ``InitialState`` made by
    ``trajspin.initial.resolve_initial``, is read through its components (small chains).
    """
    if initial is None:
        initial = chain.default_excitations()
    per_domain = not isinstance(initial, (InitialState, str))
    if per_domain:
        try:
            items = list(initial)
        except TypeError:
            per_domain = False
        else:
            per_domain = len(items) == chain.M
    if not per_domain:
        # state vectors, InitialState objects and malformed requests: resolve_initial
        # checks them (normalisation, phases, lengths) and reports in one line.
        return _moments_of_state(chain, resolve_initial(chain, initial))
    parsed = [parse_item(x, N, i) for i, (x, N) in enumerate(zip(items, chain.sizes))]
    z, a, cas, sharp = (np.array(v) for v in zip(*[_domain_moments(p, N)
                                                  for p, N in zip(parsed, chain.sizes)]))
    exc = tuple(p.n for p in parsed) if all(isinstance(p, Dicke) for p in parsed) else None
    label = ", ".join(describe_item(p, N) for p, N in zip(parsed, chain.sizes))
    return InitialMoments(chain, cas, label, exc, [(1.0, z, a)], sharp=bool(np.all(sharp)))


def _moments_of_state(chain, state):
    """InitialMoments of a resolved InitialState (mixture of product or whole-chain states)."""
    M = chain.M
    products, vectors = [], []
    casimir = np.zeros(M)
    for w, sizes2j, part in state.components:
        two_j = np.asarray(sizes2j, dtype=float)
        casimir += w * 0.5 * two_j * (0.5 * two_j + 1.0)
        ops = [_ladder_ops(int(s)) for s in sizes2j]
        if isinstance(part, list):
            z = np.array([float(v @ jz @ v) for v, (jz, _) in zip(part, ops)])
            a = np.array([float(v @ jp @ v) for v, (_, jp) in zip(part, ops)])
            products.append((w, z, a))
        else:
            vectors.append((w, np.asarray(part, dtype=float).reshape([int(s) + 1 for s in sizes2j]),
                            ops))
    exc = None if state.basis_state is None else tuple(int(x) for x in state.basis_state)
    sharp = exc is not None or (not vectors and all(
        not np.any(a) and np.array_equal(z, products[0][1]) for _, z, a in products))
    return InitialMoments(chain, casimir, state.label, exc, products, vectors, sharp=sharp)

