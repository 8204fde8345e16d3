"""Initial states: what ``initial=`` means in every solver.

A request is turned into an :class:`InitialState`: a mixture of components, each a product
over domains of a pure state on one spin-j_i ladder (or, for a user vector, one pure state
of the whole chain).  Component c has weight w_c and effective sizes 2 j_i: collective
operators conserve each domain's total spin j_i, and a domain in its spin-j_i sector behaves
exactly like 2 j_i spins in their symmetric ladder with J_i^z = m_i unchanged
(``Chain.effective``).  Its local amplitudes are indexed by n'_i = j_i + m_i in 0..2 j_i;
the true excitation number is n_i = n'_i + N_i/2 - j_i.

Per domain (``initial=[item_1, ..., item_M]``):

    int n, Dicke(n), "dicke:n"   Dicke state |j = N_i/2, m = n - N_i/2> (n excitations)
    "excited" / "ground"         n = N_i / n = 0
    "half"                       Dicke state with n = floor(N_i / 2) (paper Fig. 4(a))
    SpinsUp(k), "up:k"           product state with k of the N_i spins up, averaged over which
                                 spins (the collective dynamics cannot tell them apart).  It is
                                 the mixture over j = |m|..N_i/2 (m = k - N_i/2) of |j, m> with
                                 weights d_j / C(N_i, k), d_j = C(N_i, N_i/2 - j) - C(N_i, N_i/2 - j - 1)
                                 the number of spin-j multiplets; trajectories draw j with these
                                 weights, the exact solver sums the j sectors with them.
    Coherent(theta), "coherent:theta"   every spin in cos(theta/2)|up> + sin(theta/2)|down>
                                 (theta = 0 excited, pi ground): amplitudes
                                 sqrt(C(N, n)) cos(theta/2)^n sin(theta/2)^(N - n) on |N/2, n - N/2>.

or a whole-chain state vector (``initial=psi``, length prod(N_i + 1), coupled Dicke basis,
index = mixed radix of (n_1, ..., n_M) with domain 1 most significant, as ``np.ndindex``).

Superpositions across excitation sectors.  Every channel changes the total excitation K by
exactly one and the no-jump evolution conserves it, so the master equation maps the blocks
rho_{K,K'} with K - K' fixed into each other.  The observables J_i^z, its powers and
distribution, J_i^+ J_{i+1}^- and the jump rates commute with K.  The solvers therefore
evolve the K-dephased state sum_K P_K rho(0) P_K, which gives these observables exactly: the
exact solver as blocks rho_K, trajectories by drawing K with probability ||P_K psi||^2.
The reduced state of a domain pair is different: tracing out the other domains keeps
coherences between pair states of different excitation when the full state superposes
sectors, so ``log_negativity`` is refused for such initial states (coherent states, vectors
spanning several K) rather than computed from the dephased state.  Within a
sector amplitudes must be real up to one common phase per sector (a coherent state with the
same azimuth on every domain qualifies); other complex vectors are refused.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from trajspin.errors import InputError
from trajspin.validation import check_memory

__all__ = ["Dicke", "SpinsUp", "Coherent", "InitialState", "resolve_initial", "NORM_TOL"]

NORM_TOL = 1e-10          # |norm - 1| allowed for a user state vector


@dataclass(frozen=True)
class Dicke:
    """Dicke state ``|j = N/2, m = n - N/2>`` of one domain (n excitations).

    Parameters
    ----------
    n : int
        Excitations, 0..N (also the strings "excited" = N, "ground" = 0, "half" = N // 2).
    """
    n: int


@dataclass(frozen=True)
class SpinsUp:
    """Product state with k of the domain's spins up (averaged over which ones).

    A mixture over total spin j = N/2 - k .. N/2 with Clebsch-Gordan weights ("up:k").

    Parameters
    ----------
    k : int
        Spins up, 0..N.
    """
    k: int


@dataclass(frozen=True)
class Coherent:
    """Coherent spin state: each spin cos(theta/2)|up> + sin(theta/2)|down>.

    Parameters
    ----------
    theta : float
        Polar angle in radians (0: all up, pi: all down; "coherent:theta").
    """
    theta: float


def parse_item(item, N, i):
    """One domain's request -> Dicke / SpinsUp / Coherent (checked against N)."""
    where = f"initial state of domain {i + 1} (N = {N})"
    if isinstance(item, str):
        text = item.strip().lower()
        if text == "excited":
            return Dicke(N)
        if text == "ground":
            return Dicke(0)
        if text == "half":
            return Dicke(N // 2)
        kind, _, arg = text.partition(":")
        try:
            if kind == "dicke":
                item = Dicke(int(arg))
            elif kind == "up":
                item = SpinsUp(int(arg))
            elif kind == "coherent":
                item = Coherent(float(arg))
            else:
                raise ValueError
        except ValueError:
            raise InputError(f"{where}: unknown request {item!r}; use an integer n, 'excited', "
                             "'ground', 'half', 'dicke:n', 'up:k' or 'coherent:theta'") from None
    if isinstance(item, (bool, np.bool_)):
        raise InputError(f"{where}: got a boolean {item!r}")
    if isinstance(item, (int, np.integer)) or (isinstance(item, (float, np.floating))
                                               and float(item).is_integer()):
        item = Dicke(int(item))
    if isinstance(item, (float, np.floating)):
        raise InputError(f"{where}: excitation numbers must be integers, got {item!r}")
    if isinstance(item, Dicke):
        if not 0 <= item.n <= N:
            raise InputError(f"{where}: Dicke excitation n must be in 0..{N}, got {item.n} "
                             f"(m = n - N/2 out of range)")
        return item
    if isinstance(item, SpinsUp):
        if not 0 <= item.k <= N:
            raise InputError(f"{where}: k spins up needs 0 <= k <= {N}, got k = {item.k}")
        return item
    if isinstance(item, Coherent):
        if not np.isfinite(item.theta):
            raise InputError(f"{where}: coherent angle theta must be finite, got {item.theta!r}")
        return item
    raise InputError(f"{where}: cannot read {item!r}")


def _binom_log(N, n):
    return math.lgamma(N + 1) - math.lgamma(n + 1) - math.lgamma(N - n + 1)


def _local_bytes(item, N):
    """Bytes of ``_local_options(item, N)``: sum over its spin-j parts of 2j + 1 amplitudes."""
    if isinstance(item, SpinsUp):
        two_m = abs(2 * item.k - N)
        count = (N - two_m) // 2 + 1                 # 2j = |2m|, |2m| + 2, ..., N
        return 8 * (count * (two_m + 1) + count * (count - 1))
    if isinstance(item, Dicke):
        return 8 * (N + 1)
    return 8 * 4 * (N + 1)                           # coherent: a few work arrays of N + 1


def _local_options(item, N):
    """[(weight, 2j, amplitudes over n' = 0..2j)] of one domain's request."""
    check_memory(_local_bytes(item, N), f"the initial state {item!r} of a domain of {N} spins",
                 "use a smaller domain")
    if isinstance(item, Dicke):
        v = np.zeros(N + 1)
        v[item.n] = 1.0
        return [(1.0, N, v)]
    if isinstance(item, SpinsUp):
        k = item.k
        total = math.comb(N, k)
        two_m = 2 * k - N
        out = []
        for two_j in range(abs(two_m), N + 1, 2):
            a = (N - two_j) // 2                    # N/2 - j
            mult = math.comb(N, a) - (math.comb(N, a - 1) if a >= 1 else 0)
            v = np.zeros(two_j + 1)
            v[(two_j + two_m) // 2] = 1.0           # n' = j + m
            out.append((mult / total, two_j, v))
        return out
    # coherent spin state, computed in logs (N up to 1e5 and more)
    c, s = math.cos(item.theta / 2.0), math.sin(item.theta / 2.0)
    n = np.arange(N + 1)
    with np.errstate(divide="ignore"):
        logc = np.log(abs(c)) if c != 0 else -np.inf
        logs = np.log(abs(s)) if s != 0 else -np.inf
        logamp = 0.5 * np.array([_binom_log(N, k) for k in n])
        logamp = logamp + np.where(n > 0, n * logc, 0.0) + np.where(n < N, (N - n) * logs, 0.0)
    amp = np.exp(logamp)
    # signs: cos^n sin^(N-n) (a common sign per n is allowed: it is real)
    sign = np.where((c < 0) & (n % 2 == 1), -1.0, 1.0) * np.where((s < 0) & ((N - n) % 2 == 1), -1.0, 1.0)
    v = amp * sign
    return [(1.0, N, v / np.linalg.norm(v))]


class InitialState:
    """A mixture of product (or whole-chain) pure states, ready for every solver.

    Attributes
    ----------
    components : list of (weight, sizes2j, locals_or_vector)
        ``locals_or_vector`` is a list of M local amplitude vectors (product state), or one
        full state vector on the coupled Dicke basis of ``sizes2j`` (user vector).
    label : str
        What was asked for, for result metadata.
    basis_state : tuple of int or None
        Excitations n_i when the state is one coupled Dicke basis state (fast paths).

    Parameters
    ----------
    chain : Chain
    components, label, basis_state : as the attributes (build it with :func:`resolve_initial`)
    """

    def __init__(self, chain, components, label, basis_state=None):
        self.chain = chain
        self.components = components
        self.label = label
        self.basis_state = basis_state

    @property
    def weights(self) -> np.ndarray:
        """Weights of the mixture's components, shape (number of components,), summing to 1."""
        return np.array([c[0] for c in self.components])

    def sector_weights(self, c) -> np.ndarray:
        """||P_K psi_c||^2 for K = 0..sum(sizes2j) of component c, shape (K_max + 1,)."""
        _, sizes2j, part = self.components[c]
        if isinstance(part, list):
            w = np.ones(1)
            for v in part:
                w = np.convolve(w, v * v)
            return w
        basis = self.chain.effective(sizes2j).sectors
        return np.array([float(np.sum(part[basis.sector(K).codes] ** 2))
                         for K in range(basis.K_max + 1)])

    def sector_vector(self, c, K) -> np.ndarray:
        """P_K psi_c normalised, on sector K of the effective chain of component c, shape (d_K,)."""
        _, sizes2j, part = self.components[c]
        basis = self.chain.effective(sizes2j).sectors
        sec = basis.sector(K)
        if isinstance(part, list):
            v = np.ones(sec.dim)
            for i, loc in enumerate(part):
                v = v * loc[sec.states[:, i]]
        else:
            v = part[sec.codes].copy()
        nrm = np.linalg.norm(v)
        if nrm == 0:
            raise InputError(f"initial state has no weight in sector K = {K}")
        return v / nrm

    def by_effective_chain(self):
        """{sizes2j: [(weight, component index), ...]} (the exact solver runs one per key)."""
        out = {}
        for c, (w, s2j, _) in enumerate(self.components):
            out.setdefault(s2j, []).append((w, c))
        return out

    def blocks(self, sizes2j, K_range=None):
        """Dephased initial blocks sum_c w_c P_K |psi_c><psi_c| P_K of one effective chain.

        Returns {K: dense (d_K, d_K) array} (Dicke basis of ``chain.effective(sizes2j)``), the
        weights w_c included, so their traces sum to the weight of this effective chain.
        """
        out = {}
        for w, c in self.by_effective_chain()[tuple(sizes2j)]:
            sw = self.sector_weights(c)
            for K in np.nonzero(sw > 0)[0]:
                K = int(K)
                if K_range is not None and K not in K_range:
                    continue
                v = self.sector_vector(c, K)
                out[K] = out.get(K, 0.0) + w * sw[K] * np.outer(v, v)
        return out

    def excitation_offset(self, sizes2j) -> np.ndarray:
        """N_i/2 - j_i: excitations a domain keeps below its spin-j ladder, shape (M,)."""
        return (np.asarray(self.chain.sizes) - np.asarray(sizes2j)) // 2

    def to_dict(self):
        """{"label": what was asked for} (result metadata)."""
        return {"label": self.label}

    def __repr__(self):
        return f"InitialState({self.label}; {len(self.components)} component(s))"


def resolve_initial(chain, initial=None) -> InitialState:
    """Turn any ``initial=`` request into an :class:`InitialState` (checked, one-line errors).

    Parameters
    ----------
    chain : Chain
    initial : None, sequence of per-domain items, InitialState, or ndarray (prod(N_i + 1),)
        None is paper eq. (4) (domain 1 excited, the rest in the ground state).

    Returns
    -------
    InitialState
    """
    if isinstance(initial, InitialState):
        if initial.chain != chain:
            raise InputError("this InitialState was made for another chain")
        return initial
    if initial is None:
        initial = chain.default_excitations()
    if isinstance(initial, str):
        raise InputError(f"initial must list one item per domain ({chain.M}), got the string {initial!r}")
    if isinstance(initial, np.ndarray) and initial.ndim == 1 and initial.size == chain.hilbert_dim \
            and initial.size != chain.M:
        return _vector_state(chain, initial)
    try:
        items = list(initial)
    except TypeError:
        raise InputError(f"initial must be a sequence with one item per domain, got {initial!r}") from None
    if len(items) == chain.hilbert_dim and len(items) != chain.M and all(
            isinstance(x, (float, complex, np.floating, np.complexfloating)) for x in items):
        return _vector_state(chain, np.asarray(items))
    if len(items) != chain.M:
        raise InputError(f"initial needs one item per domain ({chain.M}), got {len(items)}; "
                         f"a state vector needs prod(N_i + 1) = {chain.hilbert_dim} entries")
    parsed = [parse_item(x, N, i) for i, (x, N) in enumerate(zip(items, chain.sizes))]
    options = [_local_options(p, N) for p, N in zip(parsed, chain.sizes)]
    comps = []
    for combo in itertools.product(*options):
        w = float(np.prod([o[0] for o in combo]))
        comps.append((w, tuple(o[1] for o in combo), [o[2] for o in combo]))
    basis_state = None
    if all(isinstance(p, Dicke) for p in parsed):
        basis_state = tuple(p.n for p in parsed)
    label = ", ".join(describe_item(p, N) for p, N in zip(parsed, chain.sizes))
    return InitialState(chain, comps, label, basis_state)


def describe_item(p, N):
    if isinstance(p, Dicke):
        return "excited" if p.n == N else "ground" if p.n == 0 else f"dicke:{p.n}"
    if isinstance(p, SpinsUp):
        return f"up:{p.k}"
    return f"coherent:{p.theta:g}"


def _vector_state(chain, psi):
    psi = np.asarray(psi)
    if psi.dtype.kind not in "iufc":
        raise InputError(f"initial state vector must hold numbers, got dtype {psi.dtype}")
    if not np.all(np.isfinite(psi)):
        raise InputError("initial state vector must be finite")
    nrm = float(np.linalg.norm(psi))
    if abs(nrm - 1.0) > NORM_TOL:
        raise InputError(f"initial state vector is not normalised: |psi| = {nrm:.12g}")
    if np.iscomplexobj(psi):
        real = np.empty(psi.size)
        basis = chain.sectors
        for K in range(basis.K_max + 1):
            idx = basis.sector(K).codes
            part = psi[idx]
            big = np.argmax(np.abs(part))
            phase = part[big] / abs(part[big]) if abs(part[big]) > 0 else 1.0
            rotated = part / phase
            if np.max(np.abs(rotated.imag)) > 1e-12:
                raise InputError(f"initial state vector has complex relative phases inside sector "
                                 f"K = {K}; only real amplitudes (up to one phase per sector) are supported")
            real[idx] = rotated.real
        psi = real
    return InitialState(chain, [(1.0, tuple(chain.sizes), psi.astype(float))], "state vector")
