#!/usr/bin/env python3
"""The two commands of the README, each doing its own set-up with nothing but python3.

    python3 tasks.py main    # the main job: an MPI ensemble of the built-in default chain
    python3 tasks.py test    # the whole test suite
    python3 tasks.py docs    # the documentation site in docs/_build/html (warnings are errors)

Set-up: a virtual environment in .venv (created once), the project installed into it with
the MPI (mpi4py + the MPICH wheel from PyPI), plotting and test extras.  Re-runs reuse it
unless pyproject.toml changed.  `docs` also installs the docs extra (Sphinx, numpydoc,
sphinx-gallery, furo) into the same .venv.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def setup():
    stamp = VENV / ".trajspin-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and PY.exists():
        return
    if not PY.exists():
        print(f"[setup] creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("[setup] installing trajspin with its mpi, plot and test extras (a few minutes the first time)",
          flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[mpi,plot,test]"],
                   check=True)
    stamp.write_text(want)


def setup_docs():
    setup()
    stamp = VENV / ".trajspin-docs-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    print("[setup] installing trajspin with its docs extra (Sphinx, numpydoc, sphinx-gallery, furo)",
          flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[docs]"], check=True)
    stamp.write_text(want)


def env():
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.setdefault("OPENBLAS_NUM_THREADS", "1")
    e.setdefault("OMP_NUM_THREADS", "1")
    return e


def main_job(extra):
    ranks = str(min(os.cpu_count() or 1, 64))
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    config = ROOT / "mpi_scripts" / "configs" / "default.toml"
    result = out / "default.npz"
    cmd = [str(BIN / "mpiexec"), "-n", ranks, str(PY), str(ROOT / "mpi_scripts" / "run_ensemble.py"),
           str(config), "--out", str(result)]
    if result.with_suffix(".ckpt.npz").exists() or "--resume" in extra:
        cmd.append("--resume")
    print("[main]", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env())
    subprocess.run([str(PY), str(ROOT / "analysis" / "plot_ensemble.py"), str(result),
                    "--out", str(out / "default.png")], check=True, env=env())


def tests(extra):
    cmd = [str(PY), "-m", "pytest", "-q", str(ROOT / "tests"), *extra]
    print("[test]", " ".join(cmd), flush=True)
    return subprocess.run(cmd, env=env(), cwd=ROOT).returncode


def docs(extra):
    out = ROOT / "docs" / "_build"
    if out.exists():                     # a clean build: -W only sees warnings of pages it reads
        shutil.rmtree(out)
    cmd = [str(PY), "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(ROOT / "docs"),
           str(out / "html"), *extra]
    print("[docs]", " ".join(cmd), flush=True)
    rc = subprocess.run(cmd, env=env(), cwd=ROOT).returncode
    if rc == 0:
        print(f"[docs] open {out / 'html' / 'index.html'}", flush=True)
    return rc


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("main", "test", "docs"):
        print(__doc__)
        sys.exit(2)
    if sys.argv[1] == "docs":
        setup_docs()
        sys.exit(docs(sys.argv[2:]))
    setup()
    if sys.argv[1] == "main":
        main_job(sys.argv[2:])
    else:
        sys.exit(tests(sys.argv[2:]))
