r"""The closed moment equations of one chain as numbers: right-hand side and analytic Jacobian.

``MeanFieldModel`` takes the exact symbolic equations of the chain's jump channels and closure
(``trajspin.mean_field.closures``) and evaluates them with the chain's rates, one schedule
piece at a time, and the c-numbers N_i bar that stand for the conserved J_i^2.

Scaling.  Moments are scaled by the sizes of the domains they involve,
y_X = <X> / prod_{i in X} N_i, so that every variable is of order 1 for domains of 1 to
10^8 spins; a term coef * rate * prod_d Nbar_d^p_d * prod_f <X_f> of d<X>/dt becomes

    dy_X/dt += coef * rate * prod_d Nbar_d^p_d * (prod_f scale_f / scale_X) * prod_f y_f.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from trajspin.mean_field.algebra import ONE
from trajspin.mean_field.closures import check_closure, symbolic_equations
from trajspin.mean_field.moments import InitialMoments, dicke_casimir

__all__ = ["MeanFieldModel", "DENSE_MAX"]

# The Jacobian is a dense array up to this many moments (LSODA needs one), CSC sparse beyond.
DENSE_MAX = 200


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
        check_closure(closure)
        self.chain, self.closure, self.M = chain, closure, chain.M
        self.channels, self.rates, self.starts = _channel_structure(chain)
        sym = symbolic_equations(chain.M, self.channels, closure)
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
        """d rhs / d y, shape (n, n): a dense array for n <= DENSE_MAX, else CSC sparse."""
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
        if self.n <= DENSE_MAX:
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

