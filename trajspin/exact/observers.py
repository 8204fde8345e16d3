"""Observables of the exact solvers from Dicke-basis sector blocks {K: rho_K}.

``BlockObserver.observe`` returns only quantities linear in the blocks, so the contributions
of the effective chains of a mixture (``trajspin.initial``), weights included, simply add
(``add_observations``); ``combine_observations`` then finishes the non-linear ones
(variances, rates per reservoir, logarithmic negativities).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from trajspin.exact.negativity import PairReducer, trace_norm_pt
from trajspin.observables import coherence_elements

__all__ = ["BlockObserver", "add_observations", "combine_observations"]


class BlockObserver:
    """Observables of one effective chain from its Dicke-basis blocks {K: rho_K}.

    Everything returned by ``observe`` is linear in the blocks (weights included), so the
    contributions of the effective chains of a mixture simply add
    (``combine_observations`` finishes variances, rates and negativities).

    Parameters
    ----------
    chain : Chain           the true chain (sizes N_i, channels and their rates)
    eff : Chain             the effective chain (sizes 2 j_i) whose blocks are observed
    offset : ndarray (M,)   N_i/2 - j_i, excitations below the spin-j ladder
    names : tuple of str    checked observable names
    pairs : list of (a, b)  domain pairs for log_negativity
    K_range : iterable      sectors of the effective chain that will be passed
    """

    def __init__(self, chain, eff, offset, names, pairs, K_range):
        self.names = names
        self.M = chain.M
        self.Nmax = max(chain.sizes)
        basis = eff.sectors
        self.basis = basis
        self.Koff = int(np.sum(offset))
        self.K_range = list(K_range)
        ch = eff.channels()
        if ch.names != chain.channels().names:
            raise RuntimeError("effective chain has other channels than the chain")
        self.C = ch.C
        self.sizes2j = tuple(eff.sizes)
        self.jz = {}
        self.ntrue = {}
        self.coh = {}
        self.chan = {}
        N = np.asarray(chain.sizes, dtype=float)
        for K in self.K_range:
            n = basis.number_diagonals(K) + offset[None, :]
            self.ntrue[K] = n.astype(np.int64)
            self.jz[K] = n - 0.5 * N[None, :]
            if "coherence" in names:
                self.coh[K] = [coherence_elements(basis, K, i) for i in range(self.M - 1)]
            tabs = []          # O_k^T O_k (channel and reservoir rates are always reported)
            for k in range(ch.C):
                O = basis.channel_matrix(ch, k, K)
                W = (O.T @ O).tocoo() if O.shape[0] else sp.coo_matrix((n.shape[0],) * 2)
                tabs.append((W.row, W.col, W.data))
            self.chan[K] = tabs
        self.pairs = list(pairs) if "log_negativity" in names else []
        self.reducers = [PairReducer(basis, a, b, self.K_range) for a, b in self.pairs]

    def observe(self, blocks) -> dict:
        """Linear contributions of {K: rho_K}: pops (by true K), jz, jz2, n_dist, coherence,
        chan (<O_k^dag O_k>, unscaled), pair (list of {(2j_a, 2j_b): rho_ab})."""
        M = self.M
        out = {"pops": {}, "jz": np.zeros(M), "jz2": np.zeros(M), "chan": np.zeros(self.C)}
        if "n_dist" in self.names:
            out["n_dist"] = np.zeros((M, self.Nmax + 1))
        if "coherence" in self.names:
            out["coherence"] = np.zeros(M - 1)
        for K, rho in blocks.items():
            diag = np.diagonal(rho)
            out["pops"][K + self.Koff] = float(diag.sum())
            jz = self.jz[K]
            out["jz"] += diag @ jz
            out["jz2"] += diag @ (jz * jz)
            if "n_dist" in self.names:
                nt = self.ntrue[K]
                for i in range(M):
                    out["n_dist"][i] += np.bincount(nt[:, i], weights=diag, minlength=self.Nmax + 1)
            if "coherence" in self.names:
                for i, (rows, cols, amps) in enumerate(self.coh[K]):
                    out["coherence"][i] += float(np.sum(amps * rho[cols, rows]))
            for k, (r, c, v) in enumerate(self.chan[K]):
                if v.size:
                    out["chan"][k] += float(np.sum(v * rho[r, c]))
        out["pair"] = [{(self.sizes2j[a], self.sizes2j[b]): red.reduce(blocks)}
                       for (a, b), red in zip(self.pairs, self.reducers)]
        return out


def add_observations(total, part):
    """Sum two ``BlockObserver.observe`` outputs (``total`` may be None; updated in place)."""
    if total is None:
        return part
    for key, val in part.items():
        if key == "pops":
            for K, p in val.items():
                total["pops"][K] = total["pops"].get(K, 0.0) + p
        elif key == "pair":
            for tp, pp in zip(total["pair"], val):
                for g, rho in pp.items():
                    tp[g] = tp[g] + rho if g in tp else rho.copy()
        else:
            total[key] = total[key] + val
    return total


def combine_observations(parts, chain, names, rates, K_hi, pairs):
    """Final observables at one time from the summed linear contributions.

    Parameters
    ----------
    parts : list of dict        ``BlockObserver.observe`` outputs (all effective chains)
    rates : ndarray (C,)        channel rates r_k of the schedule piece at this time
    K_hi : int                  highest true sector reported in ``sector_populations``

    Returns
    -------
    dict with "jz" (M,), "sector_populations" (K_hi + 1,), "jz2", "jz_var", "n_dist",
    "coherence", "channel_rates" (C,), "reservoir_rates" (R,), "log_negativity" (pairs,)
    """
    total = None
    for p in parts:
        total = add_observations(total, {k: (dict(v) if k == "pops" else
                                     [dict(x) for x in v] if k == "pair" else v.copy())
                                 for k, v in p.items()})
    ch = chain.channels()
    pops = np.zeros(K_hi + 1)
    for K, p in total["pops"].items():
        pops[K] += p
    chan_rates = rates * total["chan"]
    res_rates = np.zeros(ch.n_reservoirs)
    np.add.at(res_rates, ch.reservoir, -ch.direction * chan_rates)
    out = {"jz": total["jz"], "sector_populations": pops, "channel_rates": chan_rates,
           "reservoir_rates": res_rates, "jz2": total["jz2"],
           "jz_var": total["jz2"] - total["jz"] ** 2}
    if "n_dist" in names:
        out["n_dist"] = total["n_dist"]
    if "coherence" in names:
        out["coherence"] = total["coherence"]
    if "log_negativity" in names:
        en = np.zeros(len(pairs))
        for q, ((a, b), groups) in enumerate(zip(pairs, total["pair"])):
            norm = 0.0
            for (ja, jb), rho in groups.items():
                norm += trace_norm_pt(rho, ja + 1, jb + 1)
            en[q] = np.log2(norm)
        out["log_negativity"] = en
    return out
