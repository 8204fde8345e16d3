"""The jump channels of a chain: which collective operator, which direction, which rate.

Every channel k is a collective operator O_k on one or two domains, lowering (direction -1)
or raising (+1) the total excitation K by one, with rate r_k:

    shared reservoir c, emission     O = J_c^- + J_{c+1}^-   r = gamma_c (n_c + 1) f_c(t)
    shared reservoir c, absorption   O = J_c^+ + J_{c+1}^+   r = gamma_c n_c f_c(t)
    local reservoir of domain i      O = J_i^-  at kappa_i (nl_i + 1),  O = J_i^+  at kappa_i nl_i

f_c(t) is the schedule factor of reservoir c (1 without a schedule).  Channels whose rate is
zero at all times are left out, so the paper's model has exactly the M-1 emission channels
c = 0..M-2, in that order.  Reservoirs are numbered 0..M-2 (shared) and M-1+i (local
reservoir of domain i).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["Channels", "channels_of", "LOWER", "RAISE"]

LOWER = -1
RAISE = +1


class Channels:
    """Jump channels of a chain as plain arrays (C channels, P schedule pieces).

    Attributes
    ----------
    domains : int64 ndarray, shape (C, 2)
        Domains whose J^- (or J^+) make up O_k; the second is -1 for a local channel.
    direction : int64 ndarray, shape (C,)     -1 lowers K (emission), +1 raises K (absorption)
    reservoir : int64 ndarray, shape (C,)     0..M-2 shared, M-1+i local of domain i
    rates : float64 ndarray, shape (P, C)     r_k in each schedule piece (P = 1 without schedule)
    starts : float64 ndarray, shape (P,)      start time of each piece (0 first)
    names : list of str                       e.g. "R1 emission", "D2 local absorption"
    """

    def __init__(self, chain):
        M = chain.M
        factors = (np.ones((1, M - 1)) if chain.schedule is None else chain.schedule.factors)
        self.starts = np.zeros(1) if chain.schedule is None else chain.schedule.starts
        dom, dirn, res, rates, names = [], [], [], [], []

        def add(d, direction, reservoir, r, name):
            r = np.asarray(r, dtype=float)
            if np.any(r > 0):
                dom.append(d)
                dirn.append(direction)
                res.append(reservoir)
                rates.append(r)
                names.append(name)

        for c in range(M - 1):
            g, n = chain.gamma[c], chain.n_thermal[c]
            add((c, c + 1), LOWER, c, g * (n + 1.0) * factors[:, c], f"R{c + 1} emission")
            add((c, c + 1), RAISE, c, g * n * factors[:, c], f"R{c + 1} absorption")
        P = factors.shape[0]
        for i in range(M):
            k, n = chain.kappa[i], chain.n_thermal_local[i]
            add((i, -1), LOWER, M - 1 + i, np.full(P, k * (n + 1.0)), f"D{i + 1} local emission")
            add((i, -1), RAISE, M - 1 + i, np.full(P, k * n), f"D{i + 1} local absorption")
        self.domains = np.array(dom, dtype=np.int64).reshape(-1, 2)
        self.direction = np.array(dirn, dtype=np.int64)
        self.reservoir = np.array(res, dtype=np.int64)
        self.rates = np.ascontiguousarray(np.array(rates).T.reshape(P, -1))
        self.names = names
        self.M = M
        self.n_reservoirs = M - 1 + (M if chain.has_local else 0)

    @property
    def C(self) -> int:
        """Number of channels."""
        return self.direction.size

    @property
    def P(self) -> int:
        """Number of schedule pieces."""
        return self.rates.shape[0]

    @property
    def raises(self) -> bool:
        """True if some channel can raise the excitation."""
        return bool(np.any(self.direction == RAISE))

    def piece(self, t) -> int:
        """Schedule piece holding time t."""
        return int(np.searchsorted(self.starts, t, side="right") - 1)

    def reservoir_names(self):
        """Names of the reservoirs 0..n_reservoirs-1: "R1".."R{M-1}", then "D1 local".. if any."""
        names = [f"R{c + 1}" for c in range(self.M - 1)]
        return names + [f"D{i + 1} local" for i in range(self.n_reservoirs - len(names))]

    def __repr__(self):
        return f"Channels({', '.join(self.names)}; {self.P} piece(s))"


@lru_cache(maxsize=8)
def channels_of(chain) -> Channels:
    """The jump channels of a (hashable) chain, built once; the 8 latest are kept."""
    return Channels(chain)
