"""Cross-checks with QuTiP: the chain's operators and initial state as ``qutip.Qobj``.

The coupled Dicke basis |n_1> x ... x |n_M> (n_i excitations, domain 1 first) is the tensor
product of the domains' symmetric ladders, QuTiP dims [[N_1+1, ..., N_M+1], [...]].  On it

    J_i^z = diag(n_i - N_i/2),   J_i^- |n_i> = sqrt(n_i (N_i - n_i + 1)) |n_i - 1>,

and the collapse operators are sqrt(r_k) O_k for the channels of ``chain.channels()``
(same order).  QuTiP's ``mesolve(H, rho0, times, c_ops)`` then solves the same master
equation as ``trajspin.solve_master``.  Initial states that mix spin-j sectors ("up:k") are
not symmetric-ladder states and are refused here; a Dicke, coherent or user vector state is
returned as a ket.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from trajspin.errors import InputError
from trajspin.initial import resolve_initial

__all__ = ["to_qutip", "dense_operators"]


def dense_operators(sizes):
    """J_i^- and J_i^z on the full coupled Dicke basis as SciPy CSR matrices.

    Returns
    -------
    jminus, jz : list of M sparse matrices, each (D, D), D = prod(N_i + 1)
    """
    jm, jz = [], []
    eyes = [sp.identity(N + 1, format="csr") for N in sizes]
    for i, N in enumerate(sizes):
        n = np.arange(N + 1, dtype=float)
        low = sp.diags(np.sqrt(n[1:] * (N - n[1:] + 1.0)), 1, format="csr")
        z = sp.diags(n - N / 2.0, 0, format="csr")
        for op, out in ((low, jm), (z, jz)):
            full = sp.identity(1, format="csr")
            for k in range(len(sizes)):
                full = sp.kron(full, op if k == i else eyes[k], format="csr")
            out.append(full)
    return jm, jz


def _initial_ket(chain, initial):
    state = resolve_initial(chain, initial)
    if len(state.components) != 1 or state.components[0][1] != tuple(chain.sizes):
        raise InputError(f"to_qutip: initial state {state.label!r} mixes spin-j sectors (k of N spins "
                         "up); QuTiP's symmetric-ladder space cannot hold it")
    _, _, part = state.components[0]
    if isinstance(part, list):
        psi = np.ones(1)
        for v in part:
            psi = np.kron(psi, v)
        return psi
    return part


def to_qutip(chain, initial=None):
    """QuTiP objects of ``chain`` (see ``Chain.to_qutip``).

    Returns
    -------
    dict with
        ``c_ops`` : list of Qobj, sqrt(r_k) O_k in the order of ``chain.channels()``
                    (rates of the first schedule piece),
        ``c_ops_schedule`` : list of (start_time, c_ops) per schedule piece,
        ``jz`` : list of M Qobj,  ``jminus`` : list of M Qobj,
        ``H`` : Qobj, sum_i J_i^z (omega0 = 1; it commutes with everything and drops out),
        ``psi0`` : ket Qobj of the initial state,  ``rho0`` : its density matrix,
        ``dims`` : [[N_1+1, ..., N_M+1], [N_1+1, ..., N_M+1]].
    """
    try:
        import qutip
    except ImportError:
        raise InputError("to_qutip needs the optional package qutip: pip install 'trajspin[qutip]'") from None
    sizes = list(chain.sizes)
    dims = [[n + 1 for n in sizes], [n + 1 for n in sizes]]
    jm, jz = dense_operators(sizes)
    ch = chain.channels()
    ops = []
    for k in range(ch.C):
        O = sum(jm[i] for i in ch.domains[k] if i >= 0)
        ops.append(O if ch.direction[k] < 0 else O.T.tocsr())

    def q(A):
        return qutip.Qobj(A.toarray() if hasattr(A, "toarray") else A, dims=dims)

    schedule = []
    for p in range(ch.P):
        schedule.append((float(ch.starts[p]),
                         [q(np.sqrt(ch.rates[p, k]) * ops[k]) for k in range(ch.C) if ch.rates[p, k] > 0]))
    psi = _initial_ket(chain, initial)
    ket = qutip.Qobj(psi.reshape(-1, 1), dims=[dims[0], [1] * len(sizes)])
    return {"c_ops": schedule[0][1], "c_ops_schedule": schedule, "jz": [q(z) for z in jz],
            "jminus": [q(m) for m in jm], "H": q(sum(jz)), "psi0": ket, "rho0": ket * ket.dag(),
            "dims": dims}
