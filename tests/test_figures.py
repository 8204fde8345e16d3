"""The figure command (analysis/make_figures.py --quick) runs and writes non-trivial PNGs."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "analysis", "make_figures.py")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_quick_figures_exist_and_are_not_blank(quick_run):
    import matplotlib.image as mpimg
    pngs = sorted(p for p in os.listdir(quick_run) if p.endswith(".png"))
    assert pngs == ["fig2a.png", "fig3a.png", "fig4a.png", "figS1a.png"]
    for name in pngs:
        path = os.path.join(quick_run, name)
        assert os.path.getsize(path) > 20_000, name
        img = mpimg.imread(path)
        assert img.shape[0] > 300 and img.shape[1] > 500
        assert np.std(img[..., :3]) > 0.05, f"{name} looks blank"
        # the curves are drawn in the paper's colours: magenta must be present
        rgb = img[..., :3].reshape(-1, 3)
        magenta = np.all(np.abs(rgb - np.array([0xc2, 0x18, 0x7f]) / 255) < 0.08, axis=1)
        assert magenta.sum() > 200, f"{name}: no domain-1 curve"


def test_quick_summary_numbers(quick_run):
    with open(os.path.join(quick_run, "summary_quick.json")) as fh:
        s = json.load(fh)
    assert s["fig2a"]["steady_state"][1] == pytest.approx(0.4501, abs=1e-3)
    assert 0.49 < s["fig3a"]["max"][2] <= 0.5           # paper: domain 3 near 0.49
    assert max(s["fig4a"]["max_exact"][1:]) <= 0.0      # eq. (5): never above <J_1^z>/N_1(0) = 0
    assert s["figS1a"]["n_thermal"] == pytest.approx(2.86, abs=0.01)
    assert np.max(np.abs(s["fig2a"]["traj_z_final"])) < 5.0
    # Fig. S1(a), exact at both temperatures: a warm reservoir transfers less (paper, supplement III)
    assert s["figS1a"]["finite_T"] == "exact"
    cold, hot = s["figS1a"]["steady_T0"], s["figS1a"]["final_hot"]
    assert hot[1] < cold[1] - 0.1 and hot[0] > cold[0] + 0.1
