r"""The closures: the paper's rules S1 and the "pairs" closure, as exact symbolic equations.

Closure (paper eq. S1).  A word of one domain is replaced by a c-number times a single
operator of that domain, symmetric ordering of J^z with J^+- (``_close_domain``):

    (J^z)^k        ->  <J^z>^(k-1) J^z          (e.g. <(J_1^z)^2 J_2^z> ~ <J_1^z><J_1^z J_2^z>)
    (J^z)^k J^+-   ->  (<J^z> +- 1/2)^k J^+-     (i.e. {J^z, J^+}/2 -> <J^z> J^+)
    (J^+-)^2 ...   ->  0                          (<J^+-> = 0)

* ``closure="paper"`` keeps every monomial that is generated (each domain at
  most once): M = 2 gives the four equations S11, M = 3 the paper's 13
  equations (S3), any M works (the number of moments grows about like 3^M).
  For M >= 3 it leaves the physical range for strongly unbalanced chains such
  as Fig. 3's (a ``MeanFieldBreakdown`` warning, NaN afterwards).
* ``closure="pairs"`` (default) keeps only one- and two-domain moments (at most M^2):
  <J_i^z>, <J_i^z J_j^z> and <J_i^+ J_j^->; three-domain moments are
  factorised with vanishing third cumulant.  For M = 2 it equals "paper".

Both closures are exact at t = 0 for products of Dicke states and of "k of N up" states
(sharp J_i^z, no coherences); for coherent spin states d<J_i^z>/dt at t = 0 is off by
exactly -(sum of the gamma_c, kappa_i acting on i) Var(J_i^z) = -(...) (N_i/4) sin^2 theta_i.
Both keep every
conservation law that is linear in the moments (for M = 2 the total spin
<J_1.J_2> of the shared reservoir).  For two domains the steady state converges
to the exact one like N_1^-2; the transient keeps an O(0.1) error (the mean-field
superradiant burst has no quantum delay spread).  For M >= 3 the mean field has
no dark states: the last domain's excitation leaks away slowly, and its t -> inf
limit is the ground state.  ``analysis/README.md`` tabulates the errors and
``analysis/MEAN_FIELD.md`` has the full derivation.
"""
from __future__ import annotations

import itertools
from fractions import Fraction
from functools import lru_cache

from trajspin.errors import InputError
from trajspin.mean_field.algebra import MI, ONE, P, Z, canonical, channel_action, label, shift_poly

__all__ = ["CLOSURES", "check_closure", "Term", "SymbolicEquations", "symbolic_equations"]

CLOSURES = ("paper", "pairs")


def check_closure(closure):
    """Raise ``InputError`` unless ``closure`` is one of ``CLOSURES``."""
    if closure not in CLOSURES:
        raise InputError(f"closure must be one of {CLOSURES}, got {closure!r}")


def _close_domain(elem):
    """Closure of one domain's word (p, k, q): list of (coefficient, mean power, symbol)."""
    p, k, q = elem
    if abs(q) >= 2:
        return []
    if q == 0:
        if k == 0:
            return [(Fraction(1), 0, ONE)]
        return [(Fraction(1), k - 1, Z)]
    sym = P if q > 0 else MI
    return [(c, j, sym) for j, c in shift_poly(k, Fraction(q, 2)).items()]


class Term:
    """coef * rate[r] * prod_d Nbar_d^nbar[d] * prod_f <X_f>, contributing to d<X_target>/dt."""
    __slots__ = ("target", "coef", "rate", "nbar", "factors")

    def __init__(self, target, coef, rate, nbar, factors):
        self.target, self.coef, self.rate, self.nbar, self.factors = target, coef, rate, nbar, factors


class SymbolicEquations:
    """Closed equations of M domains for one set of jump channels (no numbers but Fractions).

    Built breadth first from the M moments <J_i^z>: each kept moment's exact derivative
    (``channel_action``) is closed domain by domain and factorised by ``closure``, and every
    moment that appears is kept in turn.

    Attributes
    ----------
    monomials : list of tuple of int, length n
        Kept moments (symbols ONE, Z, P, MI per domain); the first M are <J_i^z>.
    labels : list of str, length n
    terms : list of Term
        The right-hand sides: d<monomials[t.target]>/dt = sum of the terms t.
    """

    def __init__(self, M, structure, closure):
        self.M, self.structure, self.closure = M, structure, closure
        self.monomials = [tuple(Z if d == i else ONE for d in range(M)) for i in range(M)]
        self.index = {m: k for k, m in enumerate(self.monomials)}
        self.terms = []
        k = 0
        while k < len(self.monomials):       # breadth first: add what the equations need
            self._derive(k)
            k += 1
            if len(self.monomials) > 20000:
                raise InputError(f"closure {closure!r} needs more than 20000 moments for M = {M}; "
                                 "use closure='pairs'")
        self.labels = [label(m) for m in self.monomials]

    def _var(self, mono):
        """Index of the moment ``mono``, kept (appended) if it is new."""
        if mono not in self.index:
            self.index[mono] = len(self.monomials)
            self.monomials.append(mono)
        return self.index[mono]

    def _factorise(self, mono):
        """Closure of a multi-domain monomial: list of (coefficient, [variable indices])."""
        support = [d for d, s in enumerate(mono) if s != ONE]
        if not support:
            return [(Fraction(1), [])]
        if self.closure == "paper" or len(support) <= 2:
            return [(Fraction(1), [self._var(mono)])]
        if len(support) != 3:
            raise RuntimeError(f"pairs closure met a {len(support)}-domain moment {label(mono)}")

        def sub(ds):
            m = canonical(tuple(mono[d] if d in ds else ONE for d in range(self.M)))
            return None if m is None or (len(ds) == 1 and m[ds[0]] != Z) else m

        out = []
        a, b, c = support
        for single, pair in ((a, (b, c)), (b, (a, c)), (c, (a, b))):
            m1, m2 = sub((single,)), sub(pair)
            if m1 is not None and m2 is not None:
                out.append((Fraction(1), [self._var(m1), self._var(m2)]))
        singles = [sub((d,)) for d in support]
        if all(s is not None for s in singles):
            out.append((Fraction(-2), [self._var(s) for s in singles]))
        return out

    def _derive(self, k):
        """Append the closed terms of d<monomials[k]>/dt, channel by channel."""
        mono = self.monomials[k]
        M = self.M
        for r, (_, doms, sign) in enumerate(self.structure):
            action = channel_action(len(doms), tuple(mono[d] for d in doms), sign)
            for elems, c in action:
                per_dom = [_close_domain(e) for e in elems]      # close each touched domain
                for combo in itertools.product(*per_dom):
                    coef = c
                    new = list(mono)
                    means, nbar = [], {}
                    for d, e, (cc, j, sym) in zip(doms, elems, combo):
                        coef *= cc
                        new[d] = sym
                        means += [d] * j
                        if e[0]:
                            nbar[d] = e[0]
                    if not coef:
                        continue
                    canon = canonical(tuple(new))
                    if canon is None:
                        continue
                    mean_vars = [self._var(tuple(Z if x == d else ONE for x in range(M)))
                                 for d in means]
                    for cf, fv in self._factorise(canon):
                        self.terms.append(Term(k, coef * cf, r, dict(nbar), mean_vars + fv))


@lru_cache(maxsize=64)
def symbolic_equations(M, structure, closure) -> SymbolicEquations:
    """The closed equations of M domains for ``structure`` (cached: exact algebra is slow).

    Parameters
    ----------
    M : int
        Number of domains.
    structure : tuple of (str, tuple of int, int)
        Rate symbol, the 1 or 2 domains of the jump operator O, and -1 (O = sum J^-) or
        +1 (O = sum J^+), one entry per jump channel.
    closure : {"pairs", "paper"}
    """
    return SymbolicEquations(M, structure, closure)
