"""
Energy left in the second domain, from N_1 = 1 to 10^9
======================================================

For two domains sharing one zero-temperature reservoir, :math:`L = J_1^- + J_2^-` lowers
the total spin :math:`J = J_1 + J_2`.  Starting from domain 1 fully excited, each total-spin
component ends in :math:`|J, -J\\rangle`, so the exact :math:`t \\to \\infty` state needs no
time stepping and costs O(N_2) whatever N_1.  ``steady_state`` uses this automatically.

How much of domain 2 stays excited as domain 1 grows?  For N_2 = 1 the paper's eq. (S8)
gives :math:`\\langle J_2^z\\rangle(\\infty) = (N_1^2 - 2N_1 - 1) / (2(N_1 + 1)^2)`.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import trajspin

n1_values = np.unique(np.round(np.logspace(0, 9, 28)).astype(np.int64))
domains_2 = [1, 10, 100]

curves = {}
start = time.perf_counter()
for n2 in domains_2:
    curves[n2] = np.array([trajspin.steady_state(trajspin.Chain([int(n1), n2])).jz_over_n[1]
                           for n1 in n1_values])
print(f"{len(domains_2) * n1_values.size} exact steady states in "
      f"{time.perf_counter() - start:.2f} s")

s8 = (n1_values**2 - 2.0 * n1_values - 1) / (2.0 * (n1_values + 1.0) ** 2)
print("largest deviation from eq. (S8) for N_2 = 1:", f"{np.abs(curves[1] - s8).max():.1e}")

# %%
# The closed form agrees with the general sector cascade, which does step through every
# excitation sector (here forced by asking for more than <J_i^z>):

small = trajspin.Chain([40, 10])
closed = trajspin.steady_state(small)
cascade = trajspin.steady_state(small, observables=["jz", "jz_var"])
for res in (closed, cascade):
    print(f"(40, 10) by {res.meta['solver']}: {res.jz_over_n}")

# %%
# Domain 2 ends closer and closer to fully excited as N_1 grows; the residual
# :math:`1/2 - \langle J_2^z\rangle/N_2` falls as a power of N_1.

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.8))
for n2, color in zip(domains_2, ["#c2185b", "#1f5fbf", "#d4a017"]):
    ax1.plot(n1_values, curves[n2], "o-", ms=3, color=color, label=f"$N_2 = {n2}$")
    ax2.loglog(n1_values, 0.5 - curves[n2], "o-", ms=3, color=color)
ax1.plot(n1_values, s8, "k--", lw=1, label="eq. (S8), $N_2 = 1$")
ax1.set_xscale("log")
ax1.set_xlabel("$N_1$")
ax1.set_ylabel(r"$\langle J_2^z\rangle/N_2$ at $t\to\infty$")
ax1.legend(fontsize=8)
ax2.set_xlabel("$N_1$")
ax2.set_ylabel(r"$1/2 - \langle J_2^z\rangle/N_2$")
fig.tight_layout()
