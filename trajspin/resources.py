"""Every memory and time model of trajspin, and the one choice of engine.

Each engine's working set in bytes, written once here and used by every entry point (the
solvers, ``run_trajectories``, the MPI runner, ``trajspin estimate``):

* ``master_memory_estimate`` / ``steady_memory_estimate``: the paper-model sector cascade;
* ``general_memory_estimate``: the general exact solver (packed blocks, sparse LU, Krylov);
* ``trajectory_memory_estimate``: the dense trajectory tables (sum_K d_K^2 eigenvectors);
* ``general_plan``: the general trajectory engine's tables, per effective chain;
* ``krylov_memory_estimate``: the matrix-free (Lanczos) trajectory path;

and the decisions made from them: ``choose_method`` (dense or Lanczos, from memory and the
dense set-up time) and ``choose_engine`` (paper, Lanczos or general tables for an ensemble).
The engines import their sizing constants (``LU_CACHE``, ``KRYLOV_MAX``, ``CACHED_DIM``) from
here, so the model and the code cannot drift apart.
"""
from __future__ import annotations

import numpy as np

from trajspin.errors import InputError
from trajspin.sectors import sector_basis, sector_dims
from trajspin.validation import available_memory, check_memory

__all__ = ["master_memory_estimate", "steady_memory_estimate", "general_memory_estimate",
           "trajectory_memory_estimate", "table_bytes", "records_memory_estimate",
           "feedback_memory_estimate", "check_records_memory", "check_jz_only", "is_paper_initial",
           "steady_closed_form", "general_plan", "krylov_memory_estimate",
           "check_countable", "check_K0", "check_paper", "bytes_per_state", "choose_method",
           "choose_engine", "packed_size", "LU_CACHE", "KRYLOV_MAX", "CACHED_DIM",
           "DEFAULT_MAX_DENSE_DIM"]

# General exact solver (``trajspin.exact.packed``): cached LU factorisations of shifted
# generators, and the largest Krylov dimension before a window is shrunk.
LU_CACHE = 3
KRYLOV_MAX = 60


# Largest sector for which the dense engine is chosen by default (see ``choose_method``).
DEFAULT_MAX_DENSE_DIM = 600
CACHED_DIM = 2048            # Lanczos path: sectors this large keep their tables between trajectories
# Dense set-up: ~1 ms of Python per sector (SectorBasis, spectra, flat tables; 94 s for the
# 1e5 sectors of (100000, 2) on one core) plus eigh at ~3.3e-10 s per d_K^3.  Beyond this
# many seconds of set-up "auto" takes the Lanczos path, which starts at once.
DENSE_SETUP_PER_SECTOR = 1e-3
DENSE_SETUP_PER_D3 = 3.3e-10
DEFAULT_MAX_DENSE_SETUP = 5.0
# Rows of the cascade's extrapolation tableau, two of them (prev, row) up to the highest
# order: 2 x trajspin.exact.cascade.MAX_ORDER (a test keeps the two equal).
CASCADE_TABLEAU_ROWS = 16
_MAX_COUNT = 2**62          # Dicke states counted by count_table (int64, with headroom)
_MAX_SECTOR = 2**31 - 1     # states per sector: hop targets are int32


# ---------------------------------------------------------------------------- exact solvers

def master_memory_estimate(chain, K0=None) -> int:
    """Bytes needed by ``solve_master`` for sectors 0..K0 (default: initial sector N_1).

    The cascade's working set (``exact.cascade``), in d_K^2 doubles per sector: the
    eigenvectors V and the half-rates (2), the M + (M - 1) observation functionals, the state
    Y and the accepted step (2), the step's copy and the extrapolation tableau (1 +
    CASCADE_TABLEAU_ROWS); in d_K d_{K+1} doubles: the (M - 1) feed matrices, twice while the
    flat copy is made.  Measured: (60, 30, 10) raised the peak resident memory by 718 MB; this
    model gives 990 MB (the tableau's last rows are touched only at the highest orders).

    Parameters
    ----------
    chain : Chain
    K0 : int, optional
        Highest sector the state occupies.

    Returns
    -------
    int
        Bytes, 8 ((2 M + 4 + CASCADE_TABLEAU_ROWS) sum d_K^2 + 2 (M - 1) sum d_K d_{K+1}).
    """
    d = sector_basis(chain).dims[: (chain.sizes[0] if K0 is None else K0) + 1].astype(float)
    d_up = np.append(d[1:], 0.0)
    return int(8 * (cascade_doubles(chain.M, chain.M - 1) * np.sum(d**2)
                    + 2 * (chain.M - 1) * np.sum(d * d_up)))


def cascade_doubles(M, C):
    """d_K^2 doubles per sector of the cascade's working set with C lowering channels.

    V, half-rates, M + C functionals, state, accepted step, step copy and tableau.
    """
    return 2 + M + C + 2 + 1 + CASCADE_TABLEAU_ROWS


def steady_memory_estimate(chain, K0=None) -> int:
    """Bytes needed by ``steady_state``: the work matrices of two sectors, plus per-state tables.

    20 d_max^2 doubles: the sector at hand (V, source Z, its eigenbasis copy, the feed's
    products, the integrals X of this sector and the one above, the temporaries of V Z V^T),
    the next sector's generator, its copy, eigenvectors and eigh workspace (2 d^2) on the
    second thread, and allocator slack; (1 + 5 M) doubles per state of sectors 0..K0: codes,
    states and the four per-domain jump tables the basis keeps.  Measured: (200, 100, 10)
    raised the peak resident memory by 213 MB; this model gives 218 MB.
    """
    d = sector_basis(chain).dims[: (chain.sizes[0] if K0 is None else K0) + 1].astype(float)
    return int(8 * (20 * np.max(d) ** 2 + (1 + 5 * chain.M) * np.sum(d)))


def general_memory_estimate(chain, init, n_times=1, pairs=()) -> int:
    """Bytes for the general exact solver: the largest effective chain's working set.

    Plus, for log_negativity, the summed reduced states of every pair, j-group and output
    time (8 n_times G sum_pairs ((N_a + 1)(N_b + 1))^2, G the number of effective chains).

    Absorption: packed length n = sum_K d_K (d_K + 1)/2; sparse LU fill ~ 2 n s (s the largest
    packed block) for each of the LU_CACHE cached shifts, the Krylov basis (KRYLOV_MAX + 1) n,
    the generator ~ 40 n nonzeros.  Zero temperature: the cascade's eigenbases, feeds and
    state as in ``master_memory_estimate`` with every lowering channel.
    """
    ch = chain.channels()
    need = 0
    for s2j, comps in init.by_effective_chain().items():
        dims = sector_dims(s2j).astype(float)
        if ch.raises:
            n = packed_size(dims)
            s = float(np.max(dims * (dims + 1) / 2))
            b = 12 * LU_CACHE * 2 * n * s + 8 * (KRYLOV_MAX + 1) * n + 12 * 40 * n
        else:
            K_top = max(int(np.max(np.nonzero(init.sector_weights(c))[0])) for _, c in comps)
            d = dims[:K_top + 1]
            d_up = np.append(d[1:], 0.0)
            C = int(np.sum(ch.direction < 0))
            b = 8 * ((cascade_doubles(chain.M, C) + 1) * np.sum(d**2) + 2 * C * np.sum(d * d_up))
        need = max(need, int(b))
    groups = len(init.by_effective_chain())
    need += 8 * n_times * groups * sum(((chain.sizes[a] + 1) * (chain.sizes[b] + 1)) ** 2
                                       for a, b in pairs)
    return need


# --------------------------------------------------------------------------- absorption
def packed_size(dims) -> int:
    """n = sum_K d_K (d_K + 1)/2: length of the packed upper triangles of all sector blocks."""
    d = np.asarray(dims, dtype=float)
    return int(np.sum(d * (d + 1) / 2))


def is_paper_initial(chain, initial) -> bool:
    """True for the paper's eq. (4) asked for by default (None) or as excitations (N_1, 0, ..)."""
    if initial is None:
        return True
    if not isinstance(initial, (list, tuple)) or len(initial) != chain.M:
        return False
    want = [chain.sizes[0]] + [0] * (chain.M - 1)
    return all(isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_))
               and int(n) == w for n, w in zip(initial, want))


def steady_closed_form(chain, initial=None, names=("jz",), keep_blocks=False) -> bool:
    """True when ``steady_state`` takes the two-domain closed form (``exact.two_domain``).

    The paper model with M = 2 from eq. (4), <J_i^z> only, no blocks kept: t -> infinity
    through the total spin J = J_1 + J_2 alone, O(N_2) time and memory at any N_1.
    """
    return (chain.is_paper_model and chain.M == 2 and tuple(names) == ("jz",)
            and not keep_blocks and is_paper_initial(chain, initial))


# ---------------------------------------------------------------------------- trajectories

def feedback_memory_estimate(chain, K0, n_patterns) -> int:
    """Bytes of the feedback tables: the no-jump spectra of ``n_patterns`` reservoir patterns.

    Each pattern (a set of open reservoirs) has its own eigenvalues and eigenvectors of
    G_K = sum_{c open} gamma_c L_c^T L_c for sectors 0..K0 (sum d_K + sum d_K^2 doubles), kept
    once per pattern and once more stacked for the kernel: 16 n_patterns (sum d_K + sum d_K^2).
    """
    d = sector_basis(chain).dims[: K0 + 1].astype(float)
    return int(16 * n_patterns * (np.sum(d) + np.sum(d**2)))


def records_memory_estimate(chain, K_top, ntraj, records) -> int:
    """Bytes of the jump records of ``ntraj`` trajectories (``JumpRecords``).

    Per trajectory 8 (6 + 2M) bytes of summaries; with "full" also at most K_top jumps of
    8 (4 + 2M) bytes (time, reservoir, excitation, open mask, <J^z> before and after).
    """
    if records == "none":
        return 0
    per_traj = 8 * (6 + 2 * chain.M)
    if records == "full":
        per_traj += K_top * 8 * (4 + 2 * chain.M)
    return int(ntraj) * per_traj


def check_records_memory(chain, K_top, ntraj, records):
    """Refuse, before any work, the records of ``ntraj`` trajectories that would not fit.

    Records grow with every trajectory (``records_memory_estimate``); used by
    ``run_trajectories`` and the MPI runner alike.
    """
    check_memory(records_memory_estimate(chain, K_top, ntraj, records),
                 f"the jump records ({records}) of {ntraj} trajectories of {chain!r}",
                 'keep records "summaries" (output.records in a config), or run fewer '
                 'trajectories')



def table_bytes(chain, K0=None) -> int:
    """Exact bytes of the arrays the dense trajectory engine keeps for sectors 0..K0.

    The flat kernel tables (``SectorTables``: eigenvectors sum d_K^2, eigenvalues, excitation
    numbers, per-domain lowering targets and amplitudes, offsets), the basis' cached spectra
    and sector objects (states, codes, jump tables) and the basis' dimension and stride
    vectors.

    Parameters
    ----------
    chain : Chain
    K0 : int, optional
        Initial sector (default N_1, paper eq. 4).

    Returns
    -------
    int
    """
    M = chain.M
    K0 = chain.sizes[0] if K0 is None else int(K0)
    d = sector_basis(chain).dims[: K0 + 1].astype(float)
    sd, sd2 = float(d.sum()), float((d**2).sum())
    per_state = 1 + M + 2 * M                  # lam, nexc, low_tgt + low_amp (one per domain)
    per_state += 1                             # lam of the cached spectrum
    per_state += M + 1 + 4 * (M - 1)           # Sector: states, codes, jump_target + jump_amp
    small = 3 * (K0 + 1) + (M - 1) + M         # dims/off_d/off_V, gamma, half
    small += int(sum(chain.sizes)) + 1 + M     # basis.dims, basis.strides
    return int(8 * (2 * sd2 + per_state * sd + small))


def trajectory_memory_estimate(chain, K0=None) -> int:
    """Bytes of the dense trajectory engine's tables for sectors 0..K0 (:func:`table_bytes`)."""
    return table_bytes(chain, K0)


def general_plan(chain, init):
    """[(sizes2j, members, basis, top sector)] per effective chain, and the bytes of the
    general engine's tables: 8 (P sum d_K^2 + (P + 5M + 8) sum d_K) over sectors 0..top."""
    chans = chain.channels()
    P, M = chans.P, chain.M
    sw_all = [init.sector_weights(c) for c in range(len(init.components))]
    plan, est = [], 0
    for s2j, members in init.by_effective_chain().items():
        basis = sector_basis(chain.effective(s2j))
        if chans.raises:
            top = basis.K_max
        else:
            top = max(int(np.nonzero(sw_all[c] > 0)[0].max()) for _, c in members)
        d = basis.dims[: top + 1].astype(float)
        est += int(8 * (P * np.sum(d**2) + (P + 5 * M + 8) * np.sum(d)))
        plan.append((s2j, members, basis, top))
    return plan, est


def check_countable(chain):
    """Refuse, with the numbers, chains whose sector tables cannot be indexed exactly.

    count_table and rank work in int64 (total number of Dicke states prod_i (N_i + 1) must
    stay below 2**62) and hop targets are int32 (d_K < 2**31 for every sector).  Returns
    the sector dimensions (``sectors.sector_dims``), so callers need not count them again.
    """
    total = 1
    for n in chain.sizes:
        total *= int(n) + 1
    if total >= _MAX_COUNT:
        raise InputError(f"{chain!r} has {float(total):.3g} Dicke states in all; the matrix-free "
                         f"tables index at most 2**62 = {float(_MAX_COUNT):.3g}")
    dims = sector_dims(chain.sizes)
    dmax = int(dims.max())
    if dmax > _MAX_SECTOR:
        raise InputError(f"{chain!r}: its largest sector holds {dmax} states; the matrix-free "
                         f"tables index at most 2**31 - 1 = {_MAX_SECTOR} per sector")
    return dims


def bytes_per_state(M):
    """Table bytes per state: nexc int64 (M), diag f8, hop_tgt int32 (M-1), hop_amp f8 (M-1)."""
    return 8 * M + 8 + 12 * (M - 1)


def check_K0(chain, K0):
    if K0 is None:
        return int(chain.sizes[0])
    if isinstance(K0, bool) or not isinstance(K0, (int, np.integer)) or not 0 <= K0 <= sum(chain.sizes):
        raise InputError(f"K0 must be an integer in 0..{sum(chain.sizes)}, got {K0!r}")
    return int(K0)


def check_paper(chain):
    if not chain.is_paper_model:
        raise InputError(f"the matrix-free trajectory path needs the paper model (zero "
                         f"temperature, shared reservoirs only, no schedule); got {chain!r}")


def krylov_memory_estimate(chain, K0=None, m_max=40, records=False,
                           cache_bytes=2 * 2**30) -> int:
    """Bytes the Lanczos path needs for trajectories starting in sector K0.

    Work O(max d_K (m_max + M + 4)): the Krylov basis (m_max + 1) d, the state, its copy at a
    jump and the M - 1 lowered vectors; the state counts of ``count_table``,
    8 (M + 1)(sum N_i + 2) bytes; sector tables at (8M + 8 + 12(M-1)) bytes per state: one
    buffer of up to CACHED_DIM - 1 states rebuilt in place for small sectors, and the tables
    of the sectors of CACHED_DIM states or more kept between trajectories, at most
    ``cache_bytes`` of them (LRU, ``KrylovOptions.cache_bytes``) beyond the two in use.
    With ``records`` (single trajectories, and ensembles that keep records) also one
    trajectory's jump record, at most K0 jumps of 8 (4 + 2M) bytes each (time, channel,
    sector, reservoir mask, <J_i^z> before and after): 64 MB per 10^6 jumps for M = 2 (an
    ensemble's records themselves: ``records_memory_estimate``).  With feedback the cached
    tables are kept per (sector, reservoir mask), within the same ``cache_bytes``.
    """
    check_paper(chain)
    K0 = check_K0(chain, K0)
    d = check_countable(chain)[: K0 + 1].astype(float)
    M = chain.M
    counts = 8.0 * (M + 1) * (sum(chain.sizes) + 2)
    work = 8.0 * d.max() * (m_max + 2 + M + 2)
    per = bytes_per_state(M)
    big = d[d >= CACHED_DIM]
    tables = per * min(d.max(), CACHED_DIM - 1)
    if big.size:
        tables += min(per * big.sum(), cache_bytes + per * 2 * big.max())
    rec = 8.0 * (4 + 2 * M) * K0 if records else 0.0
    return int(work + tables + counts + rec)


def choose_method(chain, K0=None, max_dense_dim=DEFAULT_MAX_DENSE_DIM, memory_fraction=0.5,
                  max_dense_setup=DEFAULT_MAX_DENSE_SETUP):
    """"dense" or "krylov" for trajectories starting in sector K0 (default N_1).

    Cost model.  The dense engine stores the eigenvectors of every G_K, 16 sum_K d_K^2 bytes
    (with the generator), diagonalises each once, O(sum_K d_K^3), and then pays O(d_K^2) per
    jump and per output time.  The Lanczos path needs O(d_K M) bytes per cached sector and
    O(max d_K m) of work memory, no set-up, and O(m d_K (M + m)) per Krylov space (m ~ 8-16,
    about one space per jump), the whole trajectory in one numba loop (``run_visits``).  Measured here
    (one core, 200 output times, ms per trajectory dense / Lanczos; dense set-up):

        (8, 6, 5, 1)     max d_K 68:    0.04 / 0.75   (0.02 s)
        (30, 15, 8, 3)   max d_K 576:   4.0  / 3.6    (1 s)
        (40, 20, 10, 4)  max d_K 1155:  20   / 7.7    (6 s, 0.43 GB)
        (30, 20, 10, 5)  max d_K 1351:  17   / 6.9    (4 s)
        (200, 100, 50, 20) max d_K 108171: dense impossible (18 TB) / 2600

    so the crossover is near max d_K ~ 600, and beyond it the dense set-up (d^3) and memory
    (d^2) only add to the gap.  Returns "dense" when max d_K <= ``max_dense_dim`` (default
    600) and the dense tables fit in ``memory_fraction`` of the available memory, else
    "krylov"; also "krylov" when the dense set-up, (K0 + 1) x 1 ms + 3.3e-10 s x sum d_K^3,
    would exceed ``max_dense_setup`` seconds (default 5: the dense path needs 94 s before the
    first trajectory of (100000, 2)).  Chains outside the paper model (T > 0, local
    reservoirs, schedules) are dense only: for them an ``InputError`` is raised when the
    dense tables do not fit, and "dense"
    is returned otherwise whatever their size.
    """
    K0 = check_K0(chain, K0)
    d = sector_dims(chain.sizes)[: K0 + 1].astype(float)
    dense_bytes = 16.0 * np.sum(d**2)
    fits = dense_bytes <= memory_fraction * available_memory()
    setup = DENSE_SETUP_PER_SECTOR * d.size + DENSE_SETUP_PER_D3 * np.sum(d**3)
    quick = d.max() <= max_dense_dim and setup <= max_dense_setup
    if fits and (quick or not chain.is_paper_model):
        return "dense"
    if not chain.is_paper_model:
        raise InputError(f"{chain!r}: sectors of up to {int(d.max())} states are too large for "
                         "the dense engine, and the matrix-free path covers the paper model "
                         "(T = 0, shared reservoirs, no schedule) only")
    return "krylov"


def check_jz_only(names, records="none", feedback=None):
    """Refuse observables beyond <J_i^z> together with records or feedback (the record keeps
    <J_i^z> just before and after each jump, and the feedback rules read it)."""
    if (feedback is not None or records not in ("none", False)) and len(names) > 1:
        what = "feedback" if feedback is not None else "records"
        raise InputError(f"{what} keeps <J_i^z> only; drop observables "
                         f"{list(names[1:])} or run without {what}")


def choose_engine(chain, init, names=("jz",), records="none", feedback=None, method="auto"):
    """The one engine choice of an ensemble, and the bytes of that engine's tables.

    "paper": the paper's model from one Dicke basis state, <J_i^z> only or with records or
    feedback (dense spectral tables, ``trajectory_memory_estimate``); "krylov": the paper's
    model from one Dicke basis state (records, feedback or observables beyond <J_i^z>) when
    ``method`` asks for it or ``krylov.choose_method`` prefers it (``krylov_memory_estimate``);
    "general": everything else (``GeneralTables``).

    Parameters
    ----------
    chain : Chain;  init : trajspin.initial.InitialState;  names : tuple of observable names
    records : {"none", "summaries", "full"};  feedback : Feedback or None
    method : {"auto", "dense", "krylov"}

    Returns
    -------
    (engine, bytes) : (str, int)
    """
    paper = chain.is_paper_model and init.basis_state is not None
    if feedback is not None or records != "none":
        what = "feedback" if feedback is not None else "records"
        if not paper:
            raise InputError(f"{what} needs the paper's model (zero temperature, shared "
                             f"reservoirs, no schedule) from one Dicke basis state; "
                             f"got {chain!r} from {init.label}")
        check_jz_only(names, records, feedback)
    if method == "krylov" and not paper:
        raise InputError("method='krylov' (matrix-free) covers the paper's model (zero "
                         "temperature, shared reservoirs, no schedule) from one Dicke basis "
                         f"state; got {chain!r} from {init.label}: use method='dense' or 'auto'")
    if paper and method != "dense":
        K0 = int(sum(init.basis_state))
        if method == "krylov" or choose_method(chain, K0) == "krylov":
            return "krylov", krylov_memory_estimate(chain, K0)
    if not paper or len(names) > 1:
        return "general", general_plan(chain, init)[1]
    K0 = int(sum(init.basis_state))
    need = trajectory_memory_estimate(chain, K0)
    if feedback is not None:
        need += feedback_memory_estimate(chain, K0, len(feedback.reachable_masks(chain.M - 1)))
    return "paper", need
