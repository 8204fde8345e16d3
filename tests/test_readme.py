"""The README's Python example runs as printed (so the front door cannot rot)."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) <= 12
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(blocks[0], str(README), "exec"), scope)
    assert scope["again"].ntraj == 10_000 and (tmp_path / "ens.npz").exists()
    assert scope["ax"].get_xscale() == "log" and len(scope["ax"].lines) >= 6
