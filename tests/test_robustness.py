"""Nothing silent: rates refused before they overflow, results checked before they are returned,
and the numerical building blocks (random streams, waiting times, dark states) tested directly.

The rate tests use the exact scaling of the model: multiplying every rate by s is measuring
time in units of 1/s, so <J_i^z>(t; s gamma) = <J_i^z>(s t; gamma) at the edges of the
accepted range too.
"""
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq

import trajspin
from trajspin import (Chain, InputError, NumericalError, run_trajectories, solve_master,
                      steady_state)
from trajspin.kernels.linalg import newton_waiting_time
from trajspin.kernels.rng import rng_init, rng_uniform
from trajspin.model import RATE_MAX, RATE_MIN
from trajspin.validation import check_result

MASK = (1 << 64) - 1


# --------------------------------------------------------------------------- rates
@pytest.mark.parametrize("kwargs, words", [
    (dict(gamma=1e308), "gamma\\[0\\] = 1e\\+308"),
    (dict(gamma=1e-320), "gamma\\[0\\] = 9.99989e-321"),
    (dict(n_thermal=1e300), "n_thermal 1e\\+300"),
    (dict(kappa=[0.0, 1e200]), "kappa\\[1\\] = 1e\\+200"),
    (dict(gamma="abc"), "real numbers"),
    (dict(gamma=1j), "real numbers"),
    (dict(gamma=[1, True]), "real numbers"),
    (dict(gamma=[[1.0]]), "1-d"),
])
def test_rates_outside_float64_range_are_refused(kwargs, words):
    with pytest.raises(InputError, match=words):
        Chain([2, 1], **kwargs)


def test_boolean_sizes_are_refused():
    with pytest.raises(InputError, match="boolean"):
        Chain([True, True])


@pytest.mark.parametrize("scale", [RATE_MAX / 25 * 0.99, RATE_MIN * 1.01])
def test_the_edges_of_the_rate_range_give_the_rescaled_answer(scale):
    """(2, 1, 1): (sum N + 1)^2 = 25, so gamma = 0.99 RATE_MAX / 25 is the largest accepted."""
    t = np.array([0.0, 0.1, 0.5, 2.0, 10.0])
    ref = solve_master(Chain([2, 1]), t)
    got = solve_master(Chain([2, 1], gamma=scale), t / scale)
    np.testing.assert_allclose(got.jz, ref.jz, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(steady_state(Chain([2, 1, 1], gamma=scale)).jz,
                               steady_state(Chain([2, 1, 1])).jz, rtol=1e-12, atol=1e-14)
    ens = run_trajectories(Chain([2, 1], gamma=scale), t / scale, 200, seed=4, progress=False)
    same = run_trajectories(Chain([2, 1]), t, 200, seed=4, progress=False)
    np.testing.assert_allclose(ens.jz, same.jz, rtol=1e-9, atol=1e-12)
    assert np.all(np.isfinite(ens.jz_err))


# --------------------------------------------------------------------------- result checks
class _Fake:
    def __init__(self, jz, pops=None):
        self.chain = Chain([2, 1])
        self.jz = np.asarray(jz, dtype=float)
        if pops is not None:
            self.sector_populations = np.asarray(pops, dtype=float)


@pytest.mark.parametrize("fake, words", [
    (_Fake([[-1.0, np.nan]]), "non-finite"),
    (_Fake([[-1.0, np.inf]]), "non-finite"),
    (_Fake([[-1.0, -0.5], [-1.2, 0.0]]), "1.2 N_i/2"),
    (_Fake([-1.0, -0.5], [0.0, 0.0, 0.0, 0.0]), "trace 0"),
    (_Fake([-1.0, -0.5], [1.5, -0.5, 0.0, 0.0]), "probability"),
])
def test_non_physical_results_raise_instead_of_returning(fake, words):
    with pytest.raises(NumericalError, match=words):
        check_result(fake, "a solver")


def test_physical_results_pass_unchanged():
    res = steady_state(Chain([4, 2, 1]))
    assert check_result(res, "steady_state") is res


def test_stiff_rate_ratios_keep_slow_states_bright():
    """gamma = [1, 1e-8]: eigenvalues ~1e-8 next to ~10 must stay bright (DARK_RTOL = 1e-12
    relative).  Cut as dark, the t -> infinity state would not be the long-time limit of the
    master equation, and would jump between rate ratios 1e-6 and 1e-8."""
    chain = Chain([4, 2, 1], gamma=[1.0, 1e-8])
    inf = steady_state(chain).jz
    late = solve_master(chain, [1e12]).jz[-1]
    np.testing.assert_allclose(inf, late, atol=1e-6)
    np.testing.assert_allclose(inf, steady_state(Chain([4, 2, 1], gamma=[1.0, 1e-6])).jz,
                               atol=1e-5)


# --------------------------------------------------------------------------- random streams
def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _reference_stream(seed, index, n):
    """xoshiro256+ seeded by splitmix64 of (seed, index), in plain Python integers."""
    g = 0x9E3779B97F4A7C15
    x = _mix64((_mix64((seed + g) & MASK) + index) & MASK)
    s = []
    for _ in range(4):
        x = (x + g) & MASK
        s.append(_mix64(x))
    out = []
    for _ in range(n):
        result = (s[0] + s[3]) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = ((s[3] << 45) | (s[3] >> 19)) & MASK
        out.append(((result >> 12) + 0.5) / 2.0**52)
    return np.array(out)


@pytest.mark.parametrize("seed, index", [(0, 0), (7, 3), (2**63 - 1, 2**63 - 1), (1, 10**12)])
def test_rng_is_xoshiro256plus_keyed_by_seed_and_index(seed, index):
    state = rng_init(seed, index)
    got = np.array([rng_uniform(state) for _ in range(500)])
    np.testing.assert_array_equal(got, _reference_stream(seed, index, 500))


def test_rng_streams_are_uniform_open_and_independent():
    n = 100000
    a, b = rng_init(5, 0), rng_init(5, 1)
    x = np.array([rng_uniform(a) for _ in range(n)])
    y = np.array([rng_uniform(b) for _ in range(n)])
    assert 0.0 < x.min() and x.max() < 1.0
    assert abs(x.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)              # 5 standard errors
    assert abs(np.corrcoef(x, y)[0, 1]) < 5 / np.sqrt(n)
    counts = np.histogram(x, bins=20, range=(0, 1))[0]
    chi2 = np.sum((counts - n / 20) ** 2 / (n / 20))
    assert chi2 < 50.0                                                  # 19 dof: p ~ 1e-4
    # the largest and smallest possible outputs stay inside (0, 1)
    assert (0 + 0.5) / 2.0**52 > 0 and ((2**52 - 1) + 0.5) / 2.0**52 < 1


# --------------------------------------------------------------------------- waiting times
@pytest.mark.parametrize("lam", [
    np.array([1e-3, 1.0, 1e3, 1e6, 1e9, 1e12]),
    np.array([0.44, 0.45, 3e11, 2.5e11]),
    np.logspace(-2, 11, 40),
])
@pytest.mark.parametrize("log_r", [np.log(0.9), np.log(0.3), np.log(1e-3)])
def test_newton_waiting_time_matches_the_bracketed_root_on_stiff_spectra(lam, log_r):
    rng = np.random.default_rng(len(lam))
    w = rng.random(lam.size)
    w /= w.sum()

    def f(tau):
        return np.log(np.sum(w * np.exp(-lam * tau))) - log_r

    hi = 1.0
    while f(hi) > 0:
        hi *= 2
    root = brentq(f, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=1000)
    got = newton_waiting_time(w, lam, log_r, 200)
    assert got == pytest.approx(root, rel=1e-13)


# --------------------------------------------------------------------------- output files
def _cli(*args):
    from trajspin.cli import main
    return main(["master", "--sizes", "2", "1", "--tmax", "5", "--points", "3", "--quiet", *args])


def _temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


def test_cli_never_replaces_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    (tmp_path / "d").mkdir()
    (tmp_path / "target.npz").write_bytes(b"keep")
    os.symlink(tmp_path / "target.npz", tmp_path / "link.npz")
    for name in ("f", "d", "link.npz"):
        assert _cli("--out", str(tmp_path / name), "--force") == 2
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert (tmp_path / "target.npz").read_bytes() == b"keep"
    assert _temporaries(tmp_path) == []


def test_cli_replaces_an_existing_result_only_with_force(tmp_path, capsys):
    out = tmp_path / "r.npz"
    out.write_bytes(b"someone's file")
    assert _cli("--out", str(out)) == 2
    assert "pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"someone's file"
    assert _cli("--out", str(out), "--force") == 0
    assert trajspin.load(out).jz.shape == (4, 2)
    assert _temporaries(tmp_path) == []


def test_cli_unwritable_destination_fails_before_the_work(tmp_path):
    from trajspin.cli import main
    t0 = time.perf_counter()
    code = main(["trajectories", "--sizes", "300", "100", "--ntraj", "1000000", "--quiet",
                 "--out", str(tmp_path / "missing" / "r.npz")])
    assert code == 2 and time.perf_counter() - t0 < 10.0


def test_a_killed_save_leaves_no_stray_for_the_next_cli_run(tmp_path):
    """Temporaries of dead processes of this host go; a live writer's and other hosts' stay."""
    import socket
    import subprocess
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname().replace("-", "_")
    out = tmp_path / "r.npz"
    stray = tmp_path / f".tmp-r.npz-{host}-{dead.pid}-abc123.npz"
    live = tmp_path / f".tmp-r.npz-{host}-{os.getpid()}-def456.npz"
    other_host = tmp_path / f".tmp-r.npz-elsewhere-{dead.pid}-ghi789.npz"
    for p in (stray, live, other_host):
        p.write_bytes(b"half a save")
    assert _cli("--out", str(out)) == 0
    assert _temporaries(tmp_path) == sorted([live.name, other_host.name])


def test_save_refuses_an_existing_file_unless_asked(tmp_path):
    res = steady_state(Chain([4, 2, 1]))
    path = res.save(tmp_path / "s.npz")
    with pytest.raises(InputError, match="exists"):
        res.save(path)
    res.save(path, overwrite=True)
    np.testing.assert_array_equal(trajspin.load(path).jz, res.jz)


def _mpi_config(seed=3):
    from trajspin.runners.config import parse_config
    return parse_config({"chain": {"sizes": [6, 3, 1]},
                         "times": {"start": 1e-2, "stop": 10.0, "points": 8},
                         "run": {"ntraj": 40, "seed": seed, "chunk": 16}})


def test_runner_refuses_a_foreign_result_and_keeps_its_own_on_write_failure(tmp_path):
    from trajspin.outputs import ReservedOutput
    from trajspin.runners.batch import EnsembleTask, SerialTransport, prepare_run, run_root
    out = tmp_path / "r.npz"
    steady_state(Chain([4, 2, 1])).save(out)            # a result of something else
    cfg = _mpi_config()
    with pytest.raises(InputError, match="not written by this config"):
        prepare_run(cfg, out)
    with pytest.raises(InputError, match="not written by this config"):
        prepare_run(cfg, out, resume=True)
    assert out.read_bytes()[:2] == b"PK"                 # untouched
    plan = prepare_run(cfg, out, force=True)
    assert plan.engine == "paper" and plan.physics()["engine"] == "paper"
    task = EnsembleTask(cfg.chain(), cfg.times, cfg.seed, cfg.initial_request(), method=plan.method)

    def broken(**arrays):
        raise OSError(28, "No space left on device")
    assert isinstance(plan.reserved, ReservedOutput)
    plan.reserved.write_npz = broken                    # the destination's disk is full
    with pytest.raises(InputError, match=r"kept in .*\.ckpt\.npz\.result\.npz"):
        run_root(plan, task, SerialTransport(), progress=False, out=open(os.devnull, "w"))
    kept = trajspin.load(plan.checkpoint_path + ".result.npz")
    want = run_trajectories(cfg.chain(), cfg.times, cfg.ntraj, cfg.seed, progress=False,
                            chunk=cfg.chunk)
    np.testing.assert_array_equal(kept.jz, want.jz)
    assert trajspin.load(out).meta["solver"] == "sector cascade (direct)"   # untouched


# --------------------------------------------------------------------------- reading files
def _bad_files(tmp_path):
    good = steady_state(Chain([4, 2, 1])).save(tmp_path / "good.npz")
    data = open(good, "rb").read()
    files = {"truncated": data[: len(data) // 2], "garbage": b"\x00not a zip file" * 10}
    for name, content in files.items():
        (tmp_path / f"{name}.npz").write_bytes(content)
    np.save(tmp_path / "array.npy", np.zeros(3))
    import json
    import zipfile
    for name, header in (("nokind", {"chain": {"sizes": [2, 1]}}),
                         ("empty_chain", {"kind": "steady", "chain": {"sizes": [0, 0],
                                                                      "_allow_empty": True}}),
                         ("nojz", {"kind": "steady", "chain": {"sizes": [2, 1]}})):
        np.savez(tmp_path / f"{name}.npz", header=np.array(json.dumps(header)))
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("header.npy", b"\x00" * (200 * 2**20))           # 200 MB of zeros, ~200 kB
    return ["truncated", "garbage", "nokind", "empty_chain", "nojz", "bomb"], tmp_path


def test_load_turns_every_bad_file_into_one_line_naming_it(tmp_path):
    names, folder = _bad_files(tmp_path)
    assert (folder / "bomb.npz").stat().st_size < 2 * 2**20
    for name in names + ["array.npy", "missing.npz"]:
        path = folder / (name if "." in name else f"{name}.npz")
        with pytest.raises(InputError) as info:
            trajspin.load(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value), name


def test_load_refuses_a_checkpoint_with_a_hint(tmp_path):
    from trajspin.runners.batch import EnsembleTask
    from trajspin.runners.checkpoints import write_checkpoint
    from trajspin.runners.chunks import OrderedSums
    cfg = _mpi_config()
    task = EnsembleTask(cfg.chain(), cfg.times, cfg.seed, cfg.initial_request())
    sums = OrderedSums(task.zero(), 3)
    sums.add(0, task.compute(0, 16))
    path = str(tmp_path / "r.ckpt.npz")
    write_checkpoint(path, cfg.physics(), sums)
    with pytest.raises(InputError, match="checkpoint"):
        trajspin.load(path)


# --------------------------------------------------------------------------- progress in logs
def test_progress_in_a_log_is_a_line_every_interval():
    import io
    from trajspin.progress import LogBar
    now = [0.0]
    out = io.StringIO()
    bar = LogBar(1000, "trajectories", "traj", interval=30.0, stream=out, clock=lambda: now[0])
    for _ in range(100):                 # 100 s of work, 10 trajectories per second
        now[0] += 1.0
        bar.update(10)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in out.getvalue()          # at 30, 60, 90 s and the end
    assert lines[0] == "trajectories: 300/1000 (30.0%), 10 traj/s, elapsed 00:30, eta 01:10"
    assert lines[-1].startswith("trajectories: 1000/1000 (100.0%)")


def test_progress_outside_a_terminal_is_the_log_form(capsys):
    from trajspin.progress import LogBar, get_progress_bar
    with get_progress_bar(True, 5, "x") as bar:      # pytest captures stderr: not a terminal
        assert isinstance(bar, LogBar)
        bar.update(5)
    assert "x: 5/5 (100.0%)" in capsys.readouterr().err


# --------------------------------------------------------------------------- smaller holes
_C, _T = Chain([2, 1]), [0.0, 1.0]


@pytest.mark.parametrize("call, words", [
    (lambda: run_trajectories(_C, _T, 10, target_err="x", progress=False), "target_err"),
    (lambda: run_trajectories(_C, _T, 10, max_ntraj=-5, target_err=0.1, progress=False), "max_ntraj"),
    (lambda: run_trajectories(_C, _T, 10, max_ntraj=2.5, target_err=0.1, progress=False), "max_ntraj"),
    (lambda: run_trajectories(_C, _T, 10, max_ntraj=1, target_err=0.1, progress=False), "max_ntraj"),
    (lambda: trajspin.trajectory(_C, _T, feedback=5), "feedback must be"),
    (lambda: Chain([2, 1], schedule=trajspin.Schedule([1.0], [[1], ["a"]])), "schedule"),
    (lambda: Chain([2, 1], schedule=trajspin.Schedule([1.0], [[1], [1, 2]])), "schedule"),
    (lambda: trajspin.trajectory(_C, _T, feedback="close R1 when D1 >= 5"), "never be crossed"),
    (lambda: trajspin.trajectory(_C, _T, feedback="close R1 after -3 quanta of R1"), "integer >= 1"),
    (lambda: trajspin.trajectory(_C, _T, feedback=trajspin.trajectories.feedback.Rule(0, "open", "time",
                                                                          threshold=-1.0)), "> 0"),
    (lambda: trajspin.time_grid(10, 10**12), "1000000000000 output times"),
    (lambda: trajspin.trajectory(_C, _T, initial=np.array(list("abcdef"))), "numbers"),
])
def test_malformed_arguments_are_one_line_input_errors(call, words):
    with pytest.raises(InputError, match=words):
        call()


# --------------------------------------------------------------------------- the channel pick
@pytest.mark.parametrize("prob, u, want", [
    ([0.3, 0.7, 0.0], 1.0, 1),          # u rounded to the total, last reservoir closed
    ([0.3, 0.7, 0.0, 0.0], 1.0, 1),
    # u an ulp above the running sum: the caller's total, summed in another (vectorised)
    # order, can exceed it; the trailing closed reservoirs are skipped back
    ([0.3, 0.7, 0.0, 0.0], float(np.nextafter(1.0, 2.0)), 1),
    ([0.0, 0.5, 0.5], 1e-300, 1),       # a closed first reservoir is never taken
    ([0.3, 0.7], 0.3, 0),               # a tie goes to the lower channel
    ([0.3, 0.7], 0.3000000001, 1),
    ([1.0], 0.5, 0),
    ([0.2, 0.0, 0.8], 0.2, 0),
    ([0.2, 0.0, 0.8], 0.2000001, 2),
])
def test_pick_channel_never_takes_a_closed_reservoir(prob, u, want):
    from trajspin.kernels.linalg import pick_channel
    assert pick_channel(np.array(prob), u) == want


def test_demon_without_matplotlib_fails_before_simulating(tmp_path, monkeypatch, capsys):
    import sys
    from trajspin.cli import main
    monkeypatch.setitem(sys.modules, "matplotlib", None)        # import matplotlib -> ImportError
    t0 = time.perf_counter()
    code = main(["demon", "--sizes", "40", "20", "2", "--ntraj", "100000", "--figures",
                 str(tmp_path)])
    assert code == 2 and time.perf_counter() - t0 < 10.0
    assert "trajspin[plot]" in capsys.readouterr().err


def test_runner_redoes_its_own_result_without_force(tmp_path):
    """``python3 tasks.py main`` run twice: the second run replaces the first's result."""
    from trajspin.runners.batch import EnsembleTask, SerialTransport, prepare_run, run_root
    cfg = _mpi_config()
    out = tmp_path / "r.npz"
    for _ in range(2):
        plan = prepare_run(cfg, out)
        task = EnsembleTask(cfg.chain(), cfg.times, cfg.seed, cfg.initial_request())
        run_root(plan, task, SerialTransport(), progress=False, out=open(os.devnull, "w"))
        assert trajspin.load(out).ntraj == 40
    assert prepare_run(cfg, out, resume=True).done


def test_ctrl_c_stops_a_hot_run_within_seconds():
    """n_thermal = 1e6 on (2, 1): seconds per trajectory, once deaf to Ctrl-C for the whole
    run; the general engine's kernel calls now last ~0.2 s (or one trajectory).  SIGINT is
    sent to this process 2 s into a run of 50 such trajectories (~1 min).  The grain is one
    trajectory at least, so the grid stops at t = 2 (~1.5 s per trajectory on one idle core;
    to t = 5 one trajectory alone took 8 s on a loaded machine)."""
    import signal
    import threading
    hot = Chain([2, 1], n_thermal=1e6)
    t = [0.0, 1.0, 2.0]
    run_trajectories(hot, [0.0, 1e-3], 1, seed=1, progress=False)     # compiled before timing
    # Python's own handler: a runner that started us in the background (nohup, "cmd &")
    # may have left SIGINT ignored, which is not what this test is about
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_trajectories(hot, t, 50, seed=1, progress=False)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.perf_counter() - t0 < 2.0 + 6.0


def test_cli_reports_an_interrupt_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from trajspin.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(trajspin, "run_trajectories", interrupted)
    out = tmp_path / "r.npz"
    code = main(["trajectories", "--sizes", "2", "1", "--ntraj", "5", "--quiet", "--out", str(out)])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert not out.exists() and _temporaries(tmp_path) == []

# ---------------------------------------------------------------------------- rates decades apart

def test_rates_too_far_apart_for_the_dense_decomposition_are_refused():
    """gamma = (1e-6, 1e6, 1) on (8, 6, 5, 1): |8, 0, 0, 0> decays through R1 only, at ~1e-5,
    1e-12 of the fastest rate.  The dense decomposition used to call that state dark: every
    trajectory froze with 8 quanta and no jump, and the exact solvers kept them for ever.
    Every dense path now refuses, naming the rates."""
    chain = Chain((8, 6, 5, 1), gamma=[1e-6, 1e6, 1.0])
    calls = [lambda: trajspin.trajectory(chain, [0.0, 1.0], method="dense"),
             lambda: run_trajectories(chain, [0.0, 1.0], 4, method="dense",
                                      feedback="close R2 after 2 quanta", progress=False),
             lambda: solve_master(chain, [0.0, 1.0]),
             lambda: trajspin.steady_state(chain)]
    for call in calls:
        with pytest.raises(NumericalError, match="cannot tell it from a dark state.*span 1e"):
            call()


def test_rates_six_decades_apart_stay_exact():
    """gamma = (1e-3, 1e3, 1): the slow channel is resolved; the t -> infinity state of the
    cascade equals solve_master at gamma t = 1e5, and trajectories reach it within 5 standard
    errors (they keep jumping through R1: no frozen bright state)."""
    chain = Chain((8, 6, 5, 1), gamma=[1e-3, 1e3, 1.0])
    steady = trajspin.steady_state(chain).jz
    np.testing.assert_allclose(solve_master(chain, [1e5]).jz[-1], steady, atol=1e-9)
    ens = run_trajectories(chain, [1e5], 2000, seed=4, progress=False, method="dense")
    z = np.abs(ens.jz[-1] - steady) / np.maximum(ens.jz_err[-1], 1e-12)
    assert z.max() < 5.0
    assert ens.njumps_sum / 2000 > 7.0          # the 8 quanta leave (up to the dark states')
