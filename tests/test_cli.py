"""The command line: reservoir flags build the same chain as the API, results match the API."""
import numpy as np
import pytest

import trajspin
from trajspin.cli import main


def test_master_with_warm_reservoirs_and_named_initial_state_matches_the_api(tmp_path, capsys):
    out = tmp_path / "m.npz"
    rc = main(["master", "--sizes", "4", "2", "--temperature", "1.6", "--omega0", "6.2831853e10",
               "--kappa", "0", "0.3", "--initial", "up:3", "ground", "--observables", "jz_var",
               "coherence", "--points", "5", "--tmax", "10", "--quiet", "--out", str(out)])
    assert rc == 0
    got = trajspin.load(out)
    chain = trajspin.Chain([4, 2], temperature=1.6, omega0=6.2831853e10, kappa=[0, 0.3])
    assert got.chain == chain
    ref = trajspin.solve_master(chain, got.times, initial=["up:3", "ground"],
                                observables=["jz_var", "coherence"])
    np.testing.assert_allclose(got.jz, ref.jz, atol=1e-12)
    np.testing.assert_allclose(got.jz_var, ref.jz_var, atol=1e-12)
    np.testing.assert_allclose(got.coherence, ref.coherence, atol=1e-12)


def test_trajectories_with_a_schedule_match_the_api(tmp_path):
    out = tmp_path / "t.npz"
    rc = main(["trajectories", "--sizes", "3", "2", "1", "--switch-times", "0.5", "--factors", "1,0",
               "0,1", "--ntraj", "300", "--seed", "4", "--points", "4", "--tmax", "5", "--quiet",
               "--out", str(out)])
    assert rc == 0
    got = trajspin.load(out)
    chain = trajspin.Chain([3, 2, 1], schedule=trajspin.Schedule([0.5], [[1, 0], [0, 1]]))
    ref = trajspin.run_trajectories(chain, got.times, 300, seed=4, progress=False)
    np.testing.assert_array_equal(got.jz, ref.jz)


@pytest.mark.parametrize("argv, words", [
    (["master", "--sizes", "4", "2", "--temperature", "1.0"], "omega0"),
    (["master", "--sizes", "4", "2", "--switch-times", "1.0"], "both --switch-times and --factors"),
    (["master", "--sizes", "4", "2", "--switch-times", "1", "--factors", "1;0", "0"], "comma-separated"),
    (["master", "--sizes", "4", "2", "--initial", "up:9", "0"], "k spins up"),
    (["master", "--sizes", "4", "2", "--initial-vector", "missing.npy"], "cannot read"),
    (["trajectories", "--sizes", "4", "2", "--observables", "log_negativity"], "density matrix"),
])
def test_bad_flags_exit_2_with_one_line(argv, words, capsys, tmp_path):
    out = tmp_path / "never.npz"
    assert main(argv + ["--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and err.count("\n") == 0
    assert not out.exists()
