"""
Trajectory ensemble against the exact master equation
=====================================================

The average of many quantum trajectories reproduces the master equation; its standard
error says how closely.  Here 600 trajectories of the three-domain chain N = (6, 3, 2)
are compared with the exact sector-block solution on the same log-spaced grid.
"""

import matplotlib.pyplot as plt
import numpy as np

import trajspin

chain = trajspin.Chain([6, 3, 2])
t = trajspin.time_grid(tmax=1e2, points=150, tmin=1e-3)

exact = trajspin.solve_master(chain, t)
ens = trajspin.run_trajectories(chain, t, ntraj=600, seed=1, progress=False)
print(ens)

# %%
# Mean ± one standard error (bands) over the exact curves (black):

colors = ["#c2185b", "#1f5fbf", "#d4a017"]
fig, ax = plt.subplots(figsize=(7, 4))
for i in range(chain.M):
    m, e = ens.jz_over_n[:, i], ens.jz_over_n_err[:, i]
    ax.fill_between(t, m - e, m + e, color=colors[i], alpha=0.35, lw=0)
    ax.plot(t, m, color=colors[i], lw=1, label=f"domain {i + 1} (N = {chain.sizes[i]})")
    ax.plot(t, exact.jz_over_n[:, i], "k-", lw=0.8)
ax.set_xscale("log")
ax.set_xlabel(r"$\gamma t$")
ax.set_ylabel(r"$\langle J_i^z\rangle/N_i$")
ax.set_title(f"{ens.ntraj} trajectories (bands: ±1 s.e.) and the exact solution (black)",
             fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Are the error bars honest?
# --------------------------
# The standard error claims that the ensemble mean lies within ±1 error bar of the exact
# value about 68 % of the time, within ±2 about 95 %.  One ensemble cannot show that —
# its deviations at neighbouring times come from the same trajectories and are strongly
# correlated — so we run 40 independent ensembles (seeds 101…140) of 200 trajectories and
# look at the deviation z = (mean − exact) / (standard error) at two times.

check_times = [np.searchsorted(t, 0.5), t.size - 1]          # mid-transient and the end
z = []
for seed in range(101, 141):
    e = trajspin.run_trajectories(chain, t, ntraj=200, seed=seed, progress=False)
    z.append((e.jz_over_n[check_times] - exact.jz_over_n[check_times])
             / e.jz_over_n_err[check_times])
z = np.ravel(z)
print(f"{z.size} deviations: within 1 s.e. {np.mean(np.abs(z) < 1):.0%}, "
      f"within 2 s.e. {np.mean(np.abs(z) < 2):.0%}, within 3 s.e. {np.mean(np.abs(z) < 3):.0%}")

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.hist(z, bins=np.linspace(-4, 4, 17), density=True, color="#1f5fbf", alpha=0.6,
        label="40 ensembles × 3 domains × 2 times")
x = np.linspace(-4, 4, 200)
ax.plot(x, np.exp(-x**2 / 2) / np.sqrt(2 * np.pi), "k-", label="standard normal")
ax.set_xlabel("(mean − exact) / standard error")
ax.legend(fontsize=7)
fig.tight_layout()

# %%
# Reproducibility: trajectory k draws from a stream keyed by (seed, k) alone, so the same
# seed gives bitwise the same ensemble, whatever the order of the work (or, for MPI runs,
# the number of ranks).

again = trajspin.run_trajectories(chain, t, ntraj=600, seed=1, progress=False)
print("same seed, same numbers:", np.array_equal(again.jz, ens.jz))
other = trajspin.run_trajectories(chain, t, ntraj=600, seed=2, progress=False)
print("seed 2, final <J_3^z>/N_3:", f"{other.jz_over_n[-1, 2]:.4f} ± {other.jz_over_n_err[-1, 2]:.4f}",
      "| exact:", f"{exact.jz_over_n[-1, 2]:.4f}")
