"""Results that draw themselves: every ``plot`` runs headless, returns its Axes (the demon views
their Figure) and draws the result's own numbers; without matplotlib one line names the extra;
the notebook view (``_repr_html_``) holds the table.
"""
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import trajspin
from trajspin import demon
from trajspin.errors import InputError
from trajspin.results import MeanFieldResult, plot_trajectory
from trajspin.results.plotting import need_pyplot
from trajspin.trajectories.lanczos import krylov_trajectory

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

CHAIN = trajspin.Chain([4, 2, 1])
TIMES = np.linspace(0.0, 4.0, 17)
LOG_TIMES = trajspin.time_grid(100, 40, 1e-3, "log", include_zero=True)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def master():
    return trajspin.solve_master(CHAIN, TIMES)


@pytest.fixture(scope="module")
def ensemble():
    return trajspin.run_trajectories(CHAIN, TIMES, 60, seed=2, progress=False)


@pytest.fixture(scope="module")
def recorded():
    return trajspin.run_trajectories(CHAIN, LOG_TIMES, 200, seed=1, records="full",
                                     progress=False)


def _band_edges(coll, times):
    """Lowest and highest y of a fill_between polygon at each of ``times``."""
    v = np.concatenate([p.vertices for p in coll.get_paths()])
    lo = np.array([v[v[:, 0] == t, 1].min() for t in times])
    hi = np.array([v[v[:, 0] == t, 1].max() for t in times])
    return lo, hi


def _check_lines(ax, times, values):
    lines = ax.lines[-values.shape[1]:]
    for i, line in enumerate(lines):
        np.testing.assert_array_equal(line.get_xdata(), times)
        np.testing.assert_allclose(line.get_ydata(), values[:, i])


def test_master_plot_draws_one_line_per_domain(master):
    ax = master.plot()
    assert isinstance(ax, Axes) and len(ax.lines) == CHAIN.M
    _check_lines(ax, master.times, master.jz_over_n)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["D1 (N=4)", "D2 (N=2)", "D3 (N=1)"]


def test_log_scale_leaves_out_t0(master):
    ax = master.plot(xscale="log", label="exact")
    assert ax.get_xscale() == "log"
    _check_lines(ax, master.times[1:], master.jz_over_n[1:])
    assert ax.lines[0].get_label() == "exact D1 (N=4)"


def test_ensemble_plot_draws_mean_and_error_band_into_given_axes(master, ensemble):
    ax = master.plot()
    same = ensemble.plot(ax=ax, band=2.0, ls="--")
    assert same is ax and len(ax.lines) == 2 * CHAIN.M and len(ax.collections) == CHAIN.M
    _check_lines(ax, ensemble.times, ensemble.jz_over_n)
    assert ax.lines[-1].get_linestyle() == "--"
    for i, coll in enumerate(ax.collections):
        lo, hi = _band_edges(coll, ensemble.times)
        mean, err = ensemble.jz_over_n[:, i], ensemble.jz_over_n_err[:, i]
        np.testing.assert_allclose(lo, mean - 2 * err)
        np.testing.assert_allclose(hi, mean + 2 * err)
    assert np.any(ensemble.jz_over_n_err > 0)


def test_no_band_when_asked_or_errors_are_infinite(ensemble):
    assert len(ensemble.plot(band=0).collections) == 0
    one = trajspin.run_trajectories(CHAIN, TIMES, 1, seed=2, progress=False)
    assert np.all(np.isinf(one.jz_err))
    ax = one.plot()
    assert len(ax.collections) == 0 and len(ax.lines) == CHAIN.M


def test_recorded_ensemble_plots_like_an_ensemble(recorded):
    ax = recorded.plot(xscale="log")
    assert len(ax.lines) == CHAIN.M and len(ax.collections) == CHAIN.M
    _check_lines(ax, recorded.times[1:], recorded.jz_over_n[1:])


def test_steady_state_bars_and_overlay_lines(master):
    steady = trajspin.steady_state(CHAIN)
    ax = steady.plot()
    assert isinstance(ax, Axes)
    np.testing.assert_allclose([p.get_height() for p in ax.patches], steady.jz_over_n)
    over = steady.plot(ax=master.plot(), lines=True)
    assert len(over.lines) == 2 * CHAIN.M
    np.testing.assert_allclose([ln.get_ydata()[0] for ln in over.lines[CHAIN.M:]],
                               steady.jz_over_n)


def test_mean_field_plot_and_breakdown_marker():
    mf = trajspin.solve_mean_field(trajspin.Chain([100, 10, 2]), TIMES)
    ax = mf.plot()
    assert len(ax.lines) == 3 and "mean field" in ax.get_title(loc="left")
    _check_lines(ax, mf.times, mf.jz_over_n)
    broken = MeanFieldResult(mf.chain, mf.times, mf.moments, mf.labels,
                             meta={"breakdown_time": 2.5, "closure": "test"})
    ax = broken.plot()
    assert len(ax.lines) == 4 and np.all(np.asarray(ax.lines[-1].get_xdata()) == 2.5)


def _raster_ticks(ax):
    """{x of each raster tick}: the vertical segments drawn above the traces."""
    segs = [s for c in ax.collections for s in c.get_segments()]
    return np.sort([s[0, 0] for s in segs])


@pytest.mark.parametrize("engine", ["dense", "krylov"])
def test_trajectory_plot_with_its_jump_raster(engine):
    if engine == "dense":
        tr = trajspin.trajectory(CHAIN, LOG_TIMES, seed=1, index=3)
    else:
        tr = krylov_trajectory(CHAIN, LOG_TIMES, seed=1, index=3)
    assert tr.jump_times.size > 0
    ax = plot_trajectory(tr, xscale="log")
    assert isinstance(ax, Axes) and len(ax.lines) == CHAIN.M
    _check_lines(ax, tr.times[1:], tr.jz_over_n[1:])
    np.testing.assert_allclose(_raster_ticks(ax), np.sort(tr.jump_times))
    assert f"trajectory {tr.index}" in ax.get_title(loc="left")
    assert len(plot_trajectory(tr, raster=False).collections) == 0
    ax = tr.plot(xscale="log")                       # the method draws the same
    _check_lines(ax, tr.times[1:], tr.jz_over_n[1:])
    np.testing.assert_allclose(_raster_ticks(ax), np.sort(tr.jump_times))


def test_trajectory_raster_rows_absorptions_and_closed_reservoir():
    """A made-up trajectory (duck typing): R1 emits twice, R2 absorbs once, R2 closed after
    the second jump; rows sit at 0.58 + 0.09 r."""
    t = np.linspace(0, 3, 7)
    tr = SimpleNamespace(chain=CHAIN, times=t, jz_over_n=np.zeros((7, 3)), index=0,
                         jump_times=np.array([0.5, 1.0, 2.0]),
                         jump_channels=np.array([0, 0, 1]), jump_reservoirs=np.array([0, 0, 1]),
                         jump_directions=np.array([-1, -1, 1]),
                         reservoirs_open=np.array([3, 1, 1]), quanta=np.array([2, -1]),
                         final_jz=np.zeros(3))
    ax = plot_trajectory(tr)
    rows = {round(float(s[0, 1]), 2): [] for c in ax.collections for s in c.get_segments()}
    for c in ax.collections:
        for s in c.get_segments():
            rows[round(float(s[0, 1]), 2)].append(s[0, 0])
    assert rows == {0.58: [0.5, 1.0], 0.67: [2.0]}
    assert len(ax.collections) == 2                  # emissions and the absorption apart
    closed = [ln for ln in ax.lines if ln.get_label() == "reservoir closed"]
    assert len(closed) == 1 and list(closed[0].get_xdata()) == [1.0, 3.0]


def test_demon_views_return_figures_and_save_only_when_asked(recorded, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trs = [trajspin.trajectory(CHAIN, LOG_TIMES, seed=1, index=k) for k in range(2)]
    figs = [demon.plot_raster(trs), demon.plot_final_histograms(recorded),
            demon.plot_photocurrent(recorded)]
    assert all(isinstance(f, Figure) for f in figs) and not list(tmp_path.iterdir())
    assert len(figs[0].axes) == 2
    path = tmp_path / "raster.png"
    fig = demon.plot_raster(trs, path)
    assert isinstance(fig, Figure) and path.stat().st_size > 10_000
    assert fig.number not in plt.get_fignums()       # saved and released from pyplot
    scans = {"close R2 when D3 >= threshold": [(0.2, recorded), (0.3, recorded)]}
    assert isinstance(demon.plot_feedback_comparison(recorded, scans), Figure)
    with pytest.raises(InputError, match="at least one"):
        demon.plot_raster([])


def test_without_matplotlib_one_line_names_the_extra(master, ensemble, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    for call in (master.plot, ensemble.plot, trajspin.steady_state(CHAIN).plot, need_pyplot,
                 lambda: demon.plot_final_histograms(ensemble)):
        with pytest.raises(InputError) as info:
            call()
        text = str(info.value)
        assert "\n" not in text and "trajspin[plot]" in text and "matplotlib" in text


def test_notebook_view_is_an_html_table(master, ensemble, recorded):
    page = ensemble._repr_html_()
    assert page.startswith("<div><b>EnsembleResult</b>") and "60 (seed 2" in page
    assert page.count("&plusmn;") == 8 * CHAIN.M              # 8 rows of M cells
    last = ensemble.jz_over_n[-1]
    assert f"<td>{last[0]:+.5f} &plusmn; {ensemble.jz_over_n_err[-1, 0]:.1e}</td>" in page
    page = master._repr_html_()
    assert "Chain(sizes=[4, 2, 1]" in page and "sector cascade" in page
    assert f"<td>{master.jz_over_n[-1, 2]:+.6f}</td>" in page
    assert "records" in recorded._repr_html_()
    assert "t -&gt; inf" in trajspin.steady_state(CHAIN)._repr_html_()
