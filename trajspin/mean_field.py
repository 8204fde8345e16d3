r"""Mean-field (moment-closure) dynamics of the chain, for domains of 1 to 10^8 spins.

The derivation is in ``analysis/MEAN_FIELD.md``; in short:

Heisenberg equations.  For the master equation (paper eq. 3, plus the thermal
partners of supplement III)

    d rho/dt = -i w0 [sum_i J_i^z, rho]
               + sum_c (gamma_c/2) [(n_c+1) D[L_c] + n_c D[L_c^dag]] rho,
    L_c = J_c^- + J_{c+1}^-,    D[O] rho = 2 O rho O^dag - {O^dag O, rho},

an observable X evolves as

    d<X>/dt = sum_(rate r, jump O) r < O^dag X O - {O^dag O, X}/2 >

with (r, O) = (gamma_c (n_c+1), L_c) and (gamma_c n_c, L_c^dag); the
Hamiltonian drops out of every moment kept here (they commute with sum_i J_i^z).

Moments.  The state starts as a product of Dicke states |N_i/2, n_i - N_i/2>,
so J_i^2 = Nbar_i = (N_i/2)(N_i/2 + 1) throughout, the state stays real in the
Dicke basis (<X> = <X^T>, hence <J_a^+ J_b^-> = <J_a^- J_b^+>) and only moments
with as many J^+ as J^- survive.  A *monomial* is a product over domains of one
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

Both closures are exact at t = 0 (product of Dicke states) and keep every
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

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

from .model import InputError
from .results import MasterResult, format_table, versions
from .validation import check_initial, check_times

__all__ = ["solve_mean_field", "mean_field_equations", "MeanFieldResult", "MeanFieldModel",
           "MeanFieldBreakdown", "CLOSURES"]

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
    from math import comb
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


def _channels(chain, n_thermal, kappa, n_local):
    """(rate symbol, numeric rate, domains, sign) of every jump operator with a non-zero rate."""
    out = []
    for c in range(chain.M - 1):
        g, n = float(chain.gamma[c]), float(n_thermal[c])
        out.append((f"g{c + 1}(n{c + 1}+1)" if n else f"g{c + 1}", g * (n + 1), (c, c + 1), -1))
        if n > 0:
            out.append((f"g{c + 1}n{c + 1}", g * n, (c, c + 1), +1))
    if kappa is not None:
        for i in range(chain.M):
            k, n = float(kappa[i]), float(n_local[i])
            if k > 0:
                out.append((f"k{i + 1}(m{i + 1}+1)" if n else f"k{i + 1}", k * (n + 1), (i,), -1))
                if n > 0:
                    out.append((f"k{i + 1}m{i + 1}", k * n, (i,), +1))
    return out


class MeanFieldModel:
    """The closed moment equations of one chain, reservoir set and closure.

    Attributes
    ----------
    monomials : list of tuple
        Kept moments; ``monomials[k][i]`` is the symbol (0: 1, 1: J^z, 2: J^+, 3: J^-)
        of domain i.  The first M are <J_i^z>.
    labels : list of str
    scale : ndarray, shape (n,)
        prod of N_i over the domains of each monomial; the ODE variable is <X>/scale.
    """

    def __init__(self, chain, n_thermal, closure="pairs", kappa=None, n_local=None):
        if closure not in CLOSURES:
            raise InputError(f"closure must be one of {CLOSURES}, got {closure!r}")
        self.chain, self.closure = chain, closure
        M = chain.M
        self.M = M
        self.channels = _channels(chain, n_thermal, kappa, n_local)
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
        sizes = np.asarray(chain.sizes, dtype=float)
        self.scale = np.array([np.prod(sizes[[d for d, s in enumerate(m) if s != ONE]])
                               for m in self.monomials])
        self._compile()

    # -- symbolic derivation --------------------------------------------------------
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
        for r, (_, _, doms, sign) in enumerate(self.channels):
            action = channel_action(len(doms), tuple(mono[d] for d in doms), sign)
            for elems, c in action:
                # close each touched domain
                per_dom = [_close_domain(e) for e in elems]
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

    # -- numerics -------------------------------------------------------------------
    def _compile(self):
        sizes = np.asarray(self.chain.sizes, dtype=float)
        nbar = 0.5 * sizes * (0.5 * sizes + 1.0)
        rates = np.array([ch[1] for ch in self.channels])
        groups = {}
        for t in self.terms:
            c = float(t.coef) * rates[t.rate]
            for d, p in t.nbar.items():
                c *= nbar[d] ** p
            c *= np.prod(self.scale[t.factors]) / self.scale[t.target] if t.factors else 1.0 / self.scale[t.target]
            g = groups.setdefault(len(t.factors), ([], [], []))
            g[0].append(t.target)
            g[1].append(c)
            g[2].append(t.factors)
        self._groups = [(np.array(g[0], dtype=np.int64), np.array(g[1]),
                         np.array(g[2], dtype=np.int64).reshape(len(g[0]), nf))
                        for nf, g in sorted(groups.items())]
        self.n = len(self.monomials)

    def rhs(self, t, y):
        """d y/dt for the scaled moments y, shape (n,)."""
        out = np.zeros(self.n)
        for tgt, c, idx in self._groups:
            w = c * np.prod(y[idx], axis=1) if idx.shape[1] else c
            out += np.bincount(tgt, weights=w, minlength=self.n)
        return out

    def jacobian(self, t, y):
        """d rhs / d y: dense for n <= 200, else CSC sparse."""
        rows, cols, vals = [], [], []
        for tgt, c, idx in self._groups:
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

    def initial(self, n0):
        """Scaled moments of the product of Dicke states with excitations n0, shape (n,)."""
        m = np.asarray(n0, dtype=float) - 0.5 * np.asarray(self.chain.sizes, dtype=float)
        y = np.empty(self.n)
        for k, mono in enumerate(self.monomials):
            if any(s in (P, MI) for s in mono):
                y[k] = 0.0
            else:
                y[k] = np.prod([m[d] for d, s in enumerate(mono) if s == Z])
        return y / self.scale

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
# Result and public entry points
# ----------------------------------------------------------------------------------------

class MeanFieldResult(MasterResult):
    """Mean-field evolution of the moments.

    Attributes
    ----------
    times : ndarray, shape (T,)
    jz : ndarray, shape (T, M)
        Unnormalised <J_i^z>(t).
    moments : ndarray, shape (T, n)
        All kept moments <X_k>(t) (unscaled), named by ``labels``.
    labels : list of str
        e.g. 'J1z', 'J1+ J2-' (= <A>/2 in the paper's notation), 'J1z J2+ J3-'.
    chain : Chain
    meta : dict   (initial, closure, n_thermal, solver, wall time, versions)
    """

    kind = "mean_field"
    _arrays = ("times", "jz", "moments")

    def __init__(self, chain, times, moments, labels, meta=None):
        moments = np.asarray(moments, dtype=float)
        self.moments = moments
        self.labels = list(labels)
        jz = moments[:, : chain.M]
        T = moments.shape[0]
        super().__init__(chain, times, jz, np.ones((T, 1)), meta)
        self.meta.setdefault("labels", self.labels)

    @property
    def breakdown_time(self):
        """gamma*t where the closure left the physical range (later values NaN), or None."""
        return self.meta.get("breakdown_time")

    def moment(self, name):
        """<X>(t) of a kept moment by label, e.g. ``res.moment('J1+ J2-')``, shape (T,)."""
        try:
            return self.moments[:, self.labels.index(name)]
        except ValueError:
            raise InputError(f"no moment {name!r}; kept: {self.labels}") from None

    def __str__(self):
        n = self.meta.get("n_thermal")
        temp = "" if not n or not any(n) else f", n_thermal = {n}"
        bd = self.breakdown_time
        bd = "" if bd is None else f"\nclosure BROKE DOWN at gamma*t = {bd:.4g} (NaN afterwards)"
        return (f"MeanFieldResult: {self.meta.get('closure')} closure ({len(self.labels)} moments) of "
                f"{self.chain!r}{temp}, initial n = {self.meta.get('initial')}, {len(self.times)} times "
                f"in [{self.times[0]:g}, {self.times[-1]:g}]/gamma{bd}\n"
                f"<J_i^z>/N_i:\n" + format_table(self.times, self.jz_over_n, sizes=self.chain.sizes))

    __repr__ = __str__


def _per_reservoir(value, count, what):
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1 or arr.size not in (1, count):
        raise InputError(f"{what} needs a scalar or one value per entry ({count}), got {np.shape(value)}")
    arr = np.broadcast_to(arr, (count,)).astype(float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InputError(f"{what} must be finite and >= 0, got {arr.tolist()}")
    return arr


def _reservoirs(chain, n_thermal):
    """Thermal occupations per reservoir and local channels, from the arguments and the chain."""
    own = getattr(chain, "n_thermal", None)
    own = None if own is None else _per_reservoir(own, chain.M - 1, "chain.n_thermal")
    if n_thermal is None:
        nth = own if own is not None else np.zeros(chain.M - 1)
    else:
        nth = _per_reservoir(n_thermal, chain.M - 1, "n_thermal")
        if own is not None and np.any(own) and not np.allclose(own, nth):
            raise InputError(f"n_thermal={nth.tolist()} contradicts the chain's own "
                             f"n_thermal={own.tolist()}; give it in one place")
    kappa = getattr(chain, "kappa", None)
    n_local = None
    if kappa is not None:
        kappa = _per_reservoir(kappa, chain.M, "chain.kappa")
        if not np.any(kappa):
            kappa = None
        else:
            n_local = _per_reservoir(getattr(chain, "n_thermal_local", 0.0) or 0.0, chain.M,
                                     "chain.n_thermal_local")
    if getattr(chain, "schedule", None) is not None:
        raise InputError("solve_mean_field does not support reservoir schedules yet")
    return nth, kappa, n_local


@lru_cache(maxsize=32)
def _model_cached(sizes, gamma, nth, closure, kappa, n_local):
    from .model import Chain
    chain = Chain(list(sizes), gamma=list(gamma))
    return MeanFieldModel(chain, np.array(nth), closure,
                          None if kappa is None else np.array(kappa),
                          None if n_local is None else np.array(n_local))


def _model(chain, nth, closure, kappa, n_local):
    return _model_cached(tuple(chain.sizes), tuple(chain.gamma.tolist()), tuple(nth.tolist()), closure,
                         None if kappa is None else tuple(kappa.tolist()),
                         None if n_local is None else tuple(n_local.tolist()))


def _check_initial(chain, initial):
    if initial is not None and (isinstance(initial, (str, bytes, dict)) or hasattr(initial, "state")
                                or hasattr(initial, "psi")):
        raise InputError(
            "the mean field starts from a product of Dicke states |N_i/2, n_i - N_i/2> only: pass "
            "initial as a sequence of excitation numbers n_i. Coherent spin states (<J^+> != 0), "
            "'k of N spins up' mixtures over j (J_i^2 != Nbar_i) and general coupled states are "
            "outside the closure")
    return check_initial(chain, initial)


def mean_field_equations(chain, closure="pairs", n_thermal=None) -> str:
    """The closed moment equations of ``chain`` as text (symbols: g_c = gamma_c, n_c, N_i bar).

    ``<J1+ J2->`` is half the paper's <A>; ``<J1z J2+ J3->`` half its <J_1^z B>.
    """
    nth, kappa, n_local = _reservoirs(chain, n_thermal)
    return _model(chain, nth, closure, kappa, n_local).equations()


def solve_mean_field(chain, times, initial=None, n_thermal=None, closure="pairs", rtol=1e-10,
                     atol=1e-13, method=None) -> MeanFieldResult:
    """Mean-field moment dynamics (paper supplement I, derived again from eq. 3).

    Parameters
    ----------
    chain : Chain
        Any sizes from 1 to ~10^8 spins per domain; ``chain.gamma`` per reservoir.
    times : array_like, shape (T,)
        Strictly increasing, >= 0, units of 1/gamma; the initial state is at t = 0.
    initial : sequence of int, optional
        Excitation numbers n_i of the initial product of Dicke states (default paper
        eq. 4: (N_1, 0, .., 0)).  Other kinds of initial state are refused.
    n_thermal : float or sequence of float (M-1), optional
        Thermal occupation n_c of each reservoir (emission gamma_c (n_c+1) L_c,
        absorption gamma_c n_c L_c^dag).  Default: the chain's own ``n_thermal`` if it
        has one, else 0.
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

    Returns
    -------
    MeanFieldResult
        ``.jz`` (T, M), ``.jz_over_n``, ``.moments`` (T, n) with ``.labels``.
    """
    t = check_times(times)
    n0 = _check_initial(chain, initial)
    if method not in (None, "Radau", "BDF", "LSODA"):
        raise InputError(f"method must be a stiff solver: 'Radau', 'BDF' or 'LSODA', got {method!r}")
    if closure not in CLOSURES:
        raise InputError(f"closure must be one of {CLOSURES}, got {closure!r}")
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not (np.isfinite(tol) and tol > 0):
            raise InputError(f"{name} must be a positive number, got {tol!r}")
    nth, kappa, n_local = _reservoirs(chain, n_thermal)
    start = time.perf_counter()
    model = _model(chain, nth, closure, kappa, n_local)
    if method is None:
        method = "LSODA" if model.n <= 200 else "BDF"
    if method == "LSODA" and model.n > 200:
        raise InputError(f"LSODA needs a dense Jacobian; use 'BDF' or 'Radau' for {model.n} moments")
    y0 = model.initial(n0)
    Y = np.full((t.size, model.n), np.nan)
    Y[t == 0.0] = y0
    nfev, breakdown = 0, None
    if t[-1] > 0:
        M = chain.M

        def unphysical(_, y):            # > 0 while every |<J_i^z>|/N_i <= 1/2 (+ margin)
            return BREAKDOWN_MARGIN + 0.5 - np.max(np.abs(y[:M]))
        unphysical.terminal = True

        with np.errstate(over="ignore", invalid="ignore"):
            sol = solve_ivp(model.rhs, (0.0, t[-1]), y0, method=method, t_eval=t, rtol=rtol,
                            atol=atol, jac=model.jacobian, events=unphysical)
        nfev = int(sol.nfev)
        Y[np.searchsorted(t, sol.t)] = sol.y.T
        if sol.status == 1:
            breakdown = float(sol.t_events[0][0])
        elif sol.status != 0:
            breakdown = float(sol.t[-1]) if sol.t.size else 0.0
        if breakdown is not None:
            i = int(np.argmax(np.abs(sol.y_events[0][0][:M]))) if sol.status == 1 else None
            why = (f"<J_{i + 1}^z>/N_{i + 1} left [-1/2, 1/2]" if i is not None
                   else f"the integrator stopped ({sol.message})")
            warnings.warn(f"mean field ({closure} closure) of {chain!r} breaks down at "
                          f"gamma*t = {breakdown:.4g}: {why}; later times are NaN. The closure "
                          "is meant for large, strongly unbalanced domains (see analysis/README.md).",
                          MeanFieldBreakdown, stacklevel=2)
    moments = Y * model.scale
    meta = {"initial": list(n0), "closure": closure, "n_thermal": nth.tolist(),
            "breakdown_time": breakdown,
            "kappa": None if kappa is None else kappa.tolist(), "solver": f"solve_ivp {method}",
            "rtol": rtol, "atol": atol, "nfev": nfev, "n_moments": model.n,
            "wall_time": time.perf_counter() - start, "versions": versions()}
    return MeanFieldResult(chain, t, moments, model.labels, meta)
