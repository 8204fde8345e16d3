"""Feedback rules and observables beyond <J_i^z> on the matrix-free (Lanczos) path.

The Lanczos path draws the random numbers of the dense paper engine (one threshold per
waiting time, one uniform per jump), so with feedback the same (seed, index) must give the
same channels, the same reservoir masks and the same sectors, and times and <J_i^z> equal to
the Lanczos tolerance.  Observables: the dense engine computes them on its general tables,
which draw two more numbers first, so single trajectories differ after the first jump; before
it both show the same deterministic no-jump state, and the ensemble averages must agree
with the dense density-matrix reference within ZMAX standard errors.
At 10^5-10^6 spins the feedback rules are checked on what they must do exactly.
"""
import numpy as np
import pytest

import trajspin
from trajspin import Chain, InputError
from trajspin.trajectories.feedback import Feedback
from trajspin.trajectories import lanczos
from trajspin.trajectories.lanczos import krylov_trajectory
from test_trajectory_physics import ALL, T_GRID, assert_matches, exact_observables

RULES = ["close R1 when D2 >= -0.35", "close R2 after 3 quanta of R2", "open R1 after 5 quanta",
         "open R2 at t >= 0.4"]
# R1 alone open at t = 0 (bits count from 0: R1 is bit 0)
LATE = Feedback(["open R2 after 1 quanta", "close R1 after 3 quanta", "open R1 at t >= 0.3",
                 "open R3 after 5 quanta"], initially_open=[0])


def _reopened(masks, mask0):
    """Number of jumps after which some reservoir closed before it is open again."""
    prev = np.concatenate([[mask0], masks[:-1]])
    return int(np.sum((masks & ~prev) != 0))


@pytest.mark.parametrize("feedback, mask0", [(RULES, 7), (LATE, 1)])
@pytest.mark.parametrize("cached_dim", [None, 20])
def test_feedback_gives_the_dense_record(feedback, mask0, cached_dim, monkeypatch):
    """cached_dim 20: sectors of 20 states or more take the path of large sectors (tables
    kept per (sector, reservoir mask) between visits, one visit per kernel call)."""
    if cached_dim is not None:
        monkeypatch.setattr(lanczos, "CACHED_DIM", cached_dim)
    chain = Chain((8, 6, 5, 1))
    t = np.geomspace(1e-3, 50, 30)
    masks, reopened = set(), 0
    for idx in range(120):
        a = trajspin.trajectory(chain, t, 3, idx, feedback=feedback, method="dense")
        b = trajspin.trajectory(chain, t, 3, idx, feedback=feedback, method="krylov")
        assert type(b).__name__ == "KrylovTrajectory" and b.feedback is not None
        np.testing.assert_array_equal(b.jump_channels, a.jump_channels)
        np.testing.assert_array_equal(b.reservoirs_open, a.reservoirs_open)
        np.testing.assert_array_equal(b.jump_excitation, a.jump_excitation)
        assert (b.excitation_left, b.dark) == (a.excitation_left, a.dark)
        np.testing.assert_allclose(b.jump_times, a.jump_times, rtol=1e-9)
        np.testing.assert_allclose(b.jz, a.jz, atol=1e-9)
        np.testing.assert_allclose(b.jz_after, a.jz_after, atol=1e-9)
        masks.update(a.reservoirs_open.tolist())
        reopened += _reopened(a.reservoirs_open, mask0)
    assert len(masks) >= 3 and reopened >= 10      # rules closed and reopened reservoirs


def test_feedback_ensemble_summaries_match_dense():
    chain = Chain((8, 6, 5, 1))
    t = np.geomspace(1e-3, 50, 12)
    kw = dict(seed=11, feedback=RULES, records="full", progress=False)
    a = trajspin.run_trajectories(chain, t, 300, method="dense", **kw)
    b = trajspin.run_trajectories(chain, t, 300, method="krylov", **kw)
    assert b.meta["engine"] == "krylov" and b.meta["feedback"] == a.meta["feedback"]
    ra, rb = a.records, b.records
    for name in ("njumps", "excitation_left", "dark", "quanta", "final_open", "jump_reservoir",
                 "jump_excitation", "reservoirs_open"):
        np.testing.assert_array_equal(getattr(rb, name), getattr(ra, name), err_msg=name)
    assert len(set(ra.final_open.tolist())) >= 3
    np.testing.assert_allclose(rb.jump_time, ra.jump_time, rtol=1e-9)
    np.testing.assert_allclose(b.jz, a.jz, atol=1e-9)
    np.testing.assert_allclose(rb.final_jz, ra.final_jz, atol=1e-8)


def test_observables_before_the_first_jump_equal_dense():
    """Before either trajectory jumps, both show the no-jump state of |8, 0, 0, 0>."""
    chain = Chain((8, 6, 5, 1))
    t = np.geomspace(1e-4, 30, 40)
    names = [n for n in ALL if n != "jz"]
    seen = 0
    for idx in range(4):
        a = trajspin.trajectory(chain, t, 3, idx, observables=names, method="dense")
        b = trajspin.trajectory(chain, t, 3, idx, observables=names, method="krylov")
        assert type(b).__name__ == "KrylovTrajectory"
        rows = t < min(a.jump_times[0], b.jump_times[0])
        seen += rows.sum()
        for name in ALL:
            x, y = a.observables[name][rows], getattr(b, name)[rows]
            assert y.shape == x.shape, name
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-12 * max(1.0, np.abs(x).max()),
                                       err_msg=name)
        assert np.abs(b.coherence[rows]).max() > 0.5       # the no-jump state has coherence
    assert seen >= 60


@pytest.mark.parametrize("sizes, ntraj, seed", [((2, 2, 1), 3000, 4), ((4, 2), 3000, 8)])
def test_krylov_ensemble_observables_match_dense_reference(sizes, ntraj, seed):
    chain = Chain(sizes)
    ens = trajspin.run_trajectories(chain, T_GRID, ntraj, seed=seed, observables=ALL,
                                    method="krylov", progress=False)
    assert ens.meta["engine"] == "krylov"
    assert_matches(ens, exact_observables(chain, T_GRID, None))


def test_jz_var_error_is_the_delta_method_over_single_trajectories():
    """The ensemble's jz_var and its error (from the cross sums <J^z><(J^z)^2>) against the
    same numbers formed from single trajectories: jz_var = mean(jz2) - mean(jz)^2, error the
    standard error of jz2_k - 2 mean(jz) jz_k (its linearisation)."""
    chain, t, n = Chain((6, 4, 2)), T_GRID, 60
    ens = trajspin.run_trajectories(chain, t, n, seed=9, observables=["jz_var"], method="krylov",
                                    progress=False)
    trs = [krylov_trajectory(chain, t, 9, k, observables=["jz2"]) for k in range(n)]
    jz, jz2 = np.array([tr.jz for tr in trs]), np.array([tr.jz2 for tr in trs])
    m1 = jz.mean(axis=0)
    np.testing.assert_allclose(ens.jz_var, jz2.mean(axis=0) - m1**2, rtol=1e-12, atol=1e-12)
    err = (jz2 - 2 * m1 * jz).std(axis=0, ddof=1) / np.sqrt(n)
    assert err.max() > 0.1
    # atol: the ensemble forms the variance from sums of squares, whose cancellation leaves
    # sqrt(eps) x the scale of (J^z)^2 (~10) over sqrt(n): ~1e-8 where the error is ~0
    np.testing.assert_allclose(ens.jz_var_err, err, rtol=1e-7, atol=1e-7)


def test_quanta_rule_at_1e5_spins_stops_after_exactly_that_many_jumps():
    """'close R1 after 50000 quanta' on (10^5, 10): the only reservoir closes at the 50000th
    jump, and the trajectory is dark with 50000 quanta left."""
    chain = Chain([10**5, 10])
    t = np.array([0.0, 1e-6, 1.0, 10.0])
    for idx in (0, 1):
        tr = trajspin.trajectory(chain, t, 5, idx, feedback="close R1 after 50000 quanta")
        assert type(tr).__name__ == "KrylovTrajectory"
        assert len(tr.jump_times) == 50000 and tr.excitation_left == 50000 and tr.dark
        np.testing.assert_array_equal(tr.jump_excitation, np.arange(10**5, 50000, -1))
        assert np.all(tr.reservoirs_open[:-1] == 1) and tr.reservoirs_open[-1] == 0
        np.testing.assert_array_equal(tr.jz[-1], tr.jz_after[-1])   # frozen after the close


def test_time_rule_at_1e6_spins_closes_at_the_first_jump_after_it():
    chain = Chain([10**6, 100])
    t = np.array([0.0, 1e-7, 1e-3])
    tr = trajspin.trajectory(chain, t, 2, 0, feedback="close R1 at t >= 2e-6")
    assert type(tr).__name__ == "KrylovTrajectory"
    jt = tr.jump_times
    assert jt[-1] >= 2e-6 > jt[-2] and tr.dark and tr.reservoirs_open[-1] == 0
    assert len(jt) == 10**6 - tr.excitation_left
    # about gamma N_1 * 2e-6 ~ 2 jumps per 1e-6 early on: a handful, not zero
    assert 1 <= len(jt) <= 40


def test_observables_at_1e5_spins_start_from_the_exact_initial_values():
    """At t = 0, |N_1, 0>: <J_1^z> = N_1/2, <(J_i^z)^2> = (N_i/2)^2, n_dist a point mass,
    no coherence, channel rate gamma N_1; the trajectory ends dark in K = N_2 (the smallest
    total spin, probability 1 - 10^-4)."""
    N1, N2 = 10**5, 10
    chain = Chain([N1, N2])
    t = np.array([0.0, 1e-7, 1e-4, 10.0])
    tr = trajspin.trajectory(chain, t, 7, 0, observables=["jz2", "jz_var", "n_dist", "coherence",
                                                          "channel_rates", "reservoir_rates"])
    assert type(tr).__name__ == "KrylovTrajectory"
    np.testing.assert_allclose(tr.jz2[0], [(N1 / 2) ** 2, (N2 / 2) ** 2], rtol=1e-12)
    assert tr.n_dist.shape == (4, 2, N1 + 1)
    assert tr.n_dist[0, 0, N1] == pytest.approx(1.0, abs=1e-12) == tr.n_dist[0, 1, 0]
    # (the t = 0 row is the Lanczos propagator at step 0: exact up to rounding)
    assert abs(tr.coherence[0, 0]) < 1e-12 and tr.channel_rates[0, 0] == pytest.approx(N1, rel=1e-12)
    np.testing.assert_allclose(tr.n_dist.sum(axis=2), 1.0, rtol=1e-12)
    assert np.all(tr.jz_var >= -1e-6 * N1) and tr.excitation_left == N2 and tr.dark
    np.testing.assert_allclose(tr.channel_rates[-1], 0.0, atol=1e-9 * N1)   # dark: no emission


def test_observable_rows_that_do_not_fit_are_refused_before_work(monkeypatch):
    monkeypatch.setattr(lanczos, "_run_one", lambda *a, **k: pytest.fail("work started"))
    chain = Chain([10**7, 10])
    with pytest.raises(InputError, match="Lanczos trajectory path.*fewer output times or drop n_dist"):
        trajspin.run_trajectories(chain, np.linspace(0, 1, 2000), 10, observables="n_dist",
                                  progress=False)
    with pytest.raises(InputError, match="feedback keeps <J_i\\^z> only"):
        krylov_trajectory(chain, [0.0, 1.0], feedback="close R1 after 3 quanta",
                          observables="jz2")


def test_summaries_do_not_keep_every_jump():
    """records="summaries" on the Lanczos path keeps per trajectory its summary only: a chunk
    of 4 trajectories of (10^5, 10) held 4 x 10^5 jumps x 64 bytes (26 MB) of per-jump
    arrays before dropping them (at (10^6, 100) and the default chunk of 256: 16 GB)."""
    import tracemalloc
    chain = Chain([10**5, 10])
    t = np.array([0.0, 1e-4, 1.0])
    trajspin.run_trajectories(chain, t, 1, seed=2, records="summaries", progress=False)  # warm
    tracemalloc.start()
    ens = trajspin.run_trajectories(chain, t, 4, seed=2, records="summaries", chunk=4,
                                    progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert ens.meta["engine"] == "krylov" and ens.records.njumps.tolist() == [99990] * 4
    work = 64 * 10**5                         # one trajectory's record buffer (counted)
    assert peak < work + 6 * 2**20, peak / 2**20
