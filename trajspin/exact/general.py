"""Exact density-matrix evolution for every chain: temperature, local reservoirs, schedules.

The state of one effective chain (``trajspin.initial``) is kept as real symmetric sector
blocks rho_K, and the master equation on them reads

    d rho_K/dt = -1/2 {G_K, rho_K} + sum_{k lowering} r_k O_k rho_{K+1} O_k^T
                                   + sum_{k raising}  r_k O_k rho_{K-1} O_k^T        (1)

with G_K = sum_k r_k O_k^T O_k on sector K (the Hamiltonian omega0 sum_i J_i^z is a constant
on each sector and drops out; the rates r_k follow the schedule piece).  Two engines:

Zero temperature (no raising channel): the cascade of ``trajspin.exact.master`` with every lowering
channel as a feed, B_k = sqrt(r_k) V_K^T O_k V_{K+1}, and initial blocks in any sectors:
implicit-Euler sweeps (``trajspin.kernels.cascade.euler_sweeps``, unchanged) extrapolated
with error control, exactly as in the paper-model solver.  Between schedule pieces the blocks
are carried from one eigenbasis to the next, rho~' = V'^T V rho~ V^T V'.

Absorption (block-tridiagonal in K): the blocks are packed (upper triangles, Dicke basis,
all sectors 0..sum 2j_i) into one vector y of length n = sum_K d_K (d_K + 1)/2, and (1) is a
sparse matrix A (nnz ~ 15 n).  exp(A delta) y is computed by shift-and-invert (restricted
denominator) Krylov: Arnoldi on (I - sigma A)^{-1}, one sparse LU per shift sigma, and
exp(A delta) y ~ beta V_m expm(delta (I - H_m^{-1})/sigma) e_1.  Why this method:
  * the rational Krylov error does not grow with ||A|| (stiffness) but with delta/sigma, so
    a ladder of shifts sigma = LADDER^k (one LU each, cached) serves a whole log-spaced
    grid: 7 LUs for 400 times in 1e-4..1e3;
  * one Krylov basis serves a window of consecutive output times (every delta of the window
    is evaluated from it), so such a grid needs ~150 sparse solves;
  * the error is controlled a posteriori: the window is accepted when
    ||beta (expm(delta A_m) e_1 - expm(delta A_{m-2}) e_1)||_2 <= KRYLOV_TOL for every delta
    of the window (else the window shrinks, down to splitting an interval).
  Rejected alternatives: extrapolated implicit Euler needs a new LU for every step size
  (~1 s each for (4, 3, 3, 2)); block Gauss-Seidel/GMRES preconditioned by the downward
  sweep converges slowly for long steps (the K distribution relaxes through a birth-death
  chain); Radau/BDF refactorise on every step-size change and interpolate at outputs.
  Measured: <= 1e-11 against dense expm of the Liouvillian (``tests/naive.py``) and, for
  Fig. S1's (20, 2) at T = 1.6 K, 5e-12 in <J_i^z>/N_i against a dense Krylov expm.
  Cost: Fig. S1 chains (20, 2), (12, 6, 2), (4, 3, 3, 2), 401 times: about 0.3, 1.5 and
  8 s of CPU (the sparse LUs of (4, 3, 3, 2), n = 3608, dominate).

Stationary states.  T = 0: the closed-form cascade of ``trajspin.exact.master.steady_state`` with
all lowering channels and initial blocks in any sectors.  Absorption: x_{j+1} =
(I - sigma A)^{-1} x_j (implicit Euler with a huge step: trace preserving, and commuting with
the spectral projector P_0 on ker A, so its fixed point is P_0 x_0 — the stationary state
reached from the initial state even when conserved quantities make ker A degenerate).
Iterated until the change ||x_{j+1} - x_j||_inf, extrapolated geometrically
(q/(1 - q) times the last change), is below STEADY_TOL; sigma starts at 1e3/(smallest rate)
and grows 128-fold whenever the contraction q exceeds 0.1.  With a schedule, the state is
first evolved to the last switch time.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from trajspin.kernels.cascade import extrapolated_sweeps
from trajspin.exact.negativity import PairReducer, trace_norm_pt
from trajspin.observables import coherence_elements
from trajspin.resources import KRYLOV_MAX, LU_CACHE

__all__ = ["BlockObserver", "add_observations", "combine_observations", "LoweringCascade",
           "PackedGenerator", "krylov_expm_window", "evolve_effective", "stationary_effective"]

# Block entries below FLUSH are set to zero after each step: they are 1e-120 below the
# 1e-8 accuracy goal, and left alone they decay into subnormal numbers that slow the
# matrix products by two orders of magnitude.
FLUSH = 1e-128
# Highest extrapolation order, the order the step size aims at, local error per step.
MAX_ORDER = 8
TARGET_ORDER = 5
TOL = 1e-12               # cascade: local error per step (max abs block entry)
KRYLOV_TOL = 1e-12        # Krylov: 2-norm change of the packed state between checks
SIGMA_RATIO = 2.0         # shift sigma ~ SIGMA_RATIO * (first delta of the window), on the ladder
LADDER = 8.0              # shifts are powers of LADDER (a few LUs serve a log-spaced grid)
WINDOW = 60.0             # a window holds the outputs with delta <= WINDOW * (first delta)
STEADY_TOL = 1e-13


# --------------------------------------------------------------------------- observables
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


# --------------------------------------------------------------------------- T = 0 cascade
def set_flat_layout(cas):
    """Flat arrays of a cascade's sectors for ``euler_sweeps``, from ``cas.lam`` and ``cas.feed``.

    Sets dims, off (start of each d_K x d_K block), halfrate_flat ((lam_a + lam_b)/2 per
    entry) and feed_flat / feed_off (the feed matrices B of each sector, channel by channel)
    on ``cas``; the caller sets ``cas.n_channels``.
    """
    cas.dims = np.array([lam.size for lam in cas.lam], dtype=np.int64)
    cas.off = np.concatenate([[0], np.cumsum(cas.dims ** 2)]).astype(np.int64)
    cas.halfrate_flat = np.concatenate([0.5 * (lam[:, None] + lam[None, :]).ravel()
                                        for lam in cas.lam])
    blocks = [B for feeds in cas.feed for B in feeds]
    cas.feed_flat = np.concatenate([B.ravel() for B in blocks] or [np.zeros(0)])
    sizes = [sum(B.size for B in feeds) for feeds in cas.feed]
    cas.feed_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def cascade_step(cas, Y, h, max_order, tol):
    """Extrapolated implicit Euler over one step h of a cascade, in one numba call.

    Row j of the tableau starts from T_{j,1} = (I - h/j A)^{-j} Y (harmonic sequence; each
    factor one ``euler_sweeps`` sweep) and is completed by Aitken-Neville,
    T_{j,l+1} = T_{j,l} + (T_{j,l} - T_{j-1,l}) / (j/(j-l) - 1); the step stops at the first
    j >= 2 with max |T_{j,j} - T_{j,j-1}| <= tol (``cascade_kernels.extrapolated_sweeps``).
    Returns (Y_new or None if not converged by ``max_order``, err, order).
    """
    Y_new, err, order, ok = extrapolated_sweeps(
        np.ascontiguousarray(Y), float(h), max_order, tol, cas.K0, cas.dims, cas.off,
        cas.halfrate_flat, cas.feed_flat, cas.feed_off, cas.n_channels, FLUSH)
    return (Y_new if ok else None), err, order


def advance(cas, Y, now, tk, h, stats, tol=TOL):
    """March the cascade state Y from ``now`` to ``tk`` with adaptive extrapolated steps.

    ``stats`` is a dict with counters "steps", "rejected", "sweeps".  Returns (Y, h).
    """
    while now < tk:
        if h is None:
            h = min(tk, 0.01 / (1.0 + max(lam[-1] for lam in cas.lam if lam.size)))
        step = min(h, tk - now)
        Y_new, err, order = cas.step(Y, step, MAX_ORDER, tol)
        if Y_new is None:
            stats["rejected"] += 1
            h = 0.3 * step
            if h <= 1e-14 * max(tk, 1e-300):
                raise RuntimeError(f"exact solver: step size underflow at t = {now:g} "
                                   f"(extrapolation did not converge); please report")
            continue
        Y, now = Y_new, (tk if step == tk - now else now + step)
        stats["steps"] += 1
        stats["sweeps"] += order * (order + 1) // 2
        if order < TARGET_ORDER:
            factor = 2.0
        elif order == TARGET_ORDER:
            factor = min(4.0, max(0.5, 0.9 * (tol / max(err, 1e-300)) ** (1.0 / order)))
        else:
            factor = 0.7
        if step == h or factor < 1:
            h = step * factor
    return Y, h


class LoweringCascade:
    """Sector data of one schedule piece in the eigenbasis of G_K, K = 0..K_top (no raising).

    Feeds B_k = sqrt(r_k) V_K^T O_k V_{K+1} (d_K, d_{K+1}) for every lowering channel with
    r_k > 0 in this piece, laid out flat for ``euler_sweeps``.
    """

    def __init__(self, basis, channels, piece, K_top):
        rates = channels.rates[piece]
        low = [k for k in range(channels.C) if channels.direction[k] < 0 and rates[k] > 0]
        self.K0 = K_top
        self.lam, self.V = [], []
        for K in range(K_top + 1):
            lam, V = basis.channel_spectrum(K, channels, piece)
            self.lam.append(lam)
            self.V.append(V)
        self.feed = []
        for K in range(K_top):
            self.feed.append([np.ascontiguousarray(np.sqrt(rates[k]) * (
                self.V[K].T @ (basis.channel_matrix(channels, k, K + 1) @ self.V[K + 1])))
                for k in low])
        self.feed.append([])
        set_flat_layout(self)
        self.n_channels = len(low)

    def step(self, Y, h, max_order, tol):
        return cascade_step(self, Y, h, max_order, tol)

    def to_eigen(self, blocks):
        """Flat eigenbasis vector of Dicke-basis blocks {K: rho_K}."""
        Y = np.zeros(self.off[-1])
        for K, rho in blocks.items():
            V = self.V[K]
            Y[self.off[K]:self.off[K + 1]] = (V.T @ rho @ V).ravel()
        return Y

    def to_dicke(self, Y):
        """{K: rho_K} in the Dicke basis from the flat eigenbasis vector."""
        out = {}
        for K, d in enumerate(self.dims):
            y = Y[self.off[K]:self.off[K + 1]].reshape(d, d)
            V = self.V[K]
            out[K] = V @ y @ V.T
        return out


def cascade_stationary(basis, channels, piece, blocks):
    """t -> infinity blocks under lowering-only channels (closed-form cascade).

    With Z_K = rho~_K(0) + sum_k B_k I_{K+1} B_k^T (eigenbasis of G_K; I the time integral
    of the bright-bright part of the sector above), bright-bright elements integrate to
    Z_K[a, b] / ((lam_a + lam_b)/2) and vanish, dark-dark elements stay.  Returns {K: rho_K}.
    """
    rates = channels.rates[piece]
    low = [k for k in range(channels.C) if channels.direction[k] < 0 and rates[k] > 0]
    K_top = max(blocks)
    out = {}
    integral_up = V_up = None
    for K in range(K_top, -1, -1):
        lam, V = basis.channel_spectrum(K, channels, piece)
        Z = V.T @ blocks[K] @ V if K in blocks else np.zeros((lam.size, lam.size))
        if integral_up is not None:
            for k in low:
                B = np.sqrt(rates[k]) * (V.T @ (basis.channel_matrix(channels, k, K + 1) @ V_up))
                Z += B @ integral_up @ B.T
        dark = lam == 0.0
        bright = ~dark
        if np.any(bright):
            rate = 0.5 * (lam[bright][:, None] + lam[bright][None, :])
            integral_up = Z[np.ix_(bright, bright)] / rate
            V_up = V[:, bright]
        else:
            integral_up = None
        Vd = V[:, dark]
        out[K] = Vd @ Z[np.ix_(dark, dark)] @ Vd.T
    return out


class PackedGenerator:
    """Sparse generator (1) on packed upper triangles of all sectors 0..K_max, one piece.

    A = S A_full D with A_full the generator (1) on row-major blocks (the Kronecker forms
    -1/2 (G_K x I + I x G_K) and r_k O_k x O_k), D duplicating the upper triangle into a
    symmetric block and S selecting it back.

    Attributes
    ----------
    A : csc_matrix (n, n)      generator on packed vectors
    dims : list (K_max + 1,)   sector dimensions
    r_min : float              smallest positive channel rate of the piece
    """

    def __init__(self, basis, channels, piece):
        rates = channels.rates[piece]
        self.K_max = basis.K_max
        nK = self.K_max + 1
        self.dims = [basis.dim(K) for K in range(nK)]
        blocks = {}
        for K in range(nK):
            d = self.dims[K]
            G = sp.csr_matrix(basis.channel_generator(K, channels, rates))
            I = sp.identity(d, format="csr")
            blocks[(K, K)] = -0.5 * (sp.kron(G, I) + sp.kron(I, G))
            for k in range(channels.C):
                if rates[k] <= 0:
                    continue
                Kt = K + int(channels.direction[k])
                O = basis.channel_matrix(channels, k, K)
                if O.shape[0] == 0:
                    continue
                blk = rates[k] * sp.kron(O, O)
                blocks[(Kt, K)] = blocks[(Kt, K)] + blk if (Kt, K) in blocks else blk
        A = sp.bmat([[blocks.get((i, j)) for j in range(nK)] for i in range(nK)], format="csr")
        sel, dup = [], []
        self.tri = []
        off = [0]
        for d in self.dims:
            iu = np.triu_indices(d)
            m = iu[0].size
            full = iu[0] * d + iu[1]
            low = iu[1] * d + iu[0]
            sel.append(sp.csr_matrix((np.ones(m), (np.arange(m), full)), shape=(m, d * d)))
            same = full == low
            rows = np.concatenate([full, low[~same]])
            cols = np.concatenate([np.arange(m), np.arange(m)[~same]])
            dup.append(sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(d * d, m)))
            self.tri.append(iu)
            off.append(off[-1] + m)
        self.off = np.array(off)
        self.A = (sp.block_diag(sel, format="csr") @ A @ sp.block_diag(dup, format="csr")).tocsc()
        self.n = self.A.shape[0]
        self.r_min = float(np.min(rates[rates > 0])) if np.any(rates > 0) else 1.0
        self._lus = {}
        self.n_lu = 0

    def solver(self, sigma):
        """y -> (I - sigma A)^{-1} y (sparse LU, cached for the last LU_CACHE shifts)."""
        if sigma not in self._lus:
            if len(self._lus) >= LU_CACHE:
                self._lus.pop(next(iter(self._lus)))
            M = (sp.identity(self.n, format="csc") - sigma * self.A).tocsc()
            self._lus[sigma] = spla.splu(M, permc_spec="MMD_AT_PLUS_A").solve
            self.n_lu += 1
        return self._lus[sigma]

    def pack(self, blocks):
        """Packed vector, shape (n,), of symmetric Dicke-basis blocks {K: (d_K, d_K)}."""
        y = np.zeros(self.n)
        for K, rho in blocks.items():
            iu = self.tri[K]
            y[self.off[K]:self.off[K + 1]] = rho[iu]
        return y

    def unpack(self, y):
        """{K: rho_K} (d_K, d_K) symmetric blocks of a packed vector y, shape (n,)."""
        out = {}
        for K, d in enumerate(self.dims):
            iu = self.tri[K]
            rho = np.zeros((d, d))
            rho[iu] = y[self.off[K]:self.off[K + 1]]
            rho[(iu[1], iu[0])] = y[self.off[K]:self.off[K + 1]]
            out[K] = rho
        return out


def krylov_expm_window(solve, sigma, y, deltas, tol=KRYLOV_TOL, m_max=KRYLOV_MAX):
    """exp(A delta) y for every delta in ``deltas`` from one shift-and-invert Krylov basis.

    Arnoldi (twice-iterated Gram-Schmidt) on B = (I - sigma A)^{-1}: B V_m = V_{m+1} Hbar_m,
    A_m = (I - H_m^{-1}) / sigma, u_m(delta) = beta V_m expm(delta A_m) e_1.  Checked every
    second dimension; converged when ||u_m(delta) - u_{m-2}(delta)||_2 <= tol for all deltas
    (or on breakdown, where the Krylov space is invariant and u_m exact).

    Returns
    -------
    ys : ndarray (len(deltas), n) or None if not converged within m_max;  m : int
    """
    n = y.size
    beta = float(np.linalg.norm(y))
    if beta == 0.0:
        return np.zeros((len(deltas), n)), 0
    V = np.empty((m_max + 1, n))
    H = np.zeros((m_max + 1, m_max))
    V[0] = y / beta
    prev = None
    for j in range(m_max):
        w = solve(V[j])
        for _ in range(2):
            c = V[:j + 1] @ w
            w -= c @ V[:j + 1]
            H[:j + 1, j] += c
        hn = float(np.linalg.norm(w))
        H[j + 1, j] = hn
        breakdown = hn <= 1e-14 * max(1.0, float(np.linalg.norm(H[:j + 2, j])))
        m = j + 1
        if breakdown or m % 2 == 0 or m == m_max:
            try:                # Ritz values outside the disk of B may overflow: not converged
                Am = (np.eye(m) - np.linalg.solve(H[:m, :m], np.eye(m))) / sigma
                with np.errstate(over="ignore", invalid="ignore"):
                    us = np.array([scipy.linalg.expm(d * Am)[:, 0] for d in deltas])
            except np.linalg.LinAlgError:       # singular H_m (rare): try a larger basis
                us = None
            if us is not None and np.all(np.isfinite(us)):
                if not breakdown and prev is not None:
                    change = us - np.pad(prev, ((0, 0), (0, m - prev.shape[1])))
                    done = np.max(np.linalg.norm(change, axis=1)) * beta <= tol
                else:
                    done = breakdown
                if done:
                    return beta * (us @ V[:m]), m
                prev = us
            else:
                prev = None
        if breakdown:
            break
        V[j + 1] = w / hn
    return None, m_max


def _sigma_for(delta):
    """Shift for a window whose first output is delta ahead: LADDER^k <= SIGMA_RATIO delta."""
    return float(LADDER ** np.floor(np.log(SIGMA_RATIO * delta) / np.log(LADDER)))


def propagate_packed(gen, y, s, targets, stats):
    """States at every time in ``targets`` (sorted, > s) under one piece's generator.

    Returns a list of packed vectors, one per target.
    """
    out = []
    i = 0
    pending = list(targets)
    while i < len(pending):
        d1 = pending[i] - s
        width = 1
        while i + width < len(pending) and pending[i + width] - s <= WINDOW * d1:
            width += 1
        while True:
            sigma = _sigma_for(d1)
            deltas = [pending[q] - s for q in range(i, i + width)]
            ys, m = krylov_expm_window(gen.solver(sigma), sigma, y, deltas)
            stats["krylov"] += m
            if ys is not None:
                break
            stats["rejected"] += 1
            if width > 1:
                width = max(1, width // 2)
            else:               # split the interval: an intermediate, unreported time
                pending.insert(i, s + 0.5 * d1)
                stats["splits"] += 1
                d1 = pending[i] - s
                if d1 <= 1e-14 * max(s, 1e-300):
                    raise RuntimeError(f"exact solver: Krylov step underflow at t = {s:g}")
        for q in range(width):
            out.append((pending[i + q], ys[q]))
        s, y = pending[i + width - 1], ys[-1]
        i += width
    # drop intermediate times
    want = set(targets)
    return [v for t, v in out if t in want]


def stationary_packed(gen, y, stats):
    """Fixed point of x -> (I - sigma A)^{-1} x started at y (see module docstring).

    sigma starts at 1e3 / (smallest positive rate) on a 2^k ladder and grows 128-fold while
    the contraction q = change_j / change_{j-1} exceeds 0.1 (up to sigma r_min = 1e14).
    """
    r_min = gen.r_min
    sigma = float(2.0 ** np.round(np.log2(1e3 / r_min)))
    x = y.copy()
    last = None
    for _ in range(200):
        x_new = gen.solver(sigma)(x)
        change = float(np.max(np.abs(x_new - x)))
        x = x_new
        stats["steady_iterations"] += 1
        if change <= STEADY_TOL:
            return x
        if last is not None and last > 0:
            q = change / last
            if q < 1 and change * q / (1 - q) <= STEADY_TOL:
                return x
            if q > 0.1:
                if sigma * r_min > 1e14:
                    break
                sigma *= 128.0
                last = None
                continue
        last = change
    raise RuntimeError("steady_state: the stationary iteration did not converge; please report")


# --------------------------------------------------------------------------- drivers
def evolve_effective(eff, blocks0, times, observe, stats, final_time=None):
    """Evolve one effective chain from Dicke blocks {K: rho_K} at t = 0.

    Calls ``observe(k, blocks)`` at every output time times[k] (blocks: {K: rho_K}, Dicke
    basis).  Switch times of the schedule are exact step boundaries (the state at a switch
    time is reached with the old rates, then the new piece starts).  With ``final_time``,
    returns the blocks at that time (else at times[-1]).
    """
    ch = eff.channels()
    basis = eff.sectors
    times = [float(t) for t in times]
    t_end = max(times[-1], 0.0 if final_time is None else float(final_time))
    starts = [float(s) for s in ch.starts] + [np.inf]
    absorbing = ch.raises
    K_top = basis.K_max if absorbing else max(blocks0)
    state = dict(blocks0)
    outputs = {t: k for k, t in enumerate(times)}
    if 0.0 in outputs:
        observe(outputs[0.0], state)
    events = {t for t in times if t > 0}
    events |= {s for s in starts[1:-1] if s <= t_end}
    if final_time is not None and final_time > 0:
        events.add(float(final_time))
    events = sorted(events)
    now = 0.0
    for p in range(ch.P):
        seg = [e for e in events if starts[p] < e <= starts[p + 1]]
        if not seg:
            continue
        if absorbing:
            gen = PackedGenerator(basis, ch, p)
            ys = propagate_packed(gen, gen.pack(state), now, seg, stats)
            stats["lu"] += gen.n_lu
            for t, yv in zip(seg, ys):
                if t in outputs:
                    observe(outputs[t], gen.unpack(yv))
            state = gen.unpack(ys[-1])
        else:
            cas = LoweringCascade(basis, ch, p, K_top)
            Y = cas.to_eigen(state)
            h = stats.get("h")
            for t in seg:
                Y, h = advance(cas, Y, now, t, h, stats)
                now = t
                if t in outputs:
                    observe(outputs[t], cas.to_dicke(Y))
            stats["h"] = h
            state = cas.to_dicke(Y)
        now = seg[-1]
    return state


def stationary_effective(eff, blocks0, stats):
    """t -> infinity blocks {K: rho_K} of one effective chain from Dicke blocks at t = 0."""
    ch = eff.channels()
    basis = eff.sectors
    state = dict(blocks0)
    last = ch.P - 1
    if last > 0:
        state = evolve_effective(eff, blocks0, np.array([0.0]), lambda k, b: None, stats,
                                 final_time=float(ch.starts[last]))
    if ch.raises:
        gen = PackedGenerator(basis, ch, last)
        x = stationary_packed(gen, gen.pack(state), stats)
        stats["lu"] += gen.n_lu
        return gen.unpack(x)
    return cascade_stationary(basis, ch, last, {K: v for K, v in state.items()})
