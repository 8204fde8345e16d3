"""Maxwell's demon views: records, counting statistics, conditional states, feedback.

Statistical checks run at fixed seeds against the exact solver: the jump rate per reservoir
(gamma_c <L_c^dag L_c>(t), solve_master(...).jump_rates), the steady-state sector weights
Tr rho_K(inf) and the normalised steady-state blocks rho_K(inf)/Tr rho_K(inf).
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import trajspin
from trajspin import Chain, InputError, demon
from trajspin.trajectories.feedback import Feedback, Rule, parse_rule

ZMAX = 5.0


@pytest.fixture(scope="module")
def passive():
    chain = Chain([6, 3, 1])
    t = np.concatenate([[0.0], np.logspace(-2, 2, 40)])
    return trajspin.run_trajectories(chain, t, 6000, seed=3, records="full", progress=False)


def test_records_do_not_change_the_averages_and_match_single_trajectories(passive):
    chain, t = passive.chain, passive.times
    plain = trajspin.run_trajectories(chain, t, 6000, seed=3, progress=False)
    assert np.array_equal(plain.jz_sum, passive.jz_sum)
    assert np.array_equal(plain.jz_sumsq, passive.jz_sumsq)
    assert np.array_equal(plain.final_excitation_counts, passive.final_excitation_counts)
    recs = passive.records
    assert len(recs) == 6000 and recs.full and recs.offsets[-1] == recs.jump_time.size
    for k in (0, 17, 4321):
        tr = trajspin.trajectory(chain, t, seed=3, index=k)
        j = recs.jumps(k)
        assert np.array_equal(j["jump_time"], tr.jump_times)
        assert np.array_equal(j["jump_reservoir"], tr.jump_channels)
        assert np.array_equal(j["jump_excitation"], tr.jump_excitation)
        np.testing.assert_allclose(j["jz_after"], tr.jz_after, atol=1e-12)
        np.testing.assert_allclose(recs.final_jz[k], tr.final_jz, atol=1e-12)
        assert recs.excitation_left[k] == tr.excitation_left
        # excitation before/after: K before, K - 1 after, sums of <n_i> match
        half = 0.5 * np.asarray(chain.sizes)
        np.testing.assert_allclose((tr.jz_before + half).sum(axis=1), tr.jump_excitation, atol=1e-9)
        np.testing.assert_allclose((tr.jz_after + half).sum(axis=1), tr.jump_excitation - 1,
                                   atol=1e-9)
    summ = trajspin.run_trajectories(chain, t, 600, seed=3, records="summaries", progress=False)
    assert not summ.records.full
    assert np.array_equal(summ.records.quanta, recs.quanta[:600])
    with pytest.raises(InputError, match="records"):
        trajspin.run_trajectories(chain, t, 10, records="everything", progress=False)


def test_energy_balance_per_trajectory(passive):
    q, s = demon.energy_balance(passive)
    assert np.all(q == 0)                        # excitation left + quanta = K0 at T = 0
    assert np.abs(s).max() < 1e-9
    recs = passive.records
    assert np.array_equal(recs.quanta.sum(axis=1), recs.njumps)
    # along each trajectory the excitation drops by one per jump
    assert np.all(np.diff(recs.jump_excitation)[np.diff(recs.jump_excitation) != -1] >= 0)


def test_total_quanta_follow_the_exact_sector_weights(passive):
    fcs = demon.counting_statistics(passive)
    K0 = 6
    p_exact = trajspin.steady_state(passive.chain).sector_populations[::-1]     # P(n) = p_{K0-n}
    counts = np.round(fcs.total * fcs.ntraj).astype(int)
    counts = np.pad(counts, (0, K0 + 1 - counts.size))
    keep = p_exact > 1e-12
    assert counts[~keep].sum() == 0
    chi2 = np.sum((counts[keep] - fcs.ntraj * p_exact[keep]) ** 2 / (fcs.ntraj * p_exact[keep]))
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3
    assert sum(fcs.joint.values()) == pytest.approx(1.0)
    assert np.allclose(fcs.joint_array.sum(), 1.0)
    assert fcs.mean.sum() == pytest.approx(fcs.cumulants_total[0])
    assert "Fano" in str(fcs)


def test_conditional_final_state_matches_exact_blocks(passive):
    exact = demon.exact_conditional_final_jz(passive.chain)
    cond = demon.conditional_final_jz(passive, by="total")
    assert set(cond) <= set(exact)
    for n, (count, mean, err) in cond.items():
        _, want = exact[n]
        tol = np.maximum(ZMAX * np.where(np.isfinite(err), err, 0), 1e-9)
        assert np.all(np.abs(mean - want) <= tol), (n, mean, want, err)
    per_res = demon.conditional_final_jz(passive, by="reservoir")
    assert sum(v[0] for v in per_res.values()) == 6000
    p, e = demon.probability_above(passive, -1, 0.0)
    p_exact = sum(w for n, (w, jz) in exact.items() if jz[-1] >= 0.0)
    assert abs(p - p_exact) < ZMAX * e


def test_photocurrent_converges_to_the_exact_rate(passive):
    res = trajspin.solve_master(passive.chain, passive.times)
    if not hasattr(res, "jump_rates") or not np.all(np.isfinite(res.jump_rates)):
        pytest.skip("solve_master does not return jump_rates in this trajspin")
    edges = np.geomspace(1e-2, 20, 16)
    centres, rate, err = demon.photocurrent(passive, edges)
    fine = np.concatenate([[0.0], np.geomspace(1e-3, 30, 400)])
    ref = demon.bin_average(fine, trajspin.solve_master(passive.chain, fine).jump_rates, edges)
    ok = err > 0
    z = np.abs(rate - ref)[ok] / err[ok]
    assert z.max() < ZMAX, z.max()
    # total quanta per reservoir: integral of the rate
    wide = np.concatenate([[0.0], np.geomspace(1e-3, 1e4, 30)])
    total = demon.photocurrent(passive, wide)[1] * np.diff(wide)[:, None]
    np.testing.assert_allclose(total.sum(axis=0), passive.records.quanta.mean(axis=0), rtol=1e-12)
    edges_fj, dens, never = demon.first_jump_distribution(passive)
    assert never == 0.0 and (dens * np.diff(edges_fj)).sum() == pytest.approx(1.0)
    w = demon.waiting_times(passive)
    assert w.size == passive.records.jump_time.size and np.all(w >= 0)
    assert demon.waiting_times(passive, 1).size == passive.records.quanta[:, 1].sum()


def test_feedback_that_never_fires_is_passive_bitwise(passive):
    chain, t = passive.chain, passive.times
    never = Feedback(["close R2 when D3 >= 0.5", "close R1 after 100 quanta", "open R1 at t >= 1e9"])
    fb = trajspin.run_trajectories(chain, t, 6000, seed=3, records="full", feedback=never,
                                   progress=False)
    assert np.array_equal(fb.jz_sum, passive.jz_sum) and np.array_equal(fb.jz_sumsq, passive.jz_sumsq)
    assert fb.records == passive.records
    a = trajspin.trajectory(chain, t, seed=3, index=5)
    b = trajspin.trajectory(chain, t, seed=3, index=5, feedback=never)
    assert np.array_equal(a.jz, b.jz) and np.array_equal(a.final_state, b.final_state)


def test_feedback_rules_act_on_the_record():
    chain = Chain([6, 3, 1])
    t = np.array([1e4])
    # closing reservoir 1 after 2 of its quanta: never more than 2 from it
    e = trajspin.run_trajectories(chain, t, 500, seed=1, records="full", progress=False,
                                  feedback="close R1 after 2 quanta of R1")
    assert e.records.quanta[:, 0].max() == 2
    assert np.all((e.records.final_open & 1) == 0)
    # all reservoirs closed from the start: nothing happens, the state stays
    shut = trajspin.run_trajectories(chain, t, 50, seed=1, records="full", progress=False,
                                     feedback=Feedback([], initially_open=[]))
    assert shut.records.njumps.sum() == 0
    np.testing.assert_allclose(shut.jz[-1], [3, -1.5, -0.5])
    # closing R2 freezes domain 3 on average: its mean final value equals its value at closure
    tr = trajspin.trajectory(Chain([12, 6, 2]), [1e4], seed=2, index=3,
                             feedback="close R2 when D3 >= 0.2")
    closed = np.nonzero((tr.reservoirs_open & 2) == 0)[0]
    if closed.size:
        assert np.all(tr.jump_channels[closed[0] + 1:] == 0)


def test_rule_text_round_trip_and_errors():
    for text in ["close R2 when D3 >= 0.3", "close R1 after 6 quanta of R1", "close R1 after 8 quanta",
                 "open R2 at t >= 5", "close R1 when D2 <= -0.4"]:
        assert str(parse_rule(text)) == text
    assert str(Rule.close_when_excited(1, 2, 0.3)) == "close R2 when D3 >= 0.3"
    with pytest.raises(InputError, match="cannot read rule"):
        parse_rule("shut R2 sometime")
    with pytest.raises(InputError, match="R3"):
        trajspin.trajectory(Chain([2, 1]), [1.0], feedback="close R3 after 1 quanta")
    with pytest.raises(InputError, match="D4"):
        trajspin.trajectory(Chain([2, 1, 1]), [1.0], feedback="close R1 when D4 >= 0.1")


def test_feedback_beats_passive_for_the_paper_chain():
    """'close R2 when D3 >= 0.3' keeps more excitation in domain 3 of (12, 6, 2) than passive."""
    chain = Chain([12, 6, 2])
    t = np.array([1e4])
    a = trajspin.run_trajectories(chain, t, 3000, seed=5, records="summaries", progress=False)
    b = trajspin.run_trajectories(chain, t, 3000, seed=6, records="summaries", progress=False,
                                  feedback="close R2 when D3 >= 0.3")
    xa, xb = a.records.final_jz[:, 2] / 2, b.records.final_jz[:, 2] / 2
    diff = xb.mean() - xa.mean()
    err = np.hypot(xa.std(ddof=1) / np.sqrt(xa.size), xb.std(ddof=1) / np.sqrt(xb.size))
    assert diff > 2.5 * err, (diff, err)
    assert "not given by any master equation" in str(b)


def test_records_file_round_trip_and_merge(tmp_path, passive):
    path = passive.save(tmp_path / "r.npz")
    back = demon.load_records(path)
    assert back.records == passive.records and np.array_equal(back.jz_sum, passive.jz_sum)
    plain = trajspin.load(path)                      # the averages load as an ensemble
    assert np.array_equal(plain.jz_sum, passive.jz_sum)
    from trajspin.trajectories import run_chunk
    chain, t = passive.chain, passive.times
    K0, pos = chain.sectors.index_of(chain.default_excitations())
    first = run_chunk(chain, t, 3, 0, 256, K0, pos, records="full")
    second = run_chunk(chain, t, 3, 256, 600, K0, pos, records="full")
    joined = first.records + second.records
    head = trajspin.run_trajectories(chain, t, 600, seed=3, records="full", progress=False)
    assert joined == head.records
    assert head.records.select(np.arange(600) < 256) == first.records


def test_cli_demon_writes_the_views(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "trajspin.cli", "demon", "--sizes", "4", "2", "1",
                           "--ntraj", "400", "--figures", str(tmp_path), "--quiet", "--show", "2",
                           "--points", "60", "--out", str(tmp_path / "d.npz")],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("demon_raster.png", "demon_final.png", "demon_photocurrent.png"):
        assert os.path.getsize(tmp_path / name) > 10_000
    assert "exact" in proc.stdout and "energy balance" in proc.stdout
    assert len(demon.load_records(tmp_path / "d.npz").records) == 400
    proc = subprocess.run([sys.executable, "-m", "trajspin.cli", "demon", "--sizes", "4", "2", "1",
                           "--ntraj", "200", "--figures", str(tmp_path), "--quiet", "--show", "2",
                           "--points", "40", "--prefix", "fb_", "--rule", "close R2 when D3 >= 0.2"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.exists(tmp_path / "fb_raster.png") and "feedback" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "trajspin.cli", "demon", "--sizes", "4", "2",
                           "--rule", "close R5 after 1 quanta"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error:")
