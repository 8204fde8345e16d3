r"""Exact operator algebra of the moments: monomials and the adjoint dissipator of one channel.

Heisenberg equations.  For the master equation of ``Chain`` (paper eq. 3, the thermal
partners of supplement III, local reservoirs, schedules), in Lindblad form over the jump
channels of ``trajspin.channels.Channels``,

    d rho/dt = -i w0 [sum_i J_i^z, rho] + sum_k r_k(t) (O_k rho O_k^dag - {O_k^dag O_k, rho}/2),
    (r, O) = (gamma_c (n_c+1) f_c(t), L_c), (gamma_c n_c f_c(t), L_c^dag),
             (kappa_i (nl_i+1), J_i^-), (kappa_i nl_i, J_i^+),      L_c = J_c^- + J_{c+1}^-,

an observable X evolves as

    d<X>/dt = sum_k r_k(t) < O_k^dag X O_k - {O_k^dag O_k, X}/2 >;

the Hamiltonian drops out of every moment kept here (they commute with sum_i J_i^z).

Moments.  Collective operators conserve every J_i^2; the equations replace J_i^2 by one
c-number, the initial <J_i^2> (``trajspin.mean_field.moments``).  All operators are real in
the Dicke basis, so <X> = <X^T> (hence <J_a^+ J_b^-> = <J_a^- J_b^+>, see ``canonical``), and
the generator is U(1) covariant, so only moments with as many J^+ as J^- are kept.  A
*monomial* is a tuple with one symbol per domain, ONE, Z, P or MI for {1, J_i^z, J_i^+,
J_i^-}, e.g. (Z, P, MI) = J_1^z J_2^+ J_3^-.  The generator maps a monomial to products in
which one domain carries a word of degree <= 2, normal ordered as
Nbar^p (J^z)^k (J^+-)^|q| with

    J^+J^- = Nbar - (J^z)^2 + J^z,      J^-J^+ = Nbar - (J^z)^2 - J^z;

``channel_action`` computes this exactly, with ``Fraction`` coefficients.
"""
from __future__ import annotations

import itertools
from fractions import Fraction
from functools import lru_cache
from math import comb

__all__ = ["ONE", "Z", "P", "MI", "shift_poly", "channel_action", "canonical", "label"]

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
    """acc[key] += c, dropping the key when the sum is zero (exact cancellation)."""
    if c:
        v = acc.get(key, 0) + c
        if v:
            acc[key] = v
        else:
            acc.pop(key, None)


def shift_poly(k, s):
    """(J^z + s)^k as {power: coefficient}."""
    return {j: comb(k, j) * Fraction(s) ** (k - j) for j in range(k + 1)}


@lru_cache(maxsize=None)
def _mul_basis(a, b):
    """Product of two one-domain basis elements, as a tuple of ((p, k, q), coefficient)."""
    (p1, k1, q1), (p2, k2, q2) = a, b
    # E^{q1} (J^z)^{k2} = (J^z - q1)^{k2} E^{q1}
    out = {}
    for j, c in shift_poly(k2, -q1).items():
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
        for j, cj in shift_poly(kk, -r).items():
            for key, c2 in _mul_EE(p + pp, k + j, r, q2 + s):
                _add(out, key, c * cj * c2)
    return tuple(out.items())


_ELEM = {ONE: {(0, 0, 0): Fraction(1)}, Z: {(0, 1, 0): Fraction(1)},
         P: {(0, 0, 1): Fraction(1)}, MI: {(0, 0, -1): Fraction(1)}}


# ----------------------------------------------------------------------------------------
# Multi-domain operators on the domains of one channel: dict {(e_1, e_2, ..): Fraction}
# with e_d a one-domain basis element.
# ----------------------------------------------------------------------------------------

def _mmul(A, B):
    """Product A B of two multi-domain operators (one-domain products, domain by domain)."""
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
    """Linear combination sum_i c_i A_i of multi-domain operators, from (c_i, A_i) pairs."""
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


def canonical(mono):
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

