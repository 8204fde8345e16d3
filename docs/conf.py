# Sphinx configuration of the trajspin documentation.
#
# Build:  python3 tasks.py docs
#   (= pip install -e .[docs] into .venv, then
#    sphinx-build -W --keep-going -b html docs docs/_build/html)
#
# Why Sphinx + numpydoc: trajspin's docstrings are written in the numpydoc format
# (Parameters / Returns / Notes sections), the format NumPy, SciPy and QuTiP document
# their APIs with, and all three build their sites with Sphinx and the numpydoc
# extension.  Worked examples are sphinx-gallery scripts (docs/examples/plot_*.py),
# run at every build so their printed numbers and figures come from the current code.
#
# Only the public API is documented: the top-level names of ``trajspin`` and the module
# ``trajspin.demon``.  Never point autodoc at an internal module path (trajspin.master,
# trajspin.kernels, ...): the internals move between subpackages.  One exception:
# ``trajspin.results.sweep.SweepResult`` (api/sweeps.rst), the class ``trajspin.sweep`` and
# ``trajspin.load`` return, which has no top-level name (yet).
import os
import re
import subprocess
import sys
from pathlib import Path

import trajspin

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# -- project -------------------------------------------------------------------------
project = "trajspin"
author = "the trajspin authors"
copyright = "the trajspin authors"
version = release = trajspin.__version__

# -- extensions ------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = [
    "_build",
    "README.md",
    "examples",          # the gallery's sources; sphinx-gallery renders them into auto_examples/
    "_generated",        # --help texts written below, pulled in with .. include::
    "**.ipynb_checkpoints",
]
root_doc = "index"
default_role = "literal"          # `x` in a page is code, as ``x`` is
pygments_style = "sphinx"

# -- autodoc / autosummary / numpydoc ----------------------------------------------------
autosummary_generate = True            # pages that use :toctree: get stubs in api/generated
autodoc_member_order = "bysource"
autodoc_typehints = "none"             # the numpydoc sections give the types
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False    # members are listed explicitly in docs/api/*.rst
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()     # warnings only from what numpydoc/docutils can't render

# No warning is suppressed (suppress_warnings / nitpick_ignore stay empty): a docstring that
# docutils cannot parse is fixed in trajspin/.
suppress_warnings = []
nitpick_ignore = []

# -- sphinx-gallery ------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",                 # execute every plot_*.py
    "within_subsection_order": "FileNameSortKey",  # plot_1_..., plot_2_..., ...
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("trajspin",),
    "run_stale_examples": True,     # rerun every example each build (the code under it moves)
    "min_reported_time": 1,
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "matplotlib_animations": False,
}

# -- HTML -------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"trajspin {release}"
html_static_path = []
# ARCHITECTURE.md (the package's layers, for contributors) is linked from index.rst; it is
# copied as it is next to index.html, so the link works in the built site without a copy of
# its text in these pages.
html_extra_path = ["../ARCHITECTURE.md"]
html_show_sourcelink = False


# -- command-line reference: captured from the installed programs at build time ---------
def _run_help(cmd):
    env = dict(os.environ, COLUMNS="96", PYTHONUNBUFFERED="1")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"docs: {' '.join(map(str, cmd))} exited with {p.returncode}:\n"
                           f"{p.stderr[-2000:]}")
    return p.stdout.rstrip() + "\n"


def _trajspin_program():
    """The console script ``trajspin`` of this environment (pyproject [project.scripts])."""
    for cand in (Path(sys.executable).parent / "trajspin",
                 Path(sys.executable).parent / "trajspin.exe"):
        if cand.exists():
            return [str(cand)]
    raise RuntimeError("docs: the `trajspin` program is not installed next to "
                       f"{sys.executable}; run `python3 tasks.py docs` (pip install -e .[docs])")


def _literal(text):
    return ".. code-block:: text\n\n" + "".join(f"   {line}\n" if line.strip() else "\n"
                                                 for line in text.splitlines())


def write_cli_reference():
    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    prog = _trajspin_program()
    top = _run_help(prog + ["--help"])
    m = re.search(r"\{([a-z_,-]+)\}", top)
    if not m:
        raise RuntimeError("docs: could not read the subcommands from `trajspin --help`")
    parts = [".. This file is written by docs/conf.py at every build; do not edit.\n\n"]
    for sub in [None] + m.group(1).split(","):
        args = ["--help"] if sub is None else [sub, "--help"]
        text = top if sub is None else _run_help(prog + args)
        if sub is not None:           # the "physics words" glossary: shown once, with --help
            text = text.split("\nphysics words:", 1)[0].rstrip() + "\n"
        title = "``" + " ".join(["trajspin"] + args) + "``"
        parts += [title + "\n", "-" * len(title) + "\n\n", _literal(text), "\n"]
    (out / "cli_reference.rst").write_text("".join(parts))

    for script in ("run_ensemble", "run_sweep"):       # the MPI runners (user_guide/mpi.rst)
        runner = _run_help([sys.executable, str(ROOT / "mpi_scripts" / f"{script}.py"), "--help"])
        (out / f"{script}_help.rst").write_text(
            ".. This file is written by docs/conf.py at every build; do not edit.\n\n"
            + _literal(runner))


write_cli_reference()


# -- keep the API pages in step with the public names ------------------------------------
def _documented_names(page):
    text = (HERE / "api" / page).read_text()
    return set(re.findall(r"^\.\. auto(?:function|class|exception|data):: *(?:trajspin\.(?:demon\.)?)?(\w+)",
                          text, flags=re.M))


def check_api_coverage(app):
    """Warn (an error under -W) when a public name of trajspin.demon has no entry in api/."""
    from sphinx.util import logging
    log = logging.getLogger("trajspin.docs")
    import trajspin.demon as demon
    documented = _documented_names("demon.rst")
    missing = [n for n in getattr(demon, "__all__", ()) if n not in documented]
    if missing:
        log.warning("trajspin.demon.__all__ names without an entry in docs/api/demon.rst: %s",
                    ", ".join(missing))



def setup(app):
    app.connect("builder-inited", check_api_coverage)
