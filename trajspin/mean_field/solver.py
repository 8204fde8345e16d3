r"""Mean-field (moment-closure) dynamics of the chain, for domains of 1 to 10^8 spins.

The derivation is in ``analysis/MEAN_FIELD.md``; in short:

Heisenberg equations.  For the master equation of ``Chain`` (paper eq. 3, the thermal
partners of supplement III, local reservoirs, schedules), in Lindblad form over the jump
channels of ``trajspin.channels.Channels``,

    d rho/dt = -i w0 [sum_i J_i^z, rho] + sum_k r_k(t) (O_k rho O_k^dag - {O_k^dag O_k, rho}/2),
    (r, O) = (gamma_c (n_c+1) f_c(t), L_c), (gamma_c n_c f_c(t), L_c^dag),
             (kappa_i (nl_i+1), J_i^-), (kappa_i nl_i, J_i^+),      L_c = J_c^- + J_{c+1}^-,

an observable X evolves as

    d<X>/dt = sum_k r_k(t) < O_k^dag X O_k - {O_k^dag O_k, X}/2 >;

the Hamiltonian drops out of every moment kept here (they commute with sum_i J_i^z).  A
schedule makes the f_c(t) piecewise constant: the equations are integrated piece by piece,
with the switch times as integration boundaries.

Moments.  Collective operators conserve every J_i^2; the equations replace J_i^2 by one
c-number, the initial <J_i^2> (N_i bar = (N_i/2)(N_i/2 + 1) for Dicke and coherent states,
N_i/2 + m_i^2 for "k of N_i spins up").  All operators are real in the Dicke basis, so
<X> = <X^T> (hence <J_a^+ J_b^-> = <J_a^- J_b^+>), and the generator is U(1) covariant,
so only moments with as many J^+ as J^- are kept; the K-dephased initial state that every
solver evolves gives them the same values as the pure request (``initial_moments``).  A
*monomial* is a product over domains of one
of {1, J_i^z, J_i^+, J_i^-} per domain, e.g. J_1^z J_2^+ J_3^-.  The generator
maps a monomial to products in which one domain carries a word of degree
<= 2 (normal ordered as (J^z)^k (J^+-)^q with J^+J^- = Nbar - (J^z)^2 + J^z and
J^-J^+ = Nbar - (J^z)^2 - J^z); all of this is exact.

Closure (paper eq. S1).  A word of one domain is replaced by a c-number times
a single operator of that domain, symmetric ordering of J^z with J^+-:

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

Numerics.  Moments are scaled by the sizes of the domains they involve,
y_X = <X> / prod_{i in X} N_i, and integrated with an implicit Runge-Kutta
(Radau) or BDF method with the analytic Jacobian, rtol 1e-10, so that
superradiant rates ~ gamma N_1 = 10^8 gamma are handled stiffly.
"""
from __future__ import annotations

import itertools
import time
import warnings
from fractions import Fraction
from functools import lru_cache
from math import comb

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

from trajspin.initial import (Coherent, Dicke, InitialState, SpinsUp, describe_item, parse_item,
                      resolve_initial)
from trajspin.errors import InputError
from trajspin.results.base import versions
from trajspin.results.mean_field import MeanFieldResult
from trajspin.validation import check_times

__all__ = ["solve_mean_field", "mean_field_equations", "initial_moments", "MeanFieldResult",
           "MeanFieldModel", "InitialMoments", "MeanFieldBreakdown", "CLOSURES"]

CLOSURES = ("paper", "pairs")

# The integration stops (later times NaN) once some |<J_i^z>|/N_i exceeds 1/2 by this much.
BREAKDOWN_MARGIN = 1e-6


class MeanFieldBreakdown(RuntimeWarning):
    """The closed equations left the physical range |<J_i^z>| <= N_i/2 (small domains)."""

# operator symbols of one domain inside a monomial
ONE, Z, P, MI = 0, 1, 2, 3
_SYM = {Z: "z", P: "+", MI: "-"}
_CHARGE = {ONE: 0, Z: 0, P: 1, MI: -1}


# ----------------------------------------------------------------------------------------
# Exact algebra of one domain: basis elements (p, k, q) = Nbar^p (J^z)^k (J^+)^q  (q > 0)
# or (J^-)^|q| (q < 0), with no J^+ J^- pairs left (they are reduced with the Casimir).
# An operator is a dict {(p, k, q): Fraction}.
# ----------------------------------------------------------------------------------------

def _add(acc, key, c):
    if c:
        v = acc.get(key, 0) + c
        if v:
            acc[key] = v
        else:
            acc.pop(key, None)


def _shift_poly(k, s):
    """(J^z + s)^k as {power: coefficient}."""
    return {j: comb(k, j) * Fraction(s) ** (k - j) for j in range(k + 1)}


@lru_cache(maxsize=None)
def _mul_basis(a, b):
    """Product of two one-domain basis elements, as a tuple of ((p, k, q), coefficient)."""
    (p1, k1, q1), (p2, k2, q2) = a, b
    # E^{q1} (J^z)^{k2} = (J^z - q1)^{k2} E^{q1}
    out = {}
    for j, c in _shift_poly(k2, -q1).items():
        for key, c2 in _mul_EE(p1 + p2, k1 + j, q1, q2):
            _add(out, key, c * c2)
    return tuple(out.items())


@lru_cache(maxsize=None)
def _mul_EE(p, k, q1, q2):
    """Nbar^p (J^z)^k E^{q1} E^{q2} reduced to basis elements."""
    if q1 == 0 or q2 == 0 or (q1 > 0) == (q2 > 0):
        return (((p, k, q1 + q2), Fraction(1)),)
    # opposite signs: peel one pair off the middle.
    # E^{q1} E^{q2} = E^{q1 - s} (J^s J^-s) E^{q2 + s}, s = sign(q1)
    s = 1 if q1 > 0 else -1
    # J^+J^- = Nbar - Jz^2 + Jz ;  J^-J^+ = Nbar - Jz^2 - Jz
    pair = {(1, 0): Fraction(1), (0, 2): Fraction(-1), (0, 1): Fraction(s)}   # (Nbar power, Jz power)
    out = {}
    r = q1 - s  # remaining E^{r} on the left; E^r f(Jz) = f(Jz - r) E^r
    for (pp, kk), c in pair.items():
        for j, cj in _shift_poly(kk, -r).items():
            for key, c2 in _mul_EE(p + pp, k + j, r, q2 + s):
                _add(out, key, c * cj * c2)
    return tuple(out.items())


def _mul(A, B):
    out = {}
    for a, ca in A.items():
        for b, cb in B.items():
            for key, c in _mul_basis(a, b):
                _add(out, key, ca * cb * c)
    return out


_ELEM = {ONE: {(0, 0, 0): Fraction(1)}, Z: {(0, 1, 0): Fraction(1)},
         P: {(0, 0, 1): Fraction(1)}, MI: {(0, 0, -1): Fraction(1)}}


# ----------------------------------------------------------------------------------------
# Multi-domain operators on the domains of one channel: dict {(e_1, e_2, ..): Fraction}
# with e_d a one-domain basis element.
# ----------------------------------------------------------------------------------------

def _mmul(A, B):
    out = {}
    for ka, ca in A.items():
        for kb, cb in B.items():
            parts = [_mul_basis(a, b) for a, b in zip(ka, kb)]
            for combo in itertools.product(*parts):
                key = tuple(e for e, _ in combo)
                c = ca * cb
                for _, cc in combo:
                    c *= cc
                _add(out, key, c)
    return out


def _mlin(*pairs):
    out = {}
    for c, A in pairs:
        for k, v in A.items():
            _add(out, k, c * v)
    return out


@lru_cache(maxsize=None)
def channel_action(ndom, ops, sign):
    """Exact adjoint dissipator O^dag X O - {O^dag O, X}/2 on a channel's domains.

    Parameters
    ----------
    ndom : int
        Number of domains the jump operator touches (1 or 2).
    ops : tuple of int, length ndom
        The monomial's symbols on those domains.
    sign : int
        -1 for the emission jump O = sum_d J_d^-, +1 for absorption O = sum_d J_d^+.

    Returns
    -------
    tuple of ((e_1, .., e_ndom), Fraction)
        Normal-ordered result, e_d = (p, k, q) as in the module's one-domain algebra.
    """
    one = (0, 0, 0)

    def single(d, q):
        key = [one] * ndom
        key[d] = (0, 0, q)
        return {tuple(key): Fraction(1)}

    O = _mlin(*[(1, single(d, sign)) for d in range(ndom)])
    Od = _mlin(*[(1, single(d, -sign)) for d in range(ndom)])
    X = {tuple(next(iter(_ELEM[o])) for o in ops): Fraction(1)}
    OdO = _mmul(Od, O)
    res = _mlin((1, _mmul(_mmul(Od, X), O)), (Fraction(-1, 2), _mmul(OdO, X)),
                (Fraction(-1, 2), _mmul(X, OdO)))
    return tuple(res.items())


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
    return [(c, j, sym) for j, c in _shift_poly(k, Fraction(q, 2)).items()]


def _canonical(mono):
    """Transpose-canonical monomial (first charged symbol is J^+), or None if it has charge."""
    if sum(_CHARGE[s] for s in mono) != 0:
        return None
    for s in mono:
        if s == P:
            break
        if s == MI:
            mono = tuple(P if x == MI else MI if x == P else x for x in mono)
            break
    return mono


def label(mono):
    """A readable name such as 'J1z J2+ J3-'."""
    parts = [f"J{i + 1}{_SYM[s]}" for i, s in enumerate(mono) if s != ONE]
    return " ".join(parts) if parts else "1"


# ----------------------------------------------------------------------------------------
# The closed equations
# ----------------------------------------------------------------------------------------

class _Term:
    """coef * rate[r] * prod_d Nbar_d^nbar[d] * prod_f <X_f>, contributing to d<X_target>/dt."""
    __slots__ = ("target", "coef", "rate", "nbar", "factors")

    def __init__(self, target, coef, rate, nbar, factors):
        self.target, self.coef, self.rate, self.nbar, self.factors = target, coef, rate, nbar, factors


def _channel_structure(chain):
    """(symbol, domains, sign) of every jump channel of ``chain.channels()``, and their rates.

    The channels are exactly those of ``trajspin.channels.Channels`` (same order, same rates):
    shared reservoir c emits through L_c at gamma_c (n_c + 1) f_c(t) and absorbs through
    L_c^dag at gamma_c n_c f_c(t); domain i's own reservoir emits through J_i^- at
    kappa_i (nl_i + 1) and absorbs through J_i^+ at kappa_i nl_i.

    Returns
    -------
    structure : tuple of (str, tuple of int, int)
        Rate symbol (for printing), the 1 or 2 domains of O, and -1 (O = sum J^-) or +1
        (O = sum J^+).
    rates : ndarray, shape (P, C)
        Rate of channel k in schedule piece p.
    starts : ndarray, shape (P,)
        Start time of each piece (0 first).
    """
    ch = chain.channels()
    out = []
    for k in range(ch.C):
        d0, d1 = (int(x) for x in ch.domains[k])
        sign = int(ch.direction[k])
        if d1 >= 0:                                   # shared reservoir c = d0
            c = d0 + 1
            hot = chain.n_thermal[d0] > 0
            sym = (f"g{c}(n{c}+1)" if hot else f"g{c}") if sign < 0 else f"g{c}n{c}"
            out.append((sym, (d0, d1), sign))
        else:                                         # local reservoir of domain d0
            i = d0 + 1
            hot = chain.n_thermal_local[d0] > 0
            sym = (f"k{i}(m{i}+1)" if hot else f"k{i}") if sign < 0 else f"k{i}m{i}"
            out.append((sym, (d0,), sign))
    return tuple(out), np.asarray(ch.rates, dtype=float), np.asarray(ch.starts, dtype=float)


class _Symbolic:
    """Closed equations of M domains for one set of jump channels (no numbers but Fractions)."""

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
            m = _canonical(tuple(mono[d] if d in ds else ONE for d in range(self.M)))
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
                    canon = _canonical(tuple(new))
                    if canon is None:
                        continue
                    mean_vars = [self._var(tuple(Z if x == d else ONE for x in range(M)))
                                 for d in means]
                    for cf, fv in self._factorise(canon):
                        self.terms.append(_Term(k, coef * cf, r, dict(nbar), mean_vars + fv))


@lru_cache(maxsize=64)
def _symbolic(M, structure, closure):
    return _Symbolic(M, structure, closure)


def dicke_casimir(sizes):
    """<J_i^2> = (N_i/2)(N_i/2 + 1) of the symmetric ladders (the paper's N_i bar), shape (M,)."""
    s = np.asarray(sizes, dtype=float)
    return 0.5 * s * (0.5 * s + 1.0)


class MeanFieldModel:
    """The closed moment equations of one chain (all its reservoirs and schedule) and closure.

    Parameters
    ----------
    chain : Chain
        Sizes, shared and local reservoirs, temperatures and schedule (``chain.channels()``).
    closure : {"pairs", "paper"}
    casimir : array_like, shape (M,), optional
        The c-number that stands for each conserved J_i^2 in the equations.  Default
        (N_i/2)(N_i/2 + 1) (products of Dicke states); a mixture over total spins j_i uses its
        mean <J_i^2> (see ``analysis/MEAN_FIELD.md``, section 4).

    Attributes
    ----------
    monomials : list of tuple
        Kept moments; ``monomials[k][i]`` is the symbol (0: 1, 1: J^z, 2: J^+, 3: J^-)
        of domain i.  The first M are <J_i^z>.
    labels : list of str
    channels : tuple of (str, tuple of int, int)
        Rate symbol, domains and sign (-1 emission, +1 absorption) of each jump channel.
    rates : ndarray, shape (P, C)
        Rate of each channel in each schedule piece.
    starts : ndarray, shape (P,)
        Start time of each schedule piece.
    scale : ndarray, shape (n,)
        prod of N_i over the domains of each monomial; the ODE variable is <X>/scale.
    """

    def __init__(self, chain, closure="pairs", casimir=None):
        if closure not in CLOSURES:
            raise InputError(f"closure must be one of {CLOSURES}, got {closure!r}")
        self.chain, self.closure, self.M = chain, closure, chain.M
        self.channels, self.rates, self.starts = _channel_structure(chain)
        sym = _symbolic(chain.M, self.channels, closure)
        self.monomials, self.labels, self.terms = sym.monomials, sym.labels, sym.terms
        self.n = len(self.monomials)
        sizes = np.asarray(chain.sizes, dtype=float)
        self.scale = np.array([np.prod(sizes[[d for d, s in enumerate(m) if s != ONE]])
                               for m in self.monomials])
        self.casimir = (dicke_casimir(chain.sizes) if casimir is None
                        else np.asarray(casimir, dtype=float).copy())
        self._groups = [self._compile(p) for p in range(self.rates.shape[0])]

    @property
    def n_pieces(self) -> int:
        return self.rates.shape[0]

    def _compile(self, piece):
        """Numeric coefficients of piece ``piece``: [(targets, coefficients, factor indices)]."""
        rates = self.rates[piece]
        groups = {}
        for t in self.terms:
            c = float(t.coef) * rates[t.rate]
            for d, p in t.nbar.items():
                c *= self.casimir[d] ** p
            c *= (np.prod(self.scale[t.factors]) if t.factors else 1.0) / self.scale[t.target]
            g = groups.setdefault(len(t.factors), ([], [], []))
            g[0].append(t.target)
            g[1].append(c)
            g[2].append(t.factors)
        return [(np.array(g[0], dtype=np.int64), np.array(g[1]),
                 np.array(g[2], dtype=np.int64).reshape(len(g[0]), nf))
                for nf, g in sorted(groups.items())]

    def rhs(self, t, y, piece=0):
        """d y/dt for the scaled moments y, shape (n,), with the rates of schedule piece ``piece``."""
        out = np.zeros(self.n)
        for tgt, c, idx in self._groups[piece]:
            w = c * np.prod(y[idx], axis=1) if idx.shape[1] else c
            out += np.bincount(tgt, weights=w, minlength=self.n)
        return out

    def jacobian(self, t, y, piece=0):
        """d rhs / d y: dense for n <= 200, else CSC sparse."""
        rows, cols, vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
        for tgt, c, idx in self._groups[piece]:
            nf = idx.shape[1]
            if nf == 0:
                continue
            fy = y[idx]
            for j in range(nf):
                others = np.prod(np.delete(fy, j, axis=1), axis=1) if nf > 1 else 1.0
                rows.append(tgt)
                cols.append(idx[:, j])
                vals.append(c * others)
        rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        if self.n <= 200:
            J = np.zeros((self.n, self.n))
            np.add.at(J, (rows, cols), vals)
            return J
        return sp.csc_matrix((vals, (rows, cols)), shape=(self.n, self.n))

    def initial(self, start):
        """Scaled initial moments, shape (n,).

        ``start`` is a sequence of excitation numbers n_i (product of Dicke states) or an
        ``InitialMoments`` (any accepted initial state).
        """
        if not isinstance(start, InitialMoments):
            start = InitialMoments.dicke(self.chain, start)
        return np.array([start.value(m) for m in self.monomials]) / self.scale

    # -- printing -------------------------------------------------------------------
    def equations(self):
        """The closed equations as text, one line per moment (paper notation, <..> implied)."""
        lines = []
        by_target = {}
        for t in self.terms:
            by_target.setdefault(t.target, []).append(t)
        for k, mono in enumerate(self.monomials):
            collected = {}
            for t in by_target.get(k, []):
                key = (self.channels[t.rate][0], tuple(sorted(t.nbar.items())), tuple(sorted(t.factors)))
                collected[key] = collected.get(key, 0) + t.coef
            parts = []
            for (rate, nb, fac), c in sorted(collected.items(), key=lambda kv: (kv[0][0], kv[0][2])):
                if not c:
                    continue
                sym = [f"N{d + 1}bar" + (f"^{p}" if p > 1 else "") for d, p in nb]
                sym += [f"<{self.labels[f]}>" for f in fac]
                mag = abs(c)
                txt = ("" if mag == 1 and sym else f"{mag} ") + "*".join(sym)
                parts.append(("- " if c < 0 else "+ ") + f"{rate}*" + txt.strip())
            rhs = " ".join(parts).lstrip("+ ") if parts else "0"
            lines.append(f"d<{self.labels[k]}>/dt = {rhs}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# Initial moments
# ----------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------
# Result and public entry points
# ----------------------------------------------------------------------------------------

def _chain_with(chain, n_thermal):
    """The chain to simulate: ``chain`` itself, or a copy with the ``n_thermal`` shorthand.

    ``n_thermal=`` is kept as a shorthand for ``Chain(..., n_thermal=...)``: it may set the
    shared reservoirs' occupations of a zero-temperature chain, or repeat the chain's own
    values; it may not contradict them.
    """
    if n_thermal is None:
        return chain
    nth = np.atleast_1d(np.asarray(n_thermal, dtype=float))
    if nth.ndim != 1 or nth.size not in (1, chain.M - 1):
        raise InputError(f"n_thermal needs a scalar or one value per shared reservoir "
                         f"({chain.M - 1}), got shape {np.shape(n_thermal)}")
    nth = np.broadcast_to(nth, (chain.M - 1,))
    if not np.all(np.isfinite(nth)) or np.any(nth < 0):
        raise InputError(f"n_thermal must be finite and >= 0, got {nth.tolist()}")
    if np.allclose(nth, chain.n_thermal, rtol=1e-12, atol=0.0):
        return chain
    if np.any(chain.n_thermal):
        raise InputError(f"n_thermal={nth.tolist()} contradicts the chain's own "
                         f"n_thermal={chain.n_thermal.tolist()}; give it in one place (the Chain)")
    return type(chain)(chain.sizes, gamma=chain.gamma, n_thermal=nth, kappa=chain.kappa,
                       n_thermal_local=chain.n_thermal_local, omega0=chain.omega0,
                       schedule=chain.schedule)


def mean_field_equations(chain, closure="pairs", n_thermal=None) -> str:
    """The closed moment equations of ``chain`` as text.

    Symbols: g_c = gamma_c (times the schedule factor f_c(t) if the chain has a schedule),
    n_c the thermal occupation, k_i / m_i the local rate and occupation, N_i bar the c-number
    standing for J_i^2.  ``<J1+ J2->`` is half the paper's <A>; ``<J1z J2+ J3->`` half its <J_1^z B>.
    """
    return MeanFieldModel(_chain_with(chain, n_thermal), closure).equations()


def solve_mean_field(chain, times, initial=None, n_thermal=None, closure="pairs", rtol=1e-10,
                     atol=1e-13, method=None, past_breakdown=False) -> MeanFieldResult:
    """Mean-field moment dynamics (paper supplement I, derived again from eq. 3).

    Parameters
    ----------
    chain : Chain
        Any sizes from 1 to ~10^8 spins per domain, with everything ``Chain`` holds: rate
        gamma_c and thermal occupation n_c per shared reservoir, local reservoirs kappa_i
        (occupation nl_i), temperatures, and a piecewise-constant ``schedule``.
    times : array_like, shape (T,)
        Strictly increasing, >= 0, units of 1/gamma; the initial state is at t = 0.
    initial : optional
        As for every solver (``trajspin.initial``): one item per domain, an int n / Dicke(n) /
        "excited" / "ground" / "half" / "dicke:n" (Dicke state), SpinsUp(k) / "up:k" (k of N_i
        spins up), Coherent(theta) / "coherent:theta"; or a normalised state vector on the
        coupled Dicke basis; or an ``InitialState``.  Default paper eq. 4: (N_1, 0, .., 0).
        How each sets the moments: ``analysis/MEAN_FIELD.md``, section 4.
    n_thermal : float or sequence of float (M-1), optional
        Shorthand for ``Chain(..., n_thermal=...)``: sets the shared reservoirs' occupations
        of a zero-temperature chain, or repeats the chain's; contradicting a finite-temperature
        chain is an error.  The result's ``chain`` is the chain actually simulated.
    closure : {"pairs", "paper"}
        "pairs" (default): second order, at most M^2 moments, any M; stable for the
        paper's chains.  "paper": the rules S1 with every multi-domain moment kept
        (M = 2: S11, M = 3: the 13 moments of S3; grows ~3^M).  Both coincide for M = 2.
        For M >= 3 "paper" leaves the physical range for Fig. 3's chains (a warning,
        NaN afterwards); see analysis/MEAN_FIELD.md.
    rtol, atol : float
        Tolerances on the scaled moments <X>/prod N_i (all of order 1).
    method : {None, "LSODA", "Radau", "BDF"}
        Stiff integrator of ``scipy.integrate.solve_ivp``; None picks LSODA (dense
        analytic Jacobian) up to 200 moments, BDF (sparse Jacobian) beyond.
    past_breakdown : bool
        Keep integrating after some |<J_i^z>|/N_i leaves [-1/2, 1/2] and return those values
        (with the ``MeanFieldBreakdown`` warning and ``meta["breakdown_time"]``) instead of
        NaN: what the closure itself does there, e.g. "paper" on (10^6, 10^4, 10^2) stays
        bounded, <J_3^z>/N_3 overshooting to ~0.56 near gamma t = 1.1e-3.  Not physics.

    Returns
    -------
    MeanFieldResult
        ``.jz`` (T, M), ``.jz_over_n``, ``.moments`` (T, n) with ``.labels``.

    Notes
    -----
    A schedule is integrated piece by piece, each piece with its own rates, from one switch
    time to the next (the switch times are integration boundaries, never stepped over).
    """
    t = check_times(times)
    if method not in (None, "Radau", "BDF", "LSODA"):
        raise InputError(f"method must be a stiff solver: 'Radau', 'BDF' or 'LSODA', got {method!r}")
    if closure not in CLOSURES:
        raise InputError(f"closure must be one of {CLOSURES}, got {closure!r}")
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not (np.isfinite(tol) and tol > 0):
            raise InputError(f"{name} must be a positive number, got {tol!r}")
    chain = _chain_with(chain, n_thermal)
    start = initial_moments(chain, initial)
    wall = time.perf_counter()
    model = MeanFieldModel(chain, closure, casimir=start.casimir)
    if method is None:
        method = "LSODA" if model.n <= 200 else "BDF"
    if method == "LSODA" and model.n > 200:
        raise InputError(f"LSODA needs a dense Jacobian; use 'BDF' or 'Radau' for {model.n} moments")
    y0 = model.initial(start)
    Y = np.full((t.size, model.n), np.nan)
    Y[t == 0.0] = y0
    nfev, breakdown, why = 0, None, None
    M = chain.M

    def unphysical(_, y, *args):        # > 0 while every |<J_i^z>|/N_i <= 1/2 (+ margin)
        return BREAKDOWN_MARGIN + 0.5 - np.max(np.abs(y[:M]))
    unphysical.terminal = not past_breakdown

    bounds = np.append(model.starts, np.inf)
    y, t_now = y0, 0.0
    for p in range(model.n_pieces):
        t_end = min(bounds[p + 1], t[-1])
        if t_end <= t_now:
            continue
        inside = (t > t_now) & (t <= t_end)
        t_eval = np.append(t[inside], t_end) if not (inside.any() and t[inside][-1] == t_end) \
            else t[inside]
        with np.errstate(over="ignore", invalid="ignore"):
            sol = solve_ivp(model.rhs, (t_now, t_end), y, method=method, t_eval=t_eval, rtol=rtol,
                            atol=atol, jac=model.jacobian, events=unphysical, args=(p,))
        nfev += int(sol.nfev)
        if past_breakdown and breakdown is None and sol.t_events[0].size:
            breakdown = float(sol.t_events[0][0])
            i = int(np.argmax(np.abs(sol.y_events[0][0][:M])))
            why = f"<J_{i + 1}^z>/N_{i + 1} left [-1/2, 1/2]"
        keep = sol.t <= t_end
        got = np.isin(t, sol.t[keep]) & inside
        Y[got] = sol.y.T[np.searchsorted(sol.t, t[got])]
        if sol.status != 0:
            if sol.status == 1:
                breakdown = float(sol.t_events[0][0])
                i = int(np.argmax(np.abs(sol.y_events[0][0][:M])))
                why = f"<J_{i + 1}^z>/N_{i + 1} left [-1/2, 1/2]"
            else:
                breakdown = float(sol.t[-1]) if sol.t.size else t_now
                why = f"the integrator stopped ({sol.message})"
            break
        y, t_now = sol.y[:, -1], t_end
    if breakdown is not None:
        later = "later times are NaN"
        if past_breakdown and sol.status == 0:
            later = "later values are the closure's, outside the physical range"
        else:
            Y[t > breakdown] = np.nan
        warnings.warn(f"mean field ({closure} closure) of {chain!r} breaks down at "
                      f"gamma*t = {breakdown:.4g}: {why}; {later}. The closure "
                      "is meant for large, strongly unbalanced domains (see analysis/README.md).",
                      MeanFieldBreakdown, stacklevel=2)
    moments = Y * model.scale
    meta = {"initial": list(start.excitations) if start.excitations is not None else start.label,
            "initial_label": start.label, "casimir": start.casimir.tolist(),
            "exact_at_t0": start.sharp, "closure": closure,
            "n_thermal": chain.n_thermal.tolist(), "kappa": chain.kappa.tolist(),
            "n_thermal_local": chain.n_thermal_local.tolist(),
            "schedule": None if chain.schedule is None else chain.schedule.to_dict(),
            "breakdown_time": breakdown, "solver": f"solve_ivp {method}",
            "rtol": rtol, "atol": atol, "nfev": nfev, "n_moments": model.n,
            "wall_time": time.perf_counter() - wall, "versions": versions()}
    return MeanFieldResult(chain, t, moments, model.labels, meta)
