"""Sweeps: closed forms, determinism over rank counts, SIGKILL + resume, bad configs, tables, plots.

The MPI tests start ``mpiexec`` of the pip-installed MPICH (next to ``sys.executable``) on
``mpi_scripts/run_sweep.py``: 1 and 2 ranks give arrays identical to ``trajspin.sweep`` in
this process; a job killed with SIGKILL once some point files exist resumes without redoing
them (each kept point's recorded wall time survives, and the run counts what it computed).
"""
import copy
import os
import signal
import subprocess
import sys
import time
import tomllib

import numpy as np
import pytest

import trajspin
from trajspin import InputError
from trajspin.cli import main as cli_main
from trajspin.exact.two_domain import two_domain_steady
from trajspin.results.sweep import SweepResult
import trajspin.runners.sweep as sweep_module
from trajspin.runners.sweep import SweepCoordinator, prepare_sweep
from trajspin.runners.sweep_points import PointCost, check_fit
from trajspin.runners.sweep_spec import load_sweep, parse_sweep
from mpi_support import ENV, MPIEXEC, ROOT, needs_mpi

CONFIGS = ROOT / "mpi_scripts" / "configs"
SCRIPT = ROOT / "mpi_scripts" / "run_sweep.py"
ARRAYS = SweepResult._arrays


MIXED = """description = "mixed"
[chain]
sizes = [4, 2]
[times]
start = 1e-2
stop = 20
points = 8
[run]
ntraj = 300
seed = 5
chunk = 64
[sweep]
sizes = [[4, 2], [3, 2, 1]]
solver = ["steady", "master", "trajectories", "mean_field"]
"""

SLOW = """description = "kill me"
[chain]
sizes = [10, 5, 2]
[times]
start = 1e-2
stop = 100
points = 30
[run]
ntraj = 3000
seed = 1
chunk = 250
[sweep]
solver = "trajectories"
seed = [1, 2, 3, 4, 5, 6, 7, 8]
"""


def same_arrays(a, b):
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name


def mpi_command(P, config, out, *args):
    if not MPIEXEC.exists():
        pytest.fail(f"mpi4py is installed but {MPIEXEC} is missing: pip install mpich")
    return [str(MPIEXEC), "-n", str(P), sys.executable, str(SCRIPT), str(config), "--out",
            str(out), "--quiet", *args]


def shipped(name, **axes):
    """A shipped sweep config as a dict, with some axes replaced (to keep tests short)."""
    with open(CONFIGS / f"sweep_{name}.toml", "rb") as fh:
        data = tomllib.load(fh)
    data["sweep"].update(axes)
    return data


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    path = tmp_path_factory.mktemp("mixed") / "mixed.toml"
    path.write_text(MIXED)
    return path, trajspin.sweep(path, progress=False)


# ---------------------------------------------------------------- physics: closed forms
def test_two_domains_against_eq_S8_and_the_total_spin_closed_form():
    # eq. (S8): N_2 = 1 from eq. (4), <J_2^z>(inf) = (N1^2 - 2 N1 - 1) / (2 (N1 + 1)^2)
    N1 = np.arange(1, 13)
    res = trajspin.sweep({"chain": {"sizes": [2, 1]},
                          "sweep": {"solver": "steady", "N1": N1.tolist()}}, progress=False)
    np.testing.assert_allclose(res.values(-1), (N1**2 - 2 * N1 - 1) / (2 * (N1 + 1.0) ** 2),
                               rtol=0, atol=1e-13)
    # the closed form is priced as such: N_1 = 10^9 is no memory problem, and D2 -> 1/2
    res = trajspin.sweep({"chain": {"sizes": [2, 2]},
                          "sweep": {"solver": "steady", "N1": [10**9]}}, progress=False)
    assert 0 < 0.5 - res.values(-1)[0] < 1e-8
    # eq. (5) from the shipped config: "excited" items run the sector cascade, checked against
    # Racah's closed form; D2 climbs towards <J_1^z>/N_1(0) = 1/2 (excited), 0 (half)
    res = trajspin.sweep(shipped("eq5", N1=[4, 12, 40, 80]), progress=False)
    assert res.dims == ("N1", "initial") and res.shape == (4, 2)
    for k, n1 in enumerate([4, 12, 40, 80]):
        jz, _ = two_domain_steady(n1, 2)
        np.testing.assert_allclose(res.jz_final[res.index(N1=n1, initial=["excited", "ground"])],
                                   jz, rtol=0, atol=1e-10)
    excited, half = res.values(-1)[:, 0], res.values(-1)[:, 1]
    assert np.all(np.diff(excited) > 0) and 0.5 - excited[-1] < 0.04
    assert np.all(np.diff(half) > 0) and np.all(half < 0) and abs(half[-1]) < 0.02


def test_fig_S1_warm_reservoirs_make_migration_less_efficient():
    res = trajspin.sweep(shipped("figS1", sizes=[[20, 2]], temperature=[0.0, 0.8, 1.6]),
                         progress=False)
    d1, d2 = res.values(0).ravel(), res.values(-1).ravel()
    assert np.all(np.diff(d2) < -0.03) and np.all(np.diff(d1) > 0.03)   # paper, supplement III
    np.testing.assert_allclose(d2[0], two_domain_steady(20, 2)[0][1] / 2, atol=1e-10)


def test_trajectory_points_are_run_trajectories_bitwise(mixed):
    _, res = mixed
    for sizes in ([4, 2], [3, 2, 1]):
        p = res.index(sizes=sizes, solver="trajectories")
        ref = trajspin.run_trajectories(trajspin.Chain(sizes), res.times, 300, seed=5, chunk=64,
                                        progress=False)
        M = len(sizes)
        assert np.array_equal(res.jz[p, :, :M], ref.jz) and res.ntraj[p] == 300
        assert np.array_equal(res.jz_err[p, :, :M], ref.jz_err)
        assert np.all(np.isnan(res.jz[p, :, M:]))
    q = res.index(sizes=[4, 2], solver="master")
    ref = trajspin.solve_master(trajspin.Chain([4, 2]), res.times)
    assert np.array_equal(res.jz[q, :, :2], ref.jz) and np.all(res.jz_err[q, :, :2] == 0)


# ---------------------------------------------------------------- scheduling and the file
def test_points_go_out_largest_first_and_the_file_round_trips(tmp_path):
    doc = {"chain": {"sizes": [2, 2]}, "run": {"initial": ["excited", "ground"]},
           "sweep": {"solver": "steady", "N1": [2, 60, 10, 30]}}
    plan = prepare_sweep(parse_sweep(doc), tmp_path / "s.npz")
    assert plan.order == [1, 3, 2, 0]            # the cascade's predicted seconds grow with N1

    class OneWorker:                             # records what a worker would be sent
        size, workers, sent = 2, (1,), []

        def assign(self, rank, items):
            self.sent.append(list(items))

    tr = OneWorker()
    coord = SweepCoordinator(plan, tr, root_computes=True)
    coord._refill(1)
    assert tr.sent == [[1, 3]] and list(coord.todo) == [2, 0]
    plan.close()                             # leaves an empty points folder: reused below
    res = trajspin.sweep(doc, tmp_path / "s.npz", progress=False)
    back = trajspin.load(tmp_path / "s.npz")
    assert isinstance(back, SweepResult) and back.axes == {"N1": [2, 60, 10, 30]}
    same_arrays(back, res)
    assert not (tmp_path / "s.points").exists() and not (tmp_path / "s.points.lock").exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp")] == []


def test_table_is_a_structured_array_with_labelled_columns(mixed):
    _, res = mixed
    table = res.to_table()
    assert table.dtype.names[:4] == ("point", "sizes", "solver", "ntraj")
    assert table.shape == (8,) and table["sizes"][0] == "4,2" and table["N3"][0] == 0
    p = res.index(sizes=[3, 2, 1], solver="steady")
    ref = trajspin.steady_state(trajspin.Chain([3, 2, 1]))
    np.testing.assert_array_equal([table[f"jz{i}"][p] for i in (1, 2, 3)], ref.jz_over_n)
    assert table["time"][p] == np.inf and table["err1"][p] == 0
    series = res.to_table(series=True)
    assert series.shape == (2 + 6 * 8,)      # steady: 1 row each; the others: one per time
    assert np.isnan(table["jz3"][res.index(sizes=[4, 2], solver="master")])


def test_plots_run_headless_and_return_axes(mixed):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    _, res = mixed
    ax = res.plot()                                    # x: sizes (categorical), line per solver
    assert isinstance(ax, matplotlib.axes.Axes) and len(ax.get_legend().get_texts()) == 4
    ax = res.plot(x="solver", domain=0)
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["steady", "master"]
    ax = res.plot_times(xscale="log")
    assert isinstance(ax, matplotlib.axes.Axes) and len(ax.lines) == 6
    with pytest.raises(InputError, match="no time series"):
        res.plot_times(points=[res.index(sizes=[4, 2], solver="steady")])
    with pytest.raises(InputError, match="one of the sweep's axes"):
        res.plot(x="gamma")
    plt.close("all")


# ---------------------------------------------------------------- bad input: one line, no work
@pytest.mark.parametrize("sweep, extra, words", [
    ({"solver": "steady", "n_termal": [0.1]}, {}, "unknown key 'sweep.n_termal'; did you mean "
                                                  "'sweep.n_thermal'"),
    ({"solver": "steady", "N1": []}, {}, "sweep.N1 is an empty list"),
    ({"solver": "steady", "N1": [4, -3]}, {}, r"sweep.N1\[1\] must be positive, got -3"),
    ({"solver": "steady", "sizes": [[4, 2], [2, -1]]}, {},
     r"sweep point 2 of 2 \(sizes=\[2, -1\]\): chain.sizes\[1\] must be positive, got -1"),
    ({"solver": "steady"}, {}, "sweep has no axes"),
    ({"N1": [4]}, {}, "missing key sweep.solver"),
    ({"solver": "mean field", "N1": [4]}, {}, "did you mean 'mean_field'"),
    ({"solver": "steady", "N1": [4, 5], "seed": [1], "mode": "list"}, {}, "equal length"),
    ({"solver": "steady", "N3": [4]}, {}, "sweep.N3 needs chain.sizes with at least 3 domains"),
    ({"solver": "master", "N1": [4]}, {}, r"missing table \[times\]"),
    ({"solver": "trajectories", "N1": [4]}, {"times": {"values": [0.0, 1.0]}},
     r"missing table \[run\]"),
    ({"solver": "steady", "N1": [4]}, {"checkpoint": {"interval_seconds": 5}},
     "checkpoints per point"),
    ({"solver": "steady", "N1": list(range(1, 400)), "N2": list(range(1, 400))}, {},
     "more than 100000"),
    ({"solver": "steady", "temperature": [0.0, 1.6]}, {}, "omega0"),
])
def test_bad_sweep_configs_are_one_line_errors(sweep, extra, words):
    with pytest.raises(InputError, match=words) as info:
        parse_sweep({"chain": {"sizes": [4, 2]}, "sweep": sweep, **extra})
    assert "\n" not in str(info.value)


def test_a_point_too_big_is_refused_before_work_with_the_numbers(tmp_path, capsys):
    (tmp_path / "big.toml").write_text('[chain]\nsizes = [4, 2, 2]\n[times]\nvalues = [0.0, 1.0]\n'
                                       '[sweep]\nsolver = "master"\n'
                                       'sizes = [[4, 2, 2], [200, 200, 200]]\n')
    out = tmp_path / "big.npz"
    assert cli_main(["sweep", str(tmp_path / "big.toml"), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "sweep point 2 of 2 (sizes=[200, 200, 200], solver=master) is too big" in err
    assert "GiB" in err and "does not fit" in err
    assert os.listdir(tmp_path) == ["big.toml"]          # no result, no folder, no temporaries
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "big.toml"), "--out",
                           str(out)], env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("error: sweep point 2 of 2") and "GiB" in proc.stderr
    assert os.listdir(tmp_path) == ["big.toml"]
    spec = parse_sweep({"chain": {"sizes": [4, 2]}, "sweep": {"solver": "steady", "N1": [4, 5]}})
    costs = [PointCost(1.0, 6 * 2**30, "six GiB")] * 2
    check_fit(spec, costs, ranks_per_node=1, available=10 * 2**30)
    with pytest.raises(InputError, match="the 2 largest sweep points need 12 GiB together"):
        check_fit(spec, costs, ranks_per_node=2, available=10 * 2**30)


def test_output_and_points_folder_are_checked(tmp_path, capsys):
    doc = {"chain": {"sizes": [2, 1]}, "sweep": {"solver": "steady", "N1": [2, 3]}}
    other = copy.deepcopy(doc)
    other["sweep"]["N1"] = [2, 4]
    out = tmp_path / "s.npz"
    trajspin.sweep(doc, out, progress=False)
    with pytest.raises(InputError, match="not written by this sweep; pass --force"):
        trajspin.sweep(other, out, progress=False)
    (tmp_path / "s.points").mkdir()
    (tmp_path / "s.points" / "point-000000.npz").write_bytes(b"not a point")
    with pytest.raises(InputError, match="pass --resume"):
        trajspin.sweep(doc, out, progress=False)
    (tmp_path / "s.points" / "manifest.json").write_text('{"format": "trajspin-sweep-points", '
                                                          '"sweep_hash": "x"}')
    with pytest.raises(InputError, match="belongs to a different sweep config"):
        trajspin.sweep(doc, out, resume=True, progress=False)
    assert not (tmp_path / "s.points.lock").exists()
    assert sorted(specs.name for specs in CONFIGS.glob("sweep_*.toml")) == [
        "sweep_eq5.toml", "sweep_fig4.toml", "sweep_figS1.toml"]
    sizes = {n: load_sweep(CONFIGS / f"sweep_{n}.toml").size for n in ("eq5", "fig4", "figS1")}
    assert sizes == {"eq5": 40, "fig4": 12, "figS1": 15}


def test_a_failing_point_is_marked_and_retried_on_resume(tmp_path, monkeypatch, capsys):
    (tmp_path / "s.toml").write_text('[chain]\nsizes = [2, 1]\n[sweep]\nsolver = "steady"\n'
                                     'N1 = [2, 3, 4]\n')
    out, calls, failing = tmp_path / "s.npz", [], {1}
    real = sweep_module.solve_point

    def flaky(point, tick=None):
        calls.append(point.index)
        if point.index in failing:
            raise trajspin.NumericalError("lost the trace")
        return real(point, tick)

    monkeypatch.setattr(sweep_module, "solve_point", flaky)
    with pytest.warns(RuntimeWarning, match="1 of 3 sweep points failed: point 1: Numerical"):
        assert cli_main(["sweep", str(tmp_path / "s.toml"), "--out", str(out), "--quiet"]) == 1
    assert "1 point(s) failed" in capsys.readouterr().err
    res = trajspin.load(out)
    assert res.failed.tolist() == [False, True, False] and not res.meta["complete"]
    assert np.isnan(res.values(-1)[1]) and res.values(-1)[2] == pytest.approx(7 / 50, abs=1e-14)
    assert sorted(p.name for p in (tmp_path / "s.points").glob("point-*")) == [
        "point-000000.npz", "point-000002.npz"]
    calls.clear()
    failing.clear()
    res = trajspin.sweep(tmp_path / "s.toml", out, resume=True, progress=False)
    assert calls == [1] and res.meta["computed_points"] == 1 and res.meta["complete"]
    assert not res.failed.any() and not (tmp_path / "s.points").exists()


# ---------------------------------------------------------------- MPI: ranks and kills
@needs_mpi
def test_one_and_two_ranks_give_the_arrays_of_the_serial_sweep(mixed, tmp_path):
    config, want = mixed
    for P in (1, 2):
        out = tmp_path / f"r{P}.npz"
        proc = subprocess.run(mpi_command(P, config, out), env=ENV, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        got = trajspin.load(out)
        same_arrays(got, want)
        assert got.meta["mpi_ranks"] == P and got.meta["computed_points"] == 8
        assert {p["rank"] for p in got.meta["points"]} <= set(range(P))


@needs_mpi
def _wait_lock_free(lock, timeout=30.0):
    """Wait until no process holds ``lock`` (flock): mpiexec dies at once under SIGKILL, its
    ranks only when their process manager notices, and until then they hold the lock."""
    import fcntl
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if not os.path.exists(lock):
            return
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fh, fcntl.LOCK_UN)
                return
            except OSError:
                pass
        time.sleep(0.02)
    pytest.fail(f"{lock} still held {timeout} s after SIGKILL")


def test_sigkill_then_resume_redoes_no_finished_point(tmp_path, capsys):
    config = tmp_path / "slow.toml"
    config.write_text(SLOW)
    out, folder = tmp_path / "slow.npz", tmp_path / "slow.points"
    proc = subprocess.Popen(mpi_command(2, config, out), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    t_end = time.monotonic() + 90
    while len(list(folder.glob("point-*.npz"))) < 2:
        if proc.poll() is not None or time.monotonic() > t_end:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the sweep ended before it could be killed: {proc.stderr.read()}")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_lock_free(str(folder) + ".lock")
    kept = {int(p.stem[6:]): trajspin.load(p).meta["sweep_point"]["wall_time"]
            for p in folder.glob("point-*.npz")}
    assert 2 <= len(kept) < 8 and not out.exists()
    # without --resume the folder is refused; with it, only the missing points run
    assert cli_main(["sweep", str(config), "--out", str(out), "--quiet"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    proc = subprocess.run(mpi_command(2, config, out, "--resume"), env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = trajspin.load(out)
    assert got.meta["resumed_points"] == len(kept)
    assert got.meta["computed_points"] == 8 - len(kept)
    assert {i: got.meta["points"][i]["wall_time"] for i in kept} == kept
    same_arrays(got, trajspin.sweep(config, progress=False))
    assert not folder.exists() and sorted(os.listdir(tmp_path)) == ["slow.npz", "slow.toml"]
