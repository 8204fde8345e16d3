"""
A sweep: the last domain's steady state against N_1 (eq. 5)
===========================================================

The paper's eq. (5): for two domains with :math:`N_1 \\gg N_2`, the last domain ends as
excited as domain 1 started, :math:`\\langle J_2^z\\rangle(\\infty)/N_2 \\to
\\langle J_1^z\\rangle(0)/N_1`.  A sweep checks it on a grid of points in one call: a TOML
config with a ``[sweep]`` table (the same file ``trajspin sweep`` and
``mpi_scripts/run_sweep.py`` run; see :doc:`/user_guide/mpi`), here run in this process by
:func:`trajspin.sweep`.  Two axes: N_1, and the initial state of domain 1, fully excited
(:math:`\\langle J_1^z\\rangle(0)/N_1 = 1/2`) or the half-excited Dicke state
(:math:`\\langle J_1^z\\rangle(0)/N_1 = 0`).
"""

import math
import tempfile
import time
from pathlib import Path

import numpy as np

import trajspin

CONFIG = """
description = "eq. (5): steady state of (N1, 2) against N1"

[chain]
sizes = [4, 2]              # the base point; the sweep replaces N1
gamma = 1.0

[sweep]
mode = "grid"               # every combination of the axes, the last one fastest
solver = "steady"           # the exact t -> infinity state
N1 = [2, 4, 6, 8, 12, 16, 24, 32, 48, 64]
initial = [["excited", "ground"], ["half", "ground"]]
"""

workdir = tempfile.TemporaryDirectory(prefix="trajspin-sweep-")
folder = Path(workdir.name)
config = folder / "eq5.toml"
config.write_text(CONFIG)
out = folder / "eq5.npz"

start = time.perf_counter()
result = trajspin.sweep(config, out, progress=False)
print(f"{len(result.coords)} points in {time.perf_counter() - start:.2f} s")
print(result)

# %%
# ``values(domain)`` arranges one domain's final :math:`\langle J_i^z\rangle/N_i` on the
# grid: shape (len(N1), len(initial)) here, with ``dims`` naming the axes.

last = result.values(-1)
print(result.dims, last.shape)

# %%
# For domain 1 fully excited the total-spin decomposition gives a closed form: the initial
# state :math:`|j_1, j_1\rangle|j_2, -j_2\rangle` (:math:`j_i = N_i/2`) has weight
# :math:`P_J = (2J+1)\,N_1!\,N_2! / [(j_1+j_2+J+1)!\,(j_1+j_2-J)!]` on total spin J, and
# each component decays to :math:`|J, -J\rangle`, where
# :math:`\langle J_2^z\rangle = -[J(J+1) + j_2(j_2+1) - j_1(j_1+1)] / (2(J+1))`.


def closed_form(n1, n2):
    """<J_2^z>(inf)/N_2 of (n1, n2) from domain 1 fully excited (total-spin decomposition)."""
    j1, j2 = n1 / 2, n2 / 2
    total = 0.0
    for k in range(min(n1, n2) + 1):          # J = j1 + j2, ..., |j1 - j2|
        J = j1 + j2 - k
        weight = math.exp(math.log(2 * J + 1) + math.lgamma(n1 + 1) + math.lgamma(n2 + 1)
                          - math.lgamma(j1 + j2 + J + 2) - math.lgamma(j1 + j2 - J + 1))
        jz2 = 0.0 if J == 0 else -(J * (J + 1) + j2 * (j2 + 1) - j1 * (j1 + 1)) / (2 * (J + 1))
        total += weight * jz2
    return total / n2


n1 = np.array(result.axes["N1"])
reference = np.array([closed_form(int(n), 2) for n in n1])
print("largest deviation from the closed form:", f"{np.abs(last[:, 0] - reference).max():.1e}")

# %%
# ``to_table()`` gives one row per point as a NumPy structured array
# (``pandas.DataFrame(result.to_table())`` makes a data frame of it):

table = result.to_table()
print(table.dtype.names)
for row in table[-4:]:
    print(f"N1 = {row['N1']:3d}, initial {row['initial']:<15} <J_2^z>/N_2 = {row['jz2']:+.5f}")

# %%
# The result file is what ``trajspin.load`` reads, and running the sweep again with
# ``resume=True`` returns it at once: finished points are never redone.

again = trajspin.sweep(config, out, resume=True, progress=False)
print("load == sweep:", np.array_equal(trajspin.load(out).values(-1), last),
      "| resume == first run:", np.array_equal(again.values(-1), last))

# %%
# ``result.plot(x="N1")`` draws the last domain against N_1, one line per value of the
# other axis; it returns the matplotlib Axes, so the closed form and the limits of eq. (5)
# go on top.  From domain 1 excited, domain 2 climbs towards 1/2; from the half-excited
# Dicke state, towards 0.

ax = result.plot(x="N1")
ax.plot(n1, reference, "kx", ms=7, label="closed form (excited)")
for level in (0.5, 0.0):
    ax.axhline(level, color="gray", lw=0.8, ls=":")
ax.set_xscale("log", base=2)
ax.set_xticks(n1, [str(n) for n in n1])
ax.set_ylim(-0.42, 0.54)
ax.legend(fontsize=7, loc="lower right")

workdir.cleanup()
