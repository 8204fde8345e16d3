"""
Mean field against the exact solution
=====================================

The mean field (``solve_mean_field``) reaches any N in seconds, but it has no dark states.
Three comparisons with the exact master equation show what that means:

1. two domains (N_1, 2): the mean-field plateau approaches the exact :math:`t\\to\\infty`
   state as N_1 grows, while the transient stays off;
2. three small domains (6, 3, 2): the exact dynamics traps energy in dark states, the mean
   field lets it all leak out;
3. the paper's Fig. 3(a) chain (10^6, 10^4, 10^2), where only the mean field runs: the
   "paper" closure leaves the physical range and is cut off there (NaN), unless
   ``past_breakdown=True``.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

import trajspin

t = trajspin.time_grid(tmax=1e3, points=200, tmin=1e-4)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharey=True)
for ax, n1 in zip(axes, [10, 40, 100]):
    chain = trajspin.Chain([n1, 2])
    mf = trajspin.solve_mean_field(chain, t)
    exact = trajspin.solve_master(chain, t)
    for i, color in enumerate(["#c2185b", "#1f5fbf"]):
        ax.plot(t, exact.jz_over_n[:, i], color=color, label=f"exact, domain {i + 1}")
        ax.plot(t, mf.jz_over_n[:, i], "--", color=color, label=f"mean field, domain {i + 1}")
    ax.set_xscale("log")
    ax.set_title(f"N = ({n1}, 2)", fontsize=9)
    ax.set_xlabel(r"$\gamma t$")
    print(f"({n1}, 2): <J_2^z>/N_2 at gamma t = 1e3: exact {exact.jz_over_n[-1, 1]:+.4f}, "
          f"mean field {mf.jz_over_n[-1, 1]:+.4f}")
axes[0].set_ylabel(r"$\langle J_i^z\rangle/N_i$")
axes[0].legend(fontsize=7)
fig.tight_layout()

# %%
# Three small domains: dark states
# --------------------------------
# The exact solution (solid) keeps energy in domains 2 and 3 for ever; the "pairs"
# mean field (dashed) returns every domain to the ground state.

chain = trajspin.Chain([6, 3, 2])
exact = trajspin.solve_master(chain, t)
mf = trajspin.solve_mean_field(chain, t)
steady = trajspin.steady_state(chain)
print("exact t -> inf:", np.round(steady.jz_over_n, 4),
      "| mean field at gamma t = 1e3:", np.round(mf.jz_over_n[-1], 4))

fig, ax = plt.subplots(figsize=(6.5, 3.6))
for i, color in enumerate(["#c2185b", "#1f5fbf", "#d4a017"]):
    ax.plot(t, exact.jz_over_n[:, i], color=color, label=f"domain {i + 1}")
    ax.plot(t, mf.jz_over_n[:, i], "--", color=color)
ax.set_xscale("log")
ax.set_xlabel(r"$\gamma t$")
ax.set_ylabel(r"$\langle J_i^z\rangle/N_i$")
ax.set_title("(6, 3, 2): exact (solid) and mean field (dashed)", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Fig. 3(a)'s chain: closures and their breakdown
# -----------------------------------------------
# ``closure="paper"`` keeps all 13 moments of the supplement's eq. (S3).  For this chain a
# correlation grows superradiantly in the second stage and pushes domain 3 out of
# [-1/2, 1/2] near gamma t = 1e-3: the solver warns (``MeanFieldBreakdown``) and returns
# NaN from there on.  ``past_breakdown=True`` shows what the closure itself does — a
# diagnostic, not physics.  The default ``closure="pairs"`` stays physical.

big = trajspin.Chain([10**6, 10**4, 10**2])
tb = trajspin.time_grid(tmax=1e-1, points=300, tmin=1e-8)
pairs = trajspin.solve_mean_field(big, tb)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    paper = trajspin.solve_mean_field(big, tb, closure="paper")
    past = trajspin.solve_mean_field(big, tb, closure="paper", past_breakdown=True)
print(type(caught[0].message).__name__, "-", str(caught[0].message).split(";")[0])
print("breakdown at gamma t =", f"{paper.meta['breakdown_time']:.3g};",
      f"NaN from there on: {np.isnan(paper.jz_over_n[:, 2]).sum()} of {tb.size} times;",
      f"past_breakdown peak of <J_3^z>/N_3: {np.nanmax(past.jz_over_n[:, 2]):.3f}")

fig, ax = plt.subplots(figsize=(6.5, 3.6))
ax.plot(tb, pairs.jz_over_n[:, 2], color="#d4a017", label='"pairs" (default)')
ax.plot(tb, past.jz_over_n[:, 2], ":", color="k", label='"paper", past_breakdown=True')
ax.plot(tb, paper.jz_over_n[:, 2], "-", color="#c2185b", lw=2.5, alpha=0.6,
        label='"paper" (NaN after breakdown)')
ax.axhline(0.5, color="grey", lw=0.6)
ax.axvline(paper.meta["breakdown_time"], color="grey", ls="--", lw=0.6)
ax.set_xscale("log")
ax.set_xlabel(r"$\gamma t$")
ax.set_ylabel(r"$\langle J_3^z\rangle/N_3$")
ax.set_title("domain 3 of (10^6, 10^4, 10^2)", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
