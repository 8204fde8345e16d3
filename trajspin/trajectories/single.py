"""One quantum trajectory with its full jump record (``trajectory``)."""
from __future__ import annotations

import numpy as np

from trajspin.kernels.events import event_kernel
from trajspin.kernels.layout import L_F
from trajspin.kernels.rng import rng_init
from trajspin.trajectories.lanczos import krylov_trajectory
from trajspin.trajectories.plan import EnsemblePlan
from trajspin.trajectories.tables import jump_arrays
from trajspin.trajectories.view import TrajectoryView, observable_dict
from trajspin.validation import check_result, check_seed, check_times


class Trajectory(TrajectoryView):
    """One quantum trajectory: its jump record and conditional expectations against time.

    Attributes
    ----------
    times : ndarray, shape (T,)
    jz : ndarray, shape (T, M)      <J_i^z> in the conditional state
    observables : dict              conditional value of each requested observable (shapes as
                                    in ``trajspin.observables``, time first); also attributes
    jump_times : ndarray, shape (njumps,), increasing
    jump_channels : ndarray of int, shape (njumps,)   channel k of ``chain.channels()`` of each
                                    jump (for the paper's model, channel c is reservoir c)
    jump_reservoirs : ndarray of int, shape (njumps,)  reservoir of each jump (0..M-2 shared,
                                    M-1+i local reservoir of domain i)
    jump_directions : ndarray of int, shape (njumps,)  -1 a quantum went into the reservoir
                                    (emission, K -> K-1), +1 one came out of it (absorption)
    jump_excitation : ndarray of int, shape (njumps,)   excitation K just before each jump
    jz_before, jz_after : ndarray, shape (njumps, M)   conditional <J_i^z> just before and
                                    just after each jump
    reservoirs_open : ndarray of int, shape (njumps,)   bit mask of open reservoirs after each
                                    jump (feedback; paper engine only, else None)
    quanta : ndarray of int, shape (R,)   NET quanta each reservoir received: emissions minus
                                    absorptions (R = M-1 shared reservoirs, then M local ones
                                    if the chain has any); at T = 0 simply the quanta taken
    dark : bool                     can never jump again, with excitation left
    excitation_left : int           excitation K of the final state
    final_state : ndarray, shape (d_K,)   final conditional state on sector K' of the chain with
                                    domain sizes ``final_sizes`` (2 j_i; equal to N_i for the
                                    symmetric ladders): at t -> infinity when no channel raises
                                    K, else at the last output time
    final_sizes : tuple of int
    seed, index : int
    feedback : Feedback or None
    """

    def __init__(self, chain, times, jz, jump_times, jump_channels, dark, excitation_left,
                 final_state, seed, index, initial, jump_excitation=None, jz_before=None,
                 jz_after=None, reservoirs_open=None, feedback=None, observables=None,
                 final_sizes=None):
        self.chain, self.times, self.jz = chain, times, jz
        self.jump_times, self.jump_channels = jump_times, jump_channels
        self.dark, self.excitation_left = bool(dark), int(excitation_left)
        self.final_state, self.seed, self.index, self.initial = final_state, seed, index, initial
        self.jump_excitation, self.jz_before, self.jz_after = jump_excitation, jz_before, jz_after
        self.reservoirs_open, self.feedback = reservoirs_open, feedback
        self.observables = dict(observables or {})
        self.observables.setdefault("jz", jz)
        self.final_sizes = tuple(chain.sizes) if final_sizes is None else tuple(final_sizes)
        chans = chain.channels()
        self.jump_reservoirs = chans.reservoir[jump_channels]
        self.jump_directions = chans.direction[jump_channels]
        self.quanta = np.bincount(self.jump_reservoirs, weights=-self.jump_directions,
                                  minlength=chans.n_reservoirs).astype(np.int64)

    @property
    def final_jz(self):
        """<J_i^z> of the final conditional state, shape (M,)."""
        eff = self.chain.effective(self.final_sizes)
        off = (np.asarray(self.chain.sizes) - np.asarray(self.final_sizes)) // 2
        K = self.excitation_left - int(off.sum())
        states = eff.sectors.sector(K).states
        return (self.final_state**2) @ states - 0.5 * np.asarray(self.final_sizes, dtype=float)

    def __str__(self):
        names = self.chain.channels().reservoir_names()
        rec = ", ".join(f"t={t:.4g} {names[r]}{'' if d < 0 else ' (absorbed)'}"
                        for t, r, d in zip(self.jump_times[:20], self.jump_reservoirs[:20],
                                           self.jump_directions[:20]))
        if self.jump_times.size > 20:
            rec += ", ..."
        fb = f"; feedback: {self.feedback}" if self.feedback is not None else ""
        state = "dark" if self.dark else "ground" if self.excitation_left == 0 else "running"
        return (f"Trajectory {self.index} (seed {self.seed}) of {self.chain!r}: "
                f"{len(self.jump_times)} jumps [{rec}]; net quanta per reservoir "
                f"{self.quanta.tolist()}; {state} with excitation {self.excitation_left} left; "
                f"final <J_i^z>/N_i = "
                f"{np.round(self.final_jz / np.asarray(self.chain.sizes), 6).tolist()}{fb}")

    __repr__ = __str__


def trajectory(chain, times, seed=0, index=0, initial=None, feedback=None,
               observables=("jz",), method="auto") -> Trajectory:
    """Sample one quantum trajectory (its stream depends on (seed, index) only).

    Parameters
    ----------
    chain : Chain   any chain: temperature, local reservoirs, schedules
    times : array_like, shape (T,)   output times, increasing, >= 0, units of 1/gamma
    seed, index : int
    initial : anything ``trajspin.initial.resolve_initial`` accepts (default: paper eq. 4)
        Mixtures (k of N spins up) draw their spin-j component, superpositions across
        excitation sectors their sector K (probability ||P_K psi||^2), from the same stream.
    feedback : Feedback, Rule, str or sequence of them, optional
        Rules that open or close reservoirs on the record (``trajspin.trajectories.feedback``); paper's
        model from a Dicke basis state only.
    observables : name or sequence of names (``trajspin.observables``; not log_negativity)
        Conditional expectations kept as ``.observables[name]`` and attributes.
    method : {"auto", "dense", "krylov"}
        Sector propagation: dense spectral decomposition, or matrix-free Lanczos
        (``trajspin.trajectories.lanczos``; the paper's model from a Dicke basis state).
        "auto" picks from the cost and memory model ``trajspin.resources.choose_method``
        (Krylov above ~600 states per sector).

    Returns
    -------
    Trajectory  (a ``trajspin.trajectories.lanczos.KrylovTrajectory`` with the same fields on the Krylov path)
        With the full jump record (times, channels, reservoirs, directions, excitation,
        conditional <J_i^z> just before and after each jump).
    """
    t = check_times(times)
    seed = check_seed(seed)
    index = check_seed(index, "index")
    plan = EnsemblePlan(chain, t, initial, "none", feedback, observables, method)
    if plan.engine == "krylov":
        return check_result(krylov_trajectory(chain, t, seed, index, list(plan.n0),
                                              feedback=plan.feedback, observables=plan.names),
                            "trajectory")
    return check_result(_dense_trajectory(plan, seed, index), "trajectory")


def _dense_trajectory(plan, seed, index):
    """One trajectory of ``event_kernel`` with its record (more room and the same stream after
    an overflow: only chains that absorb can jump more often than their excitation)."""
    chain, t, tab = plan.chain, plan.times, plan.tables
    M, T, F = chain.M, t.size, int(plan.lay[L_F])
    paper = plan.engine == "paper"
    cap = max(int(plan.K_top), 1 if paper else 16)
    while True:
        obs = np.empty((T, F))
        psi = np.empty(int(tab.dims.max()))
        rec = jump_arrays(cap, M)
        nj, Kf, dark, overflow, b, Kp, _ = event_kernel(
            rng_init(seed, index), plan.event, plan.switching, t, plan.horizon,
            np.empty((0, M)), plan.lay, obs, psi, np.zeros(plan.R, dtype=np.int64), rec, 0)
        if not overflow:
            break
        cap *= 4
    observables = observable_dict(obs, M, plan.names, plan.parts)
    s2j = tuple(int(x) for x in np.rint(2 * plan.event.half_b[b]))
    d = int(plan.event.dims[plan.event.blk[b, 0] + Kp])
    kept = tuple(x[:nj].copy() for x in rec)
    return Trajectory(chain, t, observables["jz"], kept[0], kept[1], dark, Kf, psi[:d].copy(),
                      seed, index, plan.n0 if paper else plan.label(), kept[2], kept[3],
                      kept[4], kept[5] if paper else None, plan.feedback if paper else None,
                      observables, s2j)
