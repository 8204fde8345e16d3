"""
A first trajectory and its jump raster
======================================

One quantum trajectory of two domains, N = (4, 2), sharing one zero-temperature reservoir.
Domain 1 starts fully excited (the paper's eq. 4).  The reservoir takes quanta through the
collective jump operator :math:`L = J_1^- + J_2^-`; between jumps the state evolves under
the no-jump generator, and a trajectory can end *dark*, with energy trapped for good.

We draw the conditional relative excitation :math:`\\langle J_i^z\\rangle/N_i` of a few
trajectories over a raster of their jumps, then look at the jump records of a whole
ensemble the way an observer who counts quanta (a "Maxwell's demon") would.
"""

import matplotlib.pyplot as plt
import numpy as np

import trajspin
from trajspin import demon

chain = trajspin.Chain([4, 2])  # gamma = 1: times are in units of 1/gamma
t = trajspin.time_grid(tmax=100, points=300, tmin=1e-3)

one = trajspin.trajectory(chain, t, seed=0, index=3)
print(one)

# %%
# The record says *when* each quantum was taken and *by which reservoir*;
# ``jz_before`` / ``jz_after`` hold the conditional :math:`\langle J_i^z\rangle` just
# before and after each jump (not divided by N_i; a domain of N spins runs from −N/2 to N/2).

for time, res, before, after in zip(one.jump_times, one.jump_reservoirs,
                                    one.jz_before, one.jz_after):
    print(f"t = {time:7.4f}  R{res + 1}   <J^z> {np.round(before, 3)} -> {np.round(after, 3)}")
print("dark:", one.dark, "| excitation left:", one.excitation_left)

# %%
# Trajectories that end differently, conditional traces over a jump raster
# ------------------------------------------------------------------------
# Trajectory ``k`` of seed ``s`` depends on ``(s, k)`` only, so ``index=k`` replays
# trajectory ``k`` of ``run_trajectories(chain, t, ntraj, seed=s)`` exactly.  We pick the
# first trajectories of seed 0 that take 2, 3 and 4 quanta: the first two end in a dark
# state with energy left in the chain, the last one in the ground state.

picked = {}
for k in range(200):
    tr = trajspin.trajectory(chain, t, seed=0, index=k)
    picked.setdefault(len(tr.jump_times), tr)
    if len(picked) == 3:
        break

colors = ["#c2185b", "#1f5fbf"]
fig, axes = plt.subplots(len(picked), 1, figsize=(7, 6), sharex=True)
for ax, (nq, tr) in zip(axes, sorted(picked.items())):
    for i in range(chain.M):
        ax.plot(t, tr.jz_over_n[:, i], color=colors[i], label=f"domain {i + 1}")
    ax.vlines(tr.jump_times, -0.5, -0.38, color="k", lw=1.2)   # the jump raster
    left = tr.excitation_left
    state = (f"dark, {left} excitation{'s' if left > 1 else ''} left" if tr.dark
             else "in the ground state")
    ax.set_title(f"trajectory {tr.index}: {nq} quanta, ends {state}", fontsize=9, loc="left")
    ax.set_ylim(-0.52, 0.52)
    ax.set_ylabel(r"$\langle J_i^z\rangle/N_i$")
axes[0].legend(loc="center right", fontsize=8)
axes[-1].set_xscale("log")
axes[-1].set_xlabel(r"$\gamma t$   (ticks: quanta taken by the reservoir)")
fig.tight_layout()

# %%
# What the demon sees in an ensemble
# ----------------------------------
# With ``records="full"`` every trajectory's record is kept.  At zero temperature the
# number n of quanta taken fixes the excitation left forever, :math:`K_0 - n`, so the
# sampled distribution P(n) must match the exact steady-state sector weights, and the
# conditional final state given n is the exact block :math:`\rho_{K_0-n}(\infty)`.

rec = trajspin.run_trajectories(chain, t, ntraj=500, seed=1, records="full", progress=False)
stats = demon.counting_statistics(rec)
print(stats)

exact = demon.exact_conditional_final_jz(chain)
sampled = demon.conditional_final_jz(rec)
print(" n   P(n) sampled        P(n) exact   <J_2^z>/N_2 given n: sampled / exact")
for n, (prob, jz_exact) in exact.items():
    count, mean, err = sampled.get(n, (0, np.full(chain.M, np.nan), None))
    p = count / rec.ntraj
    print(f"{n:2d}   {p:.3f} ± {np.sqrt(p * (1 - p) / rec.ntraj):.3f}"
          f"     {prob:.3f}        {mean[1]:+.4f} / {jz_exact[1]:+.4f}")

# %%
# The photocurrent: the jump rate of the reservoir histogrammed from the records, against
# the exact :math:`\gamma\langle L^\dagger L\rangle(t)` averaged over the same bins.

edges = np.logspace(-2, 1.3, 18)
centres, rate, err = demon.photocurrent(rec, edges)
exact_rate = demon.bin_average(t, demon.exact_jump_rates(chain, t), edges)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.errorbar(centres, rate[:, 0], err[:, 0], fmt="o", ms=4, label="records (500 trajectories)")
ax.plot(centres, exact_rate[:, 0], "k-", label="exact, bin-averaged")
ax.set_xscale("log")
ax.set_xlabel(r"$\gamma t$")
ax.set_ylabel("quanta per unit time")
ax.legend()
fig.tight_layout()
