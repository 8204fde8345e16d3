"""Naive dense reference implementation for trajspin tests.

Everything here is deliberately simple, dense and slow (tiny chains only,
full-space dimension ``D <= ~100``). Conventions (hbar = 1):

* Domain ``i`` (0-based) holds ``N_i`` spins-1/2 in the symmetric Dicke ladder
  ``j_i = N_i / 2``; ladder state ``|n>`` has excitation number
  ``n = j + m`` in ``0..N_i``.
* Full-space basis: ``np.ndindex(N_1 + 1, ..., N_M + 1)`` (domain 0 most
  significant), i.e. ``np.kron`` in domain order.
* Reservoir ``c`` (0-based, ``c = 0..M-2``) couples domains ``c`` and ``c+1``
  through ``L_c = J_c^- + J_{c+1}^-``.
* Superoperators act on the row-major (C-order) vectorisation
  ``vec(rho) = rho.reshape(-1)``, for which
  ``vec(A X B) = kron(A, B.T) @ vec(X)``.
"""
import numpy as np
import scipy.linalg


def _per(value, n, name):
    """Broadcast ``None`` (-> 0), a scalar, or ``n`` values to a float array."""
    if value is None:
        return np.zeros(n)
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.size == 1:
        return np.full(n, arr[0])
    if arr.shape != (n,):
        raise ValueError(f"{name} needs 1 or {n} values, got {arr.shape}")
    return arr


def dicke_lowering(N):
    """Collective lowering ``J^-`` on the ladder ``j = N/2``.

    ``J^- |n> = sqrt(n (N - n + 1)) |n - 1>``; returns an (N+1, N+1) array.
    """
    a = np.zeros((N + 1, N + 1))
    for n in range(1, N + 1):
        a[n - 1, n] = np.sqrt(n * (N - n + 1))
    return a


def dicke_jz(N):
    """``J^z = diag(n - N/2)`` on the ladder ``j = N/2``; (N+1, N+1) array."""
    return np.diag(np.arange(N + 1) - N / 2.0)


def _embed(op, i, sizes):
    """Embed a single-domain operator acting on domain ``i`` via kron."""
    out = np.eye(1)
    for k, N in enumerate(sizes):
        out = np.kron(out, op if k == i else np.eye(N + 1))
    return out


def domain_operators(sizes):
    """Full-space ``J_i^-`` and ``J_i^z`` for every domain.

    Returns
    -------
    jminus, jz : list of ndarray
        Each entry is a dense D x D float array, D = prod(N_i + 1).
    """
    jm = [_embed(dicke_lowering(N), i, sizes) for i, N in enumerate(sizes)]
    jz = [_embed(dicke_jz(N), i, sizes) for i, N in enumerate(sizes)]
    return jm, jz


def channel_jump_operators(sizes):
    """Unscaled reservoir operators ``L_c = J_c^- + J_{c+1}^-``, c = 0..M-2."""
    jm, _ = domain_operators(sizes)
    return [jm[c] + jm[c + 1] for c in range(len(sizes) - 1)]


def collapse_operators(sizes, gamma, nth=None, kappa=None, nloc=None):
    """All Lindblad collapse operators (dense D x D arrays).

    Order: for each reservoir c, ``sqrt(g_c (nth_c+1)) L_c`` then (if
    ``nth_c > 0``) ``sqrt(g_c nth_c) L_c^dag``; then for each domain i with
    ``kappa_i > 0``, ``sqrt(k_i (nloc_i+1)) J_i^-`` and (if ``nloc_i > 0``)
    ``sqrt(k_i nloc_i) J_i^+``. With T = 0 and no local decay, entry ``c``
    is exactly reservoir ``c``. Zero-rate operators are omitted.
    """
    M = len(sizes)
    g, nt = _per(gamma, M - 1, "gamma"), _per(nth, M - 1, "nth")
    k, nl = _per(kappa, M, "kappa"), _per(nloc, M, "nloc")
    jm, _ = domain_operators(sizes)
    ops = []
    for c, L in enumerate(channel_jump_operators(sizes)):
        if g[c] > 0:
            ops.append(np.sqrt(g[c] * (nt[c] + 1)) * L)
            if nt[c] > 0:
                ops.append(np.sqrt(g[c] * nt[c]) * L.conj().T)
    for i in range(M):
        if k[i] > 0:
            ops.append(np.sqrt(k[i] * (nl[i] + 1)) * jm[i])
            if nl[i] > 0:
                ops.append(np.sqrt(k[i] * nl[i]) * jm[i].conj().T)
    return ops


def hamiltonian(sizes, omega0=1.0):
    """``H = omega0 * sum_i J_i^z`` (dense D x D)."""
    return omega0 * sum(domain_operators(sizes)[1])


def liouvillian(sizes, gamma, nth=None, kappa=None, nloc=None, omega0=1.0):
    """Dense D^2 x D^2 Lindblad superoperator on row-major ``vec(rho)``.

    ``d vec(rho)/dt = L @ vec(rho)`` with ``vec(rho) = rho.reshape(-1)``
    (C order), built from ``vec(A X B) = kron(A, B.T) vec(X)``.
    """
    H = hamiltonian(sizes, omega0)
    eye = np.eye(H.shape[0])
    L = -1j * (np.kron(H, eye) - np.kron(eye, H.T))
    for C in collapse_operators(sizes, gamma, nth, kappa, nloc):
        CdC = C.conj().T @ C
        L = L + np.kron(C, C.conj()) - 0.5 * (np.kron(CdC, eye)
                                              + np.kron(eye, CdC.T))
    return L


def basis_state(sizes, excitations):
    """Full-space product ladder state ``|n_1>...|n_M>`` (complex vector)."""
    psi = np.ones(1, dtype=complex)
    for N, n in zip(sizes, excitations, strict=True):
        e = np.zeros(N + 1, dtype=complex)
        e[n] = 1.0
        psi = np.kron(psi, e)
    return psi


def default_initial_state(sizes):
    """Domain 0 fully excited (n = N_0), all other domains in n = 0."""
    return basis_state(sizes, [sizes[0]] + [0] * (len(sizes) - 1))


def _initial_rho(sizes, psi0, rho0):
    """rho0 if given, else |psi0><psi0| (psi0 default: default_initial_state)."""
    if rho0 is not None:
        return np.asarray(rho0, dtype=complex)
    psi = default_initial_state(sizes) if psi0 is None else np.asarray(psi0, complex)
    return np.outer(psi, psi.conj())


def solve_naive(sizes, times, gamma=1.0, nth=None, kappa=None, nloc=None,
                psi0=None, rho0=None):
    """Exact dense evolution ``vec(rho(t)) = expm(L t) vec(rho(0))``.

    Returns
    -------
    dict
        ``'jz'`` (len(times), M) real array of unnormalised ``<J_i^z>(t)``,
        ``'rho'`` list of D x D density matrices, ``'trace'`` real array.
    """
    rho_init = _initial_rho(sizes, psi0, rho0)
    D = rho_init.shape[0]
    L = liouvillian(sizes, gamma, nth, kappa, nloc)
    _, jz = domain_operators(sizes)
    rhos = [(scipy.linalg.expm(L * t) @ rho_init.reshape(-1)).reshape(D, D)
            for t in times]
    return {
        "jz": np.array([[np.trace(J @ r).real for J in jz] for r in rhos]),
        "rho": rhos,
        "trace": np.array([np.trace(r).real for r in rhos]),
    }


def steady_naive(sizes, gamma=1.0, psi0=None, t=1e6, method="kernel"):
    """Long-time state for T = 0 collective decay, no local decay.

    ``method="kernel"`` (default, ~1e-14 accurate): apply the spectral
    projector onto ker L, ``V (W^H V)^{-1} W^H`` with V, W the right/left
    null spaces, using ``omega0 = 0`` (rotating frame; <J_z> is unaffected
    and rho too for initial states of fixed total excitation number).
    ``method="expm"``: ``expm(L t) vec(rho0)``, cross-checked against
    ``t / 100`` (raises if they differ by > 1e-8); round-off grows ~ t
    (about 1e-10 at t = 1e6).

    Returns
    -------
    jz : ndarray, shape (M,)
    rho : ndarray, shape (D, D)
    """
    if method == "expm":
        out = solve_naive(sizes, [t / 100.0, t], gamma=gamma, psi0=psi0)
        if np.max(np.abs(out["rho"][0] - out["rho"][1])) > 1e-8:
            raise RuntimeError("steady_naive: expm(L t) not converged/stable")
        return out["jz"][1], out["rho"][1]
    L = liouvillian(sizes, gamma, omega0=0.0)
    V = scipy.linalg.null_space(L, rcond=1e-10)
    W = scipy.linalg.null_space(L.conj().T, rcond=1e-10)
    rho0 = _initial_rho(sizes, psi0, None)
    v = V @ np.linalg.solve(W.conj().T @ V, W.conj().T @ rho0.reshape(-1))
    rho = v.reshape(rho0.shape)
    _, jz = domain_operators(sizes)
    return np.array([np.trace(J @ rho).real for J in jz]), rho


def jz2_steady_closed_form(N1):
    """Paper eq. S8: steady ``<J_2^z>`` for domains (N1, 1), domain 1 full."""
    return (N1**2 - 2 * N1 - 1) / (2.0 * (N1 + 1) ** 2)


def naive_jump_trajectory(sizes, gamma, tmax, dt, rng, psi0=None):
    """One quantum-jump (MCWF) trajectory on the full space, T = 0.

    Propagates with ``U = expm(-i H_eff dt)``, ``H_eff = H - i/2 sum C^dag C``;
    a jump happens at the first step where ``||psi||^2 < r`` (r ~ U(0,1)),
    channel k chosen with probability ``∝ ||C_k psi||^2``. Jump times are
    resolved to the grid ``dt``. Collapse k = ``sqrt(gamma_k) L_k``, so the
    channel index is the reservoir index c (0-based), even if some
    ``gamma_c = 0``.

    Returns
    -------
    dict
        ``'jump_times'``, ``'jump_channels'`` (int arrays), ``'psi'`` final
        normalised state.
    """
    g = _per(gamma, len(sizes) - 1, "gamma")
    C = [np.sqrt(gc) * L for gc, L in zip(g, channel_jump_operators(sizes))]
    Heff = hamiltonian(sizes) - 0.5j * sum(c.conj().T @ c for c in C)
    U = scipy.linalg.expm(-1j * Heff * dt)
    psi = default_initial_state(sizes) if psi0 is None else np.asarray(psi0, complex)
    psi = psi / np.linalg.norm(psi)
    r = rng.random()
    times, chans = [], []
    for step in range(1, int(round(tmax / dt)) + 1):
        psi = U @ psi
        if np.vdot(psi, psi).real < r:
            w = np.array([np.vdot(c @ psi, c @ psi).real for c in C])
            k = rng.choice(len(C), p=w / w.sum())
            psi = C[k] @ psi / np.sqrt(w[k])
            times.append(step * dt)
            chans.append(k)
            r = rng.random()
    return {"jump_times": np.array(times, dtype=float),
            "jump_channels": np.array(chans, dtype=int),
            "psi": psi / np.linalg.norm(psi)}  # final, normalised


def naive_jump_statistics(sizes, gamma, tmax, dt, ntraj, seed):
    """Statistics of ``ntraj`` naive trajectories (``default_rng(seed)``).

    Returns
    -------
    dict
        ``'first_jump_time'`` (np.inf if no jump before tmax), ``'njumps'``
        (int), ``'channels_of_first_jump'`` (-1 if no jump).
    """
    rng = np.random.default_rng(seed)
    first = np.full(ntraj, np.inf)
    nj = np.zeros(ntraj, dtype=int)
    ch = np.full(ntraj, -1, dtype=int)
    for i in range(ntraj):
        tr = naive_jump_trajectory(sizes, gamma, tmax, dt, rng)
        nj[i] = tr["jump_times"].size
        if nj[i]:
            first[i], ch[i] = tr["jump_times"][0], tr["jump_channels"][0]
    return {"first_jump_time": first, "njumps": nj,
            "channels_of_first_jump": ch}


# ---------------------------------------------------------------------------------------------
# General reference: temperature, local reservoirs, schedules, spin-resolved domains,
# initial states, observables, negativity.  Each domain is represented either by its
# symmetric Dicke ladder (N + 1 states, n excitations) or, for domains listed in ``spins``,
# by the full 2^N space of its N spins-1/2 (single-spin basis (|down>, |up>)), where
# J^- = sum_n sigma_n^- is built spin by spin.  Nothing here knows about sectors or j.
# ---------------------------------------------------------------------------------------------
def local_operators(N, spin_resolved=False):
    """(J^-, J^z) of one domain: Dicke ladder (N+1) or full spin space (2^N)."""
    if not spin_resolved:
        return dicke_lowering(N), dicke_jz(N)
    sm = np.array([[0.0, 1.0], [0.0, 0.0]])       # |down><up|
    sz = np.diag([-0.5, 0.5])
    jm = np.zeros((2**N, 2**N))
    jz = np.zeros((2**N, 2**N))
    for n in range(N):
        jm += _embed_list(sm, n, [2] * N)
        jz += _embed_list(sz, n, [2] * N)
    return jm, jz


def _embed_list(op, i, dims):
    out = np.eye(1)
    for k, d in enumerate(dims):
        out = np.kron(out, op if k == i else np.eye(d))
    return out


def general_operators(sizes, spins=()):
    """Full-space J_i^-, J_i^z and the local dimensions (domains in ``spins`` spin-resolved)."""
    locs = [local_operators(N, i in spins) for i, N in enumerate(sizes)]
    dims = [a.shape[0] for a, _ in locs]
    jm = [_embed_list(a, i, dims) for i, (a, _) in enumerate(locs)]
    jz = [_embed_list(z, i, dims) for i, (_, z) in enumerate(locs)]
    return jm, jz, dims


def general_channels(sizes, gamma, nth=None, kappa=None, nloc=None, spins=()):
    """[(O_k, rate_k)] in the order of ``trajspin.Chain.channels()`` (zero rates left out)."""
    M = len(sizes)
    g, nt = _per(gamma, M - 1, "gamma"), _per(nth, M - 1, "nth")
    k, nl = _per(kappa, M, "kappa"), _per(nloc, M, "nloc")
    jm, _, _ = general_operators(sizes, spins)
    out = []
    for c in range(M - 1):
        L = jm[c] + jm[c + 1]
        for O, r in ((L, g[c] * (nt[c] + 1)), (L.T, g[c] * nt[c])):
            out.append((O, r))
    for i in range(M):
        for O, r in ((jm[i], k[i] * (nl[i] + 1)), (jm[i].T, k[i] * nl[i])):
            out.append((O, r))
    return out


def general_liouvillian(ops_rates, H):
    """Dense Liouvillian of H and collapse operators sqrt(r) O (row-major vec)."""
    eye = np.eye(H.shape[0])
    L = -1j * (np.kron(H, eye) - np.kron(eye, H.T))
    for O, r in ops_rates:
        if r > 0:
            C = np.sqrt(r) * O
            CdC = C.conj().T @ C
            L = L + np.kron(C, C.conj()) - 0.5 * (np.kron(CdC, eye) + np.kron(eye, CdC.T))
    return L


def solve_general(sizes, times, rho0, gamma=1.0, nth=None, kappa=None, nloc=None, spins=(),
                  switch_times=(), factors=None, omega0=1.0):
    """Dense evolution with a piecewise-constant schedule: expm per piece, exact at switches.

    ``factors`` (P, M-1) multiply both channels of shared reservoir c in piece p; piece p is
    [switch_times[p-1], switch_times[p]).  Returns the list of density matrices at ``times``.
    """
    M = len(sizes)
    g = _per(gamma, M - 1, "gamma")
    starts = [0.0] + list(switch_times)
    factors = np.ones((1, M - 1)) if factors is None else np.asarray(factors, float)
    _, jz, _ = general_operators(sizes, spins)
    H = omega0 * sum(jz)
    Ls = [general_liouvillian(general_channels(sizes, g * factors[p], nth, kappa, nloc, spins), H)
          for p in range(len(starts))]
    D = rho0.shape[0]
    out = []
    for t in times:
        v = np.asarray(rho0, complex).reshape(-1)
        now = 0.0
        for p, s in enumerate(starts):
            end = starts[p + 1] if p + 1 < len(starts) else np.inf
            if t <= s:
                break
            dt = min(t, end) - now
            v = scipy.linalg.expm(Ls[p] * dt) @ v
            now = min(t, end)
        out.append(v.reshape(D, D))
    return out


def spins_up_mixture(N, k):
    """Domain of N spins (full space), k up, averaged over which: projector / C(N, k)."""
    w = np.array([bin(s).count("1") for s in range(2**N)])
    # single-spin basis (down, up) = (0, 1): bit value 1 means up
    P = np.diag((w == k).astype(float))
    return P / P.trace()


def coherent_spins(N, theta):
    """Every spin cos(theta/2)|up> + sin(theta/2)|down>, full 2^N space (vector)."""
    v = np.array([np.sin(theta / 2), np.cos(theta / 2)])
    out = np.ones(1)
    for _ in range(N):
        out = np.kron(out, v)
    return out


def ladder_state(N, n):
    """Dicke ladder basis vector |n> (n excitations), length N + 1."""
    e = np.zeros(N + 1)
    e[n] = 1.0
    return e


def product_rho(local_rhos):
    """Kronecker product of local density matrices (domain order)."""
    out = np.eye(1)
    for r in local_rhos:
        out = np.kron(out, r)
    return out


def naive_observables(rho, sizes, ops_rates, spins=(), pairs=()):
    """Every observable of ``trajspin.observables`` from a full density matrix.

    Returns dict: jz (M,), jz2 (M,), jz_var (M,), n_dist (M, Nmax+1), coherence (M-1,),
    channel_rates (C,), log_negativity (len(pairs),), trace.
    """
    jm, jz, dims = general_operators(sizes, spins)
    M = len(sizes)
    ex = lambda A: float(np.trace(A @ rho).real)
    out = {"jz": np.array([ex(J) for J in jz]), "jz2": np.array([ex(J @ J) for J in jz])}
    out["jz_var"] = out["jz2"] - out["jz"] ** 2
    Nmax = max(sizes)
    nd = np.zeros((M, Nmax + 1))
    for i, J in enumerate(jz):
        d = np.real(np.diag(J)) + sizes[i] / 2.0           # J^z is diagonal in both bases
        for n in range(sizes[i] + 1):
            nd[i, n] = float(np.real(np.sum(np.diag(rho)[np.isclose(d, n)])))
    out["n_dist"] = nd
    out["coherence"] = np.array([ex(jm[i].T @ jm[i + 1]) for i in range(M - 1)])
    out["channel_rates"] = np.array([r * ex(O.T @ O) for O, r in ops_rates if r > 0])
    out["log_negativity"] = np.array([naive_log_negativity(rho, dims, a, b) for a, b in pairs])
    out["trace"] = float(np.trace(rho).real)
    return out


def naive_log_negativity(rho, dims, a, b):
    """log2 || (Tr_others rho)^{T_b} ||_1, dense partial trace and transpose."""
    M = len(dims)
    t = np.asarray(rho).reshape(dims + dims)
    others = [k for k in range(M) if k not in (a, b)]
    # trace out the others one by one (highest axis first)
    for k in sorted(others, reverse=True):
        nd = t.ndim // 2
        t = np.trace(t, axis1=k, axis2=k + nd)
    keep = [a, b] if a < b else [b, a]
    da, db = dims[keep[0]], dims[keep[1]]
    r = t.reshape(da * db, da * db)
    pt = r.reshape(da, db, da, db).transpose(0, 3, 2, 1).reshape(da * db, da * db)
    return float(np.log2(np.sum(np.abs(np.linalg.eigvalsh(0.5 * (pt + pt.conj().T))))))


def stationary_kernel_projection(L, rho0):
    """Spectral projection of rho0 on ker L (right/left null spaces), dense."""
    V = scipy.linalg.null_space(L, rcond=1e-10)
    W = scipy.linalg.null_space(L.conj().T, rcond=1e-10)
    v = V @ np.linalg.solve(W.conj().T @ V, W.conj().T @ np.asarray(rho0, complex).reshape(-1))
    return v.reshape(rho0.shape)
