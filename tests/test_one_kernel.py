"""The one event kernel: the paper path, the general path and feedback through one sampler.

What the merge of the paper, feedback and general kernels opened: the one tie rule at the
edge (u rounding to the total, last reservoir closed) on both table kinds, the paper tables in
the general layout, kernel calls in slices of ~0.2 s (bitwise the same sums, Ctrl-C seen on
the paper path), and the new kernel modules keeping to numpy / numba / math.
"""
import signal
import time

import numpy as np
import pytest

import trajspin
import trajspin.trajectories.plan as plan_module
from trajspin import Chain
from trajspin.kernels.events import event_kernel
from trajspin.kernels.rng import rng_uniform
from trajspin.trajectories import run_chunk
from trajspin.trajectories.feedback import Feedback
from trajspin.trajectories.plan import EnsemblePlan
from trajspin.trajectories.tables import jump_arrays, tables_for

from test_layers import KERNEL_ALLOWED, _imports, _modules

MASK = (1 << 64) - 1


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


def _unstep(n):
    """The xoshiro256 state one step before ``n`` (the update is invertible)."""
    n0, n1, n2, n3 = n
    s3a = _rotl(n3, 64 - 45)                  # s3 ^ s1
    s0 = n0 ^ s3a
    x = n1 ^ n2                               # s1 ^ (s1 << 17)
    s1 = x
    for k in (17, 34, 51):
        s1 ^= (x << k) & MASK
    s2a = n1 ^ s1                             # s2 ^ s0
    return [s0, s1, s2a ^ s0, s3a ^ s1]


def _state_whose_draw_is_largest(draw, salt):
    """A xoshiro256+ state whose ``draw``-th uniform (0-based) is 1 - 2^-53, the largest."""
    rng = np.random.default_rng(salt)
    later = [MASK, int(rng.integers(1, 2**63)), int(rng.integers(1, 2**63)), 0]  # s0 + s3 = max
    for _ in range(draw):
        later = _unstep(later)
    state = np.array(later, dtype=np.uint64)
    probe = state.copy()
    got = [rng_uniform(probe) for _ in range(draw + 1)]
    assert got[draw] == 1.0 - 2.0**-53
    return state


def _first_channel(plan, draw):
    """Channel of the first jump of ``plan`` from states whose channel draw is the largest."""
    M = plan.chain.M
    for salt in range(50):                    # the threshold draw varies with the salt
        rec = jump_arrays(16, M)
        psi = np.empty(int(plan.event.dims.max()))
        nj = event_kernel(_state_whose_draw_is_largest(draw, salt), plan.event, plan.switching,
                          plan.times, plan.horizon, np.empty((0, M)), plan.lay,
                          np.empty((plan.times.size, int(plan.lay[0]))), psi,
                          np.zeros(plan.R, dtype=np.int64), rec, 0)[0]
        if nj > 0:
            return int(rec.chan[0])
    raise AssertionError("no trajectory jumped")


def test_largest_draw_picks_the_last_open_reservoir_on_the_paper_path():
    chain = Chain([2, 2, 2])
    t = np.array([0.0, 1.0])
    both = EnsemblePlan(chain, t, None, "none", None, method="dense")
    first_only = EnsemblePlan(chain, t, None, "none", Feedback(initially_open=[0]),
                              method="dense")
    assert both.engine == first_only.engine == "paper"
    # threshold first, then the channel: draw 1
    assert _first_channel(both, 1) == 1           # u ~ total: the last reservoir
    assert _first_channel(first_only, 1) == 0     # never the closed one


def test_largest_draw_picks_the_last_open_channel_on_the_general_path():
    t = np.array([0.0, 1.0])
    both = EnsemblePlan(Chain([1, 1, 1]), t, None, "none", None, ("jz", "jz2"), "dense")
    closed = EnsemblePlan(Chain([1, 1, 1], schedule=([5.0], [[1.0, 0.0], [1.0, 1.0]])), t,
                          None, "none", None, ("jz",), "dense")
    assert both.engine == closed.engine == "general"
    # component, sector, threshold, then the channel: draw 3
    assert _first_channel(both, 3) == 1
    assert _first_channel(closed, 3) == 0


def test_paper_tables_in_the_general_layout_match_the_domain_tables():
    chain = Chain([4, 3, 2])
    tab = tables_for(chain, 4)
    basis = trajspin.Chain([4, 3, 2]).sectors
    lt = np.concatenate([basis.domain_tables(K)[0] for K in range(5)])
    la = np.concatenate([basis.domain_tables(K)[1] for K in range(5)])
    np.testing.assert_array_equal(tab.low_tgt, lt)
    np.testing.assert_array_equal(tab.low_amp, la)


@pytest.mark.parametrize("records", ["none", "full"])
def test_paper_sums_do_not_depend_on_the_kernel_slices(monkeypatch, records):
    chain = Chain([5, 3, 2])        # not a chain of test_estimate (feedback caches patterns)
    t = np.logspace(-2, 1.5, 12)
    K0, pos = chain.sectors.index_of((5, 0, 0))
    feedback = Feedback(["close R1 after 3 quanta"]).check(chain) if records == "full" else None
    whole = run_chunk(chain, t, 4, 0, 300, K0, pos, records=records, feedback=feedback)
    monkeypatch.setattr(plan_module, "CALL_SECONDS", 0.0)      # one trajectory per call
    sliced = run_chunk(chain, t, 4, 0, 300, K0, pos, records=records, feedback=feedback)
    for a, b in zip(whole.components(), sliced.components()):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        elif hasattr(a, "__dict__"):
            for k, v in vars(a).items():
                if isinstance(v, np.ndarray):
                    np.testing.assert_array_equal(v, getattr(b, k), err_msg=k)
        else:
            assert a == b


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def test_ctrl_c_stops_the_paper_path_within_a_second_or_two():
    """One chunk of 10^6 paper trajectories (minutes): once deaf to Ctrl-C until the chunk
    ended, now the kernel returns every ~0.2 s.  SIGALRM after 1 s stands for Ctrl-C."""
    chain = Chain([12, 6, 2])
    t = np.logspace(-3, 2, 20)
    trajspin.run_trajectories(chain, t, 10, seed=1, progress=False)     # compiled first
    previous = signal.signal(signal.SIGALRM, _interrupt)
    t0 = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            trajspin.run_trajectories(chain, t, 10**6, seed=1, chunk=10**6, progress=False)
        stopped = time.perf_counter() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)
    assert stopped < 1.0 + 2.0


@pytest.mark.parametrize("name", ["trajspin.kernels.rng", "trajspin.kernels.linalg",
                                  "trajspin.kernels.rules", "trajspin.kernels.matrix_free",
                                  "trajspin.kernels.ensemble"])
def test_new_kernel_modules_import_only_numerics_and_other_kernels(name):
    path = _modules()[name]
    external, internal = _imports(path, name)
    local_ext, local_int = _imports(path, name, scope="local")
    assert external | local_ext <= KERNEL_ALLOWED
    assert all(i.startswith("trajspin.kernels") for i in internal | local_int)
