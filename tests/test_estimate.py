"""trajspin.estimate: exact table memory, refusal with the numbers, CLI exit codes, time model."""
import time
import tracemalloc

import numpy as np
import pytest

import trajspin
from trajspin import InputError
from trajspin.cli import main as cli_main
from trajspin.estimate import BASELINE_BYTES, Estimate, estimate, table_bytes
from trajspin.sectors import sector_basis
from trajspin.trajectories import tables
from trajspin.trajectories.tables import tables_for


def _array_bytes(obj, seen):
    """Bytes of every ndarray reachable from obj (dicts, lists, tuples, plain objects), once each."""
    if id(obj) in seen or isinstance(obj, trajspin.Chain):
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes if obj.base is None else 0
    if isinstance(obj, dict):
        return sum(_array_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_array_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return sum(_array_bytes(v, seen) for v in vars(obj).values())
    return 0


@pytest.mark.parametrize("sizes", [(4, 2), (6, 3, 2), (5, 4, 3, 2), (12, 6, 2), (3, 3, 3, 3, 3)])
def test_table_bytes_is_exact(sizes):
    """The formula equals the bytes of the arrays the dense engine keeps after a run (on a
    fresh sector basis: runs of other engines on the same chain, earlier in the session, add
    their own tables to the shared basis)."""
    sector_basis.cache_clear()
    tables._PAPER_TABLES.clear()
    chain = trajspin.Chain(sizes)
    trajspin.run_trajectories(chain, np.logspace(-3, 2, 20), 3, seed=1, progress=False)
    seen = set()
    kept = _array_bytes(tables_for(chain, chain.sizes[0]), seen) + _array_bytes(chain.sectors, seen)
    assert table_bytes(chain) == kept


def test_estimate_breakdown_and_ranks():
    e1 = estimate((12, 6, 2), ntraj=1000)
    e2 = estimate(trajspin.Chain((12, 6, 2)), ntraj=1000, ranks=2)
    assert isinstance(e1, Estimate) and e1.method == "dense spectral"
    assert e1.breakdown["tables"] == table_bytes(trajspin.Chain((12, 6, 2)))
    assert e1.breakdown["baseline"] == BASELINE_BYTES
    assert e1.bytes_per_rank == sum(e1.breakdown.values())
    assert e2.bytes_total == 2 * e2.bytes_per_rank == 2 * e1.bytes_per_rank
    assert e2.seconds < e1.seconds and e1.fits
    text = str(e1)
    assert "memory per rank" in text and "fits" in text and "K0 = 12" in text


def test_refusal_with_numbers():
    est = estimate((12, 6, 2), available=2**20)            # pretend 1 MiB is free
    assert not est.fits
    with pytest.raises(InputError) as info:
        est.check()
    msg = str(info.value)
    assert "\n" not in msg and "does not fit" in msg and "MiB" in msg
    assert estimate((12, 6, 2)).check().fits              # check() returns the estimate


def test_exact_solvers_and_bad_input():
    m = estimate((4, 3, 3, 2), "master", times=np.linspace(0, 10, 50))
    s = estimate((4, 3, 3, 2), "steady")
    assert m.points == 50 and m.seconds > 0 and s.seconds > 0 and m.fits and s.fits
    for kwargs in ({"solver": "exact"}, {"ntraj": 0}, {"ranks": 0}, {"ranks": 2, "solver": "master"},
                   {"times": [1.0, 0.5]}, {"initial": [9, 0, 0]}):
        with pytest.raises(InputError):
            estimate((4, 3, 2), **kwargs)


def test_cli_exit_codes(capsys):
    assert cli_main(["estimate", "--sizes", "12", "6", "2", "--ntraj", "100", "--ranks", "2"]) == 0
    out = capsys.readouterr().out
    assert "memory per rank" in out and "fits              yes" in out
    assert cli_main(["estimate", "--sizes", "2000", "2000", "2000", "--solver", "master"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error:") and "does not fit" in err and len(err.splitlines()) == 1
    assert cli_main(["estimate", "--sizes", "4", "2", "--ranks", "0"]) == 2


def _wall(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@pytest.mark.parametrize("solver, sizes, n", [("trajectories", (30, 10, 3), 300),
                                              ("master", (4, 3, 3, 2), 0),
                                              ("steady", (200, 30, 3), 0)])
def test_predicted_time_within_4x(solver, sizes, n):
    """The calibrated model predicts a small run's wall time within a factor of 4 either way.

    A fresh Chain, so the set-up (sector tables) is part of both the prediction and the
    measurement; the numba kernels are loaded first (compile time is not part of the model).
    """
    times = np.logspace(-4, 3, 400)
    trajspin.run_trajectories(trajspin.Chain((2, 1)), times, 2, progress=False)
    trajspin.solve_master(trajspin.Chain((2, 1)), times[:5])
    chain = trajspin.Chain(sizes)
    if solver == "trajectories":
        wall = _wall(lambda: trajspin.run_trajectories(chain, times, n, seed=3, progress=False))
        est = estimate(sizes, solver, ntraj=n, times=times)
    elif solver == "master":
        wall = _wall(lambda: trajspin.solve_master(chain, times))
        est = estimate(sizes, solver, times=times)
    else:
        wall = _wall(lambda: trajspin.steady_state(chain))
        est = estimate(sizes, solver)
    assert wall / 4 <= est.seconds <= 4 * wall, (est.seconds, wall)


@pytest.mark.parametrize("sizes, kw", [((12, 6, 2), {}), ((40, 20, 10, 4), {}),
                                       ((6, 3, 2), {"n_thermal": 0.5}), ((5, 3), {"kappa": 0.2})])
def test_estimate_sizes_the_engine_the_run_chooses(sizes, kw):
    """``trajspin estimate`` and the runs share one engine choice and one memory model."""
    from trajspin.initial import resolve_initial
    from trajspin.resources import choose_engine
    chain = trajspin.Chain(sizes, **kw)
    engine, need = choose_engine(chain, resolve_initial(chain, None))
    e = estimate(chain, ntraj=10)
    assert e.method.startswith("krylov") == (engine == "krylov")
    assert e.breakdown["krylov" if engine == "krylov" else "tables"] == need


def test_feedback_tables_are_in_the_memory_model():
    from trajspin.initial import resolve_initial
    from trajspin.resources import choose_engine, feedback_memory_estimate
    from trajspin.trajectories import check_feedback
    chain = trajspin.Chain((6, 3, 2))
    init = resolve_initial(chain, None)
    fb = check_feedback(chain, "close R2 when D3 >= 0.2")
    plain = choose_engine(chain, init)[1]
    with_fb = choose_engine(chain, init, feedback=fb)[1]
    assert with_fb - plain == feedback_memory_estimate(chain, 6, len(fb.reachable_masks(2))) > 0


@pytest.mark.parametrize("sizes, n, tmax", [((2, 1), 1e3, 5.0), ((4, 2), 100.0, 5.0),
                                            ((3, 2, 1), 50.0, 5.0), ((20, 2), 0.3, 100.0),
                                            ((12, 6, 2), 0.5, 20.0)])
def test_warm_chains_count_their_jumps(sizes, n, tmax):
    """Warm reservoirs: the estimate's jump count bounds the measured one within 4x, and the
    note no longer claims at most K0 jumps (n_thermal = 1e6 once took 900x the estimate)."""
    from trajspin.estimate import warm_jumps
    chain = trajspin.Chain(sizes, n_thermal=n)
    times = trajspin.time_grid(tmax, 3, tmax / 10, "log", include_zero=True)
    res = trajspin.run_trajectories(chain, times, 20, seed=2, progress=False)
    measured = res.meta["njumps_sum"] / 20
    predicted = warm_jumps(chain, tmax)
    assert measured <= predicted <= 4 * measured, (measured, predicted)
    e = estimate(chain, ntraj=20, times=times)
    assert any("warm reservoirs" in note for note in e.notes)
    assert not any("at most K0" in note for note in e.notes)
    assert e.seconds_per_traj >= 7.5e-07 * predicted


@pytest.mark.parametrize("sizes, initial", [((10, 3), None), ((10, 3), [10, 0]), ((10, 3), [9, 0]),
                                            ((10, 3, 1), None), ((10, 3), ["excited", 0])])
def test_estimate_and_steady_state_take_the_same_route(sizes, initial):
    """The two-domain closed form is one decision (resources.steady_closed_form) for the
    solver and for the estimate; (10^9, 10^3) is priced at milliseconds, not refused."""
    from trajspin.resources import steady_closed_form
    chain = trajspin.Chain(sizes)
    closed = steady_closed_form(chain, initial)
    res = trajspin.steady_state(chain, initial=initial, progress=False)
    assert res.meta["solver"].startswith("total-spin") == closed
    e = estimate(chain, "steady", initial=initial)
    assert e.method.startswith("total-spin") == closed
    big = estimate((10**9, 10**3), "steady")
    assert big.fits and big.seconds < 1


def _traced_peak(run):
    """Peak bytes allocated (numpy and numba arrays, both traced) while ``run()`` runs."""
    run()                                         # compile and fill caches first
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_cascade_model_counts_the_extrapolation_tableau():
    from trajspin.exact.cascade import MAX_ORDER
    from trajspin.resources import CASCADE_TABLEAU_ROWS
    assert CASCADE_TABLEAU_ROWS == 2 * MAX_ORDER


FIXED = 64 * 1024


@pytest.mark.parametrize("sizes", [(16, 10, 5), (30, 8)])
def test_master_memory_model_covers_the_measured_peak(sizes):
    """The exact solver's allocations stay within its memory model (plus FIXED bytes of
    Python objects that do not grow with the chain: ~16 kB measured), and the model is not
    loose by more than 1.6x (before 2026-12-08 it counted 10 d_K^2 per sector of ~28)."""
    from trajspin.resources import master_memory_estimate
    chain = trajspin.Chain(list(sizes))
    peak = _traced_peak(lambda: trajspin.solve_master(chain, [0.0, 0.05, 0.5]))
    model = master_memory_estimate(chain)
    assert peak <= model + FIXED <= 1.6 * peak, (peak, model)


def test_steady_memory_model_covers_the_measured_peak():
    """The stationary cascade (two sectors' work matrices at once, the basis' tables)."""
    from trajspin.resources import steady_memory_estimate
    chain = trajspin.Chain([60, 20, 10])
    peak = _traced_peak(lambda: trajspin.steady_state(chain))
    model = steady_memory_estimate(chain)
    assert peak <= model + FIXED <= 2.0 * peak, (peak, model)
