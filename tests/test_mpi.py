"""Batch ensembles: fixed-chunk folding, checkpoints, and real MPI runs.

The MPI tests start ``mpiexec`` of the pip-installed MPICH (next to ``sys.executable``) on
``mpi_scripts/run_ensemble.py``: P = 1, 2, 3 and a plain process give arrays bitwise equal
to ``run_trajectories``; a run killed with SIGKILL (the whole job, then one rank) and resumed
gives the same arrays; foreign and corrupt checkpoints and bad configs are refused in one line.
"""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import trajspin
from trajspin import InputError
from trajspin.runners.config import load_config, parse_config
from trajspin.runners.batch import EnsembleTask, SerialTransport, prepare_run, run_root
from trajspin.runners.checkpoints import read_checkpoint, write_checkpoint
from trajspin.runners.chunks import ChunkPlan, OrderedSums
from trajspin.trajectories import PartialSums
from trajspin.trajectories.ensemble import run_trajectories
from mpi_support import ENV, MPIEXEC, ROOT, needs_mpi

SCRIPT = ROOT / "mpi_scripts" / "run_ensemble.py"



def write_config(path, sizes, ntraj, seed=7, chunk=64, times="start = 1e-3\nstop = 1e2\npoints = 30",
                 interval=60.0, extra_run=""):
    path.write_text(f"""description = "test"
[chain]
sizes = {list(sizes)}
[times]
{times}
[run]
ntraj = {ntraj}
seed = {seed}
chunk = {chunk}
{extra_run}
[checkpoint]
interval_seconds = {interval}
""")
    return path


def command(P, config, out, *args):
    base = [sys.executable, str(SCRIPT), str(config), "--out", str(out), "--quiet", *args]
    if P is None:                                   # a plain process, no mpiexec
        return base
    if not MPIEXEC.exists():
        pytest.fail(f"mpi4py is installed but {MPIEXEC} is missing: pip install mpich")
    return [str(MPIEXEC), "-n", str(P)] + base


def run(P, config, out, *args, timeout=120):
    return subprocess.run(command(P, config, out, *args), env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def reference(config):
    cfg = load_config(config)
    return run_trajectories(cfg.chain(), cfg.times, cfg.ntraj, cfg.seed, cfg.initial,
                            progress=False, target_err=cfg.target_err, chunk=cfg.chunk,
                            max_ntraj=cfg.max_ntraj)


def assert_same(a, b):
    assert a.ntraj == b.ntraj and a.seed == b.seed
    assert np.array_equal(a.times, b.times)
    assert np.array_equal(a.jz_sum, b.jz_sum)
    assert np.array_equal(a.jz_sumsq, b.jz_sumsq)
    assert np.array_equal(a.final_excitation_counts, b.final_excitation_counts)
    assert (a.ndark, a.njumps_sum) == (b.ndark, b.njumps_sum)


# ---------------------------------------------------------------------------- no MPI

def serial_boundaries(ntraj, chunk, max_ntraj):
    """The chunk ends of run_trajectories' loop, transcribed."""
    done, ends = 0, []
    while True:
        goal = ntraj if done < ntraj else max_ntraj
        if done >= goal:
            return ends
        done = min(done + chunk - done % chunk, goal)
        ends.append(done)


@pytest.mark.parametrize("ntraj, chunk, max_ntraj", [
    (1, 1, 1), (100, 256, 100), (256, 256, 256), (1000, 256, 1000), (300, 256, 1000),
    (512, 256, 1000), (300, 256, 512), (7, 3, 700), (10, 1, 13)])
def test_chunk_plan_matches_serial_loop(ntraj, chunk, max_ntraj):
    plan = ChunkPlan(ntraj, chunk, max_ntraj)
    ends = serial_boundaries(ntraj, chunk, max_ntraj)
    assert plan.nchunks == len(ends)
    assert [plan.bounds(c)[1] for c in range(plan.nchunks)] == ends
    assert [plan.bounds(c)[0] for c in range(plan.nchunks)] == [0] + ends[:-1]
    checks = [e for e in ends if e >= ntraj and e % chunk == 0]
    assert [plan.bounds(c)[1] for c in range(plan.nchunks) if plan.is_check_point(c)] == checks


def test_fold_order_does_not_matter():
    rng = np.random.default_rng(0)
    parts = [PartialSums(rng.normal(size=(5, 2)) * 10.0 ** rng.integers(-8, 8), np.zeros((5, 2)),
                         np.zeros(3, dtype=np.int64), int(rng.integers(9)))
             for _ in range(40)]
    zero = PartialSums.zero(5, 2, 2)
    ordered = OrderedSums(zero, 40)
    for c, p in enumerate(parts):
        ordered.add(c, p)
    order = list(range(40))
    random.Random(1).shuffle(order)
    shuffled = OrderedSums(zero, 40)
    for c in order:
        shuffled.add(c, parts[c])
    assert ordered.complete and shuffled.complete
    assert np.array_equal(ordered.total.jz_sum, shuffled.total.jz_sum)
    assert ordered.total.ndark == shuffled.total.ndark
    with pytest.raises(RuntimeError, match="twice"):
        OrderedSums(zero, 40, total=None, nfolded=3).add(1, parts[1])


def small_config(**run):
    doc = {"chain": {"sizes": [6, 3, 1]}, "times": {"start": 1e-3, "stop": 1e2, "points": 20},
           "run": {"ntraj": 1000, "seed": 11, "chunk": 64, **run}}
    return parse_config(doc)


@pytest.mark.parametrize("run", [{}, {"ntraj": 300, "target_err": 1e-2, "max_ntraj": 5000}])
def test_serial_runner_equals_run_trajectories(tmp_path, run):
    cfg = small_config(**run)
    plan = prepare_run(cfg, tmp_path / "r.npz")
    task = EnsembleTask(cfg.chain(), cfg.times, cfg.seed, cfg.initial)
    got = run_root(plan, task, SerialTransport(), progress=False, out=open(os.devnull, "w"))
    want = run_trajectories(cfg.chain(), cfg.times, cfg.ntraj, cfg.seed, progress=False,
                            target_err=cfg.target_err, chunk=cfg.chunk, max_ntraj=cfg.max_ntraj)
    assert_same(got, want)
    assert_same(trajspin.load(tmp_path / "r.npz"), want)
    if run:
        assert cfg.ntraj < got.ntraj < cfg.max_ntraj and got.meta["target_reached"]
    assert sorted(os.listdir(tmp_path)) == ["r.npz"]          # checkpoint and lock removed


ENGINE_CONFIGS = {
    "paper": {"chain": {"sizes": [6, 3, 1]}, "run": {}},
    "krylov": {"chain": {"sizes": [12, 6, 2]}, "run": {"method": "krylov"}},
    "general": {"chain": {"sizes": [4, 2, 1], "n_thermal": [0.3, 0.1]}, "run": {}},
}


@pytest.mark.parametrize("engine", list(ENGINE_CONFIGS))
def test_runner_labels_the_engine_that_ran(tmp_path, engine):
    """The runner's result carries the sampler of the engine it ran (it once wrote the dense
    engine's label over every run), the same metadata as run_trajectories."""
    doc = ENGINE_CONFIGS[engine]
    cfg = parse_config({"chain": doc["chain"],
                        "times": {"start": 1e-2, "stop": 10.0, "points": 8},
                        "run": {"ntraj": 40, "seed": 3, "chunk": 16, **doc["run"]}})
    plan = prepare_run(cfg, tmp_path / "r.npz")
    task = EnsembleTask(cfg.chain(), cfg.times, cfg.seed, cfg.initial_request(), method=cfg.method)
    got = run_root(plan, task, SerialTransport(), progress=False, out=open(os.devnull, "w"))
    want = run_trajectories(cfg.chain(), cfg.times, cfg.ntraj, cfg.seed, cfg.initial_request(),
                            progress=False, chunk=cfg.chunk, method=cfg.method)
    assert got.meta["engine"] == want.meta["engine"] == engine
    assert got.meta["sampler"] == want.meta["sampler"]
    assert trajspin.load(tmp_path / "r.npz").meta["sampler"] == want.meta["sampler"]
    np.testing.assert_array_equal(got.jz, want.jz)


def test_runner_checks_the_memory_of_the_engine_it_will_run(tmp_path, monkeypatch):
    """A warm chain runs the general engine, whose tables cover every sector 0..sum N_i; the
    root once checked the paper engine's (sectors 0..K0) and let it through."""
    from trajspin.initial import resolve_initial
    from trajspin.resources import choose_engine, trajectory_memory_estimate
    cfg = parse_config({"chain": {"sizes": [8, 30, 20], "n_thermal": [0.1, 0.1]},
                        "times": {"start": 1e-2, "stop": 10.0, "points": 8},
                        "run": {"ntraj": 40, "seed": 3}})
    chain = cfg.chain()
    engine, general = choose_engine(chain, resolve_initial(chain, None))
    paper = trajectory_memory_estimate(chain, 8)
    assert engine == "general" and general > 2 * paper
    monkeypatch.setattr(trajspin.validation, "available_memory",
                        lambda: int((general + paper) / 2 / 0.8))
    with pytest.raises(InputError, match="general engine's tables"):
        prepare_run(cfg, tmp_path / "r.npz")
    assert not (tmp_path / "r.npz").exists()


def test_runner_counts_the_observable_rows_of_every_rank(tmp_path, monkeypatch):
    """n_dist of (10^6, 10) holds 2 (10^6 + 1) numbers per output time: two ranks of a node
    each hold their rows and sums, which the node check must count (each rank's own check
    passes)."""
    from trajspin.trajectories.tables import observable_rows_bytes
    cfg = parse_config({"chain": {"sizes": [10**6, 10]},
                        "times": {"start": 1e-2, "stop": 10.0, "points": 20},
                        "run": {"ntraj": 4, "seed": 3, "observables": ["n_dist"]}})
    rows = observable_rows_bytes(cfg.chain(), cfg.observables, 20)
    assert rows == 32 * 20 * (2 + 2 * (10**6 + 1))
    monkeypatch.setattr(trajspin.validation, "available_memory", lambda: int(1.5 * rows / 0.8))
    with pytest.raises(InputError, match="on 2 rank"):
        prepare_run(cfg, tmp_path / "r.npz", ranks_per_node=2)
    assert not (tmp_path / "r.npz").exists()


def test_checkpoint_round_trip_and_refusals(tmp_path):
    cfg = small_config()
    task = EnsembleTask(cfg.chain(), cfg.times, cfg.seed, cfg.initial)
    chunks = ChunkPlan(cfg.ntraj, cfg.chunk)
    sums = OrderedSums(task.zero(), chunks.nchunks)
    for c in (0, 1, 2, 5, 7):                       # prefix 0..2, pending 5 and 7
        sums.add(c, task.compute(*chunks.bounds(c)))
    path = tmp_path / "c.ckpt.npz"
    write_checkpoint(path, cfg.physics(), sums, {"segments": 1})
    back, info = read_checkpoint(path, cfg.physics(), task.zero())
    assert info == {"segments": 1} and back.nfolded == 3 and sorted(back.pending) == [5, 7]
    for a, b in zip(back.total.components(), sums.total.components()):
        assert np.array_equal(a, b)
    for c in (3, 4, 6) + tuple(range(8, chunks.nchunks)):    # finish both in different orders
        part = task.compute(*chunks.bounds(c))
        sums.add(c, part)
        back.add(c, part)
    assert back.complete and all(np.array_equal(a, b) for a, b in
                                 zip(back.total.components(), sums.total.components()))

    other = small_config(seed=12)
    with pytest.raises(InputError, match="different config: run.seed is 11 there but 12 here") as err:
        read_checkpoint(path, other.physics(), task.zero())
    assert "\n" not in str(err.value)

    data = path.read_bytes()
    for name, damaged in [("truncated", data[: len(data) // 2]), ("garbage", b"not a zip at all"),
                          ("flipped", data[:300] + bytes([data[300] ^ 1]) + data[301:]),
                          ("empty", b"")]:
        bad = tmp_path / f"{name}.npz"
        bad.write_bytes(damaged)
        with pytest.raises(InputError, match="corrupt|not a trajspin") as err:
            read_checkpoint(bad, cfg.physics(), task.zero())
        assert "\n" not in str(err.value), name


def test_existing_checkpoint_needs_resume(tmp_path):
    cfg = small_config()
    (tmp_path / "r.ckpt.npz").write_bytes(b"x")
    with pytest.raises(InputError, match="pass --resume"):
        prepare_run(cfg, tmp_path / "r.npz")
    with pytest.raises(InputError, match="corrupt"):
        prepare_run(cfg, tmp_path / "r.npz", resume=True)
    assert sorted(os.listdir(tmp_path)) == ["r.ckpt.npz"]


def test_checkpoint_with_records_round_trip(tmp_path):
    cfg = parse_config({"chain": {"sizes": [6, 3, 1]},
                        "times": {"start": 1e-3, "stop": 1e2, "points": 20},
                        "run": {"ntraj": 500, "seed": 11, "chunk": 64},
                        "output": {"records": "full"}})
    task = EnsembleTask(cfg.chain(), cfg.times, cfg.seed, cfg.initial, records=cfg.records)
    chunks = ChunkPlan(cfg.ntraj, cfg.chunk)
    sums = OrderedSums(task.zero(), chunks.nchunks)
    for c in (0, 1, 4, 6):                          # prefix 0..1, pending 4 and 6
        sums.add(c, task.compute(*chunks.bounds(c)))
    path = tmp_path / "c.ckpt.npz"
    write_checkpoint(path, cfg.physics(), sums)
    back, _ = read_checkpoint(path, cfg.physics(), task.zero())
    assert back.total.records == sums.total.records and sorted(back.pending) == [4, 6]
    for c in (2, 3, 5, 7):
        back.add(c, task.compute(*chunks.bounds(c)))
    want = run_trajectories(cfg.chain(), cfg.times, cfg.ntraj, cfg.seed, progress=False,
                            chunk=cfg.chunk, records="full")
    assert back.complete and back.total.records == want.records
    assert np.array_equal(back.total.jz_sum, want.jz_sum)


# ---------------------------------------------------------------------------- real MPI

@needs_mpi
def test_records_survive_mpi_runs_identically(tmp_path):
    from trajspin.demon import load_records
    config = write_config(tmp_path / "c.toml", (6, 3, 1), ntraj=700)
    config.write_text(config.read_text() + '[output]\nrecords = "full"\n')
    cfg = load_config(config)
    want = run_trajectories(cfg.chain(), cfg.times, cfg.ntraj, cfg.seed, progress=False,
                            chunk=cfg.chunk, records="full")
    for P in (1, 2):
        out = tmp_path / f"r{P}.npz"
        proc = run(P, config, out)
        assert proc.returncode == 0, proc.stderr
        got = load_records(out)
        assert_same(got, want)
        assert got.records == want.records and got.meta["records"] == "full"
        assert np.array_equal(got.records.index, np.arange(700))


@needs_mpi
def test_rank_count_does_not_change_the_arrays(tmp_path):
    config = write_config(tmp_path / "c.toml", (10, 5, 2), ntraj=4000)
    want = reference(config)
    for P in (None, 1, 2, 3):
        out = tmp_path / f"r{P}.npz"
        proc = run(P, config, out)
        assert proc.returncode == 0, proc.stderr
        got = trajspin.load(out)
        assert_same(got, want)
        assert got.meta["mpi_ranks"] == (P or 1)
        assert len(got.meta["busy_time_per_rank"]) == (P or 1)
        assert 0 < got.meta["parallel_efficiency"] <= 1.0 + 1e-9
        assert sum(got.meta["chunks_per_rank"]) == ChunkPlan(4000, 64).nchunks
    assert not list(tmp_path.glob("*.ckpt*"))


@needs_mpi
def test_target_error_run_on_two_ranks(tmp_path):
    config = write_config(tmp_path / "c.toml", (10, 5, 2), ntraj=500,
                          extra_run="target_err = 2e-3\nmax_ntraj = 20000")
    want = reference(config)
    assert 500 < want.ntraj < 20000
    proc = run(2, config, tmp_path / "r.npz")
    assert proc.returncode == 0, proc.stderr
    assert_same(trajspin.load(tmp_path / "r.npz"), want)


def _ckpt_done(path):
    """ntraj_done of the checkpoint at path, or None while there is none (or it is being replaced)."""
    try:
        import json
        with np.load(path) as f:
            return json.loads(str(f["header"]))["info"]["ntraj_done"]
    except Exception:
        return None


def _kill_when(proc, ckpt, more_than, victim="job", deadline=60):
    """SIGKILL the job (process group) or one rank once the checkpoint shows > more_than done."""
    t_end = time.monotonic() + deadline
    while time.monotonic() < t_end:
        done = _ckpt_done(ckpt)
        if done is not None and done > more_than:
            break
        if proc.poll() is not None:
            pytest.fail(f"run ended before it could be killed: {proc.stderr.read()}")
        time.sleep(0.005)
    else:
        pytest.fail("no checkpoint appeared")
    if victim == "job":
        os.killpg(proc.pid, signal.SIGKILL)
    else:                                          # one rank: a python descendant of mpiexec
        ranks = [p for p in _descendants(proc.pid)
                 if "run_ensemble.py" in _cmdline(p) and "mpiexec" not in _cmdline(p)]
        assert ranks, "no rank processes found"
        os.kill(max(ranks), signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    return done


def _descendants(pid):
    parent = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = Path(f"/proc/{p}/stat").read_text()
                parent[int(p)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [], [pid]
    while frontier:
        kids = [c for c, pp in parent.items() if pp in frontier]
        found += kids
        frontier = kids
    return found


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@needs_mpi
def test_kill_and_resume_gives_the_same_arrays(tmp_path):
    ntraj = 24000
    config = write_config(tmp_path / "c.toml", (8, 6, 5, 1), ntraj=ntraj, interval=0.05)
    out, ckpt = tmp_path / "r.npz", tmp_path / "r.ckpt.npz"

    # 1. kill the whole job (mpiexec and its ranks) after the first checkpoint
    proc = subprocess.Popen(command(2, config, out), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    first = _kill_when(proc, ckpt, 0)
    assert not out.exists() and 0 < first < ntraj

    # 2. resume on 3 ranks, SIGKILL a single rank after it checkpointed more work
    proc = subprocess.Popen(command(3, config, out, "--resume"), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    second = _kill_when(proc, ckpt, first, victim="rank")
    assert not out.exists() and first < second < ntraj

    # 3. resume on 2 ranks to the end
    proc = run(2, config, out, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "resuming from" in proc.stdout
    got = trajspin.load(out)
    assert got.meta["resumed_from_ntraj"] >= second and got.meta["segments"] >= 3
    assert_same(got, reference(config))
    assert not ckpt.exists() and not Path(str(ckpt) + ".lock").exists()

    # 4. resubmitting a finished job does nothing
    proc = run(1, config, out, "--resume")
    assert proc.returncode == 0 and "already complete" in proc.stdout


def _one_line_error(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@needs_mpi
def test_foreign_and_corrupt_checkpoints_are_refused(tmp_path):
    config = write_config(tmp_path / "c.toml", (6, 3, 1), ntraj=1000)
    cfg = load_config(config)
    ckpt = tmp_path / "r.ckpt.npz"
    other = parse_config({**cfg.raw, "run": {**cfg.raw["run"], "seed": 8}})
    task = EnsembleTask(other.chain(), other.times, other.seed, other.initial)
    sums = OrderedSums(task.zero(), ChunkPlan(other.ntraj, other.chunk).nchunks)
    sums.add(0, task.compute(0, 64))
    write_checkpoint(ckpt, other.physics(), sums)
    before = sorted(os.listdir(tmp_path))

    _one_line_error(run(2, config, tmp_path / "r.npz", "--resume"), "different config", "run.seed")
    _one_line_error(run(2, config, tmp_path / "r.npz"), "pass --resume")
    ckpt.write_bytes(ckpt.read_bytes()[:-40])
    _one_line_error(run(2, config, tmp_path / "r.npz", "--resume"), "corrupt")
    assert sorted(os.listdir(tmp_path)) == before            # nothing written, no lock left


@needs_mpi
def test_bad_configs_give_one_line_errors(tmp_path):
    good = write_config(tmp_path / "good.toml", (6, 3, 1), ntraj=100).read_text()
    cases = [("ntraj = 100", "ntraj = -100", "run.ntraj"),
             ("seed = 7", "seed = 7\nsed = 1", "run.sed"),
             ("ntraj = 100", 'ntraj = "many"', "run.ntraj"),
             ("sizes = [6, 3, 1]", "sizes = [6, 3.5, 1]", "chain.sizes[1]")]
    for k, (old, new, key) in enumerate(cases):
        bad = tmp_path / f"bad{k}.toml"
        bad.write_text(good.replace(old, new))
        before = sorted(os.listdir(tmp_path))
        P = 2 if k == 0 else None
        _one_line_error(run(P, bad, tmp_path / f"r{k}.npz"), key)
        assert sorted(os.listdir(tmp_path)) == before
    _one_line_error(run(None, tmp_path / "missing.toml", tmp_path / "r.npz"), "does not exist")
    _one_line_error(run(None, tmp_path / "good.toml", tmp_path / "no" / "r.npz"), "--out")


@needs_mpi
def test_warm_scheduled_chain_with_observables_is_rank_independent(tmp_path):
    """Issue 8 physics through the MPI config: the same arrays as run_trajectories, any P."""
    config = tmp_path / "hot.toml"
    config.write_text("""[chain]
sizes = [4, 2, 1]
n_thermal = [0.3, 0.1]
kappa = [0.0, 0.2, 0.0]
[chain.schedule]
switch_times = [1.0]
factors = [[1, 0], [1, 1]]
[times]
start = 1e-2
stop = 10
points = 12
[run]
ntraj = 600
seed = 5
chunk = 64
initial = ["up:3", "ground", 0]
observables = ["n_dist", "coherence", "reservoir_rates", "jz_var"]
""")
    cfg = load_config(config)
    want = run_trajectories(cfg.chain(), cfg.times, cfg.ntraj, cfg.seed, cfg.initial_request(),
                            progress=False, chunk=cfg.chunk, observables=cfg.observables)
    for P in (1, 2):
        out = tmp_path / f"r{P}.npz"
        proc = run(P, config, out)
        assert proc.returncode == 0, proc.stderr
        got = trajspin.load(out)
        assert got.chain == cfg.chain()
        for name in ("jz", "jz_err", "n_dist", "n_dist_err", "coherence", "reservoir_rates", "jz_var"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


@needs_mpi
def test_matrix_free_observables_through_the_mpi_config(tmp_path):
    """run.method = "krylov" with observables beyond jz: two ranks give run_trajectories'
    arrays bitwise, on the Lanczos engine."""
    names = ["jz_var", "coherence", "channel_rates"]
    config = write_config(tmp_path / "ko.toml", (12, 6, 2), ntraj=150,
                          extra_run=f'method = "krylov"\nobservables = {names}')
    cfg = load_config(config)
    want = run_trajectories(cfg.chain(), cfg.times, cfg.ntraj, cfg.seed, progress=False,
                            chunk=cfg.chunk, method="krylov", observables=cfg.observables)
    assert want.meta["engine"] == "krylov"
    out = tmp_path / "ko.npz"
    proc = run(2, config, out)
    assert proc.returncode == 0, proc.stderr
    got = trajspin.load(out)
    assert got.meta["engine"] == "krylov"
    for name in ("jz", "jz_err", "jz_var", "jz_var_err", "coherence", "coherence_err",
                 "channel_rates"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


@needs_mpi
def test_matrix_free_method_through_the_mpi_config(tmp_path):
    """run.method = "krylov": the Lanczos engine on two ranks gives run_trajectories' arrays."""
    config = write_config(tmp_path / "k.toml", (12, 6, 2), ntraj=200, extra_run='method = "krylov"')
    cfg = load_config(config)
    assert cfg.method == "krylov"
    want = run_trajectories(cfg.chain(), cfg.times, cfg.ntraj, cfg.seed, progress=False,
                            chunk=cfg.chunk, method="krylov")
    dense = run_trajectories(cfg.chain(), cfg.times, cfg.ntraj, cfg.seed, progress=False,
                             chunk=cfg.chunk, method="dense")
    assert want.meta["engine"] == "krylov" and dense.meta["engine"] == "paper"
    np.testing.assert_allclose(want.jz, dense.jz, atol=1e-8)     # same random numbers, tol 1e-12
    out = tmp_path / "k.npz"
    proc = run(2, config, out)
    assert proc.returncode == 0, proc.stderr
    got = trajspin.load(out)
    np.testing.assert_array_equal(got.jz, want.jz)
    np.testing.assert_array_equal(got.final_excitation_counts, want.final_excitation_counts)
