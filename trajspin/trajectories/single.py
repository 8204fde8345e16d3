"""One quantum trajectory with its full jump record (``trajectory``)."""
from __future__ import annotations

import numpy as np

from trajspin.kernels.events import L_F, demon_kernel, general_kernel, rng_init
from trajspin.results.plotting import plot_trajectory
from trajspin.trajectories.lanczos import krylov_trajectory
from trajspin.trajectories.plan import EnsemblePlan
from trajspin.trajectories.tables import kernel_tables
from trajspin.validation import check_result, check_seed, check_times


class Trajectory:
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

    def __getattr__(self, name):
        obs = self.__dict__.get("observables", {})
        if name in obs:
            return obs[name]
        raise AttributeError(name)

    @property
    def jz_over_n(self):
        """Conditional <J_i^z>/N_i, shape (T, M): ``jz`` divided by the domain sizes."""
        return self.jz / np.asarray(self.chain.sizes, dtype=float)

    def plot(self, ax=None, **kwargs):
        """Draw <J_i^z>/N_i against gamma t with the jump raster (one row per reservoir).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Draw here; default a new figure.
        **kwargs
            Passed to :func:`trajspin.results.plotting.plot_trajectory` (``raster``,
            ``xscale``, ``label``, ``title``, ``legend``, line keywords).

        Returns
        -------
        ax : matplotlib Axes
        """
        return plot_trajectory(self, ax=ax, **kwargs)

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
        (``trajspin.trajectories.lanczos``; paper model, jz only).  "auto" picks from the cost and memory
        model ``trajspin.resources.choose_method`` (Krylov above ~600 states per sector).

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
        return check_result(krylov_trajectory(chain, t, seed, index, list(plan.n0)), "trajectory")
    if plan.engine == "paper":
        return check_result(_paper_trajectory(plan, seed, index), "trajectory")
    return check_result(_general_trajectory(plan, seed, index), "trajectory")


def _paper_trajectory(plan, seed, index):
    chain, t, tab, K0, pos = plan.chain, plan.times, plan.tables, plan.K0, plan.pos
    rules, mask0, lam_p, V_p, rows = kernel_tables(tab, plan.feedback)
    M, C = chain.M, chain.M - 1
    n = max(K0, 1)
    jz = np.empty((t.size, M))
    rec_t, rec_c = np.empty(n), np.empty(n, dtype=np.int64)
    rec_K, rec_mask = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    rec_b, rec_a = np.empty((n, M)), np.empty((n, M))
    psi = np.empty(int(tab.dims.max()))
    nj, Kf, dark, _ = demon_kernel(rng_init(seed, index), K0, pos, t, tab.dims, tab.off_d,
                                   tab.off_V, lam_p, V_p, tab.nexc, tab.jtgt, tab.jamp, tab.gamma,
                                   tab.half, np.empty((0, M)), jz, psi, rules, mask0, rows,
                                   rec_t, rec_c, rec_K, rec_b, rec_a, rec_mask,
                                   np.empty(C, dtype=np.int64))
    return Trajectory(chain, t, jz, rec_t[:nj].copy(), rec_c[:nj].copy(), dark, Kf,
                      psi[: tab.dims[Kf]].copy(), seed, index, plan.n0, rec_K[:nj].copy(),
                      rec_b[:nj].copy(), rec_a[:nj].copy(), rec_mask[:nj].copy(), plan.feedback)


def _general_trajectory(plan, seed, index):
    chain, t, tab = plan.chain, plan.times, plan.tables
    M, T, F = chain.M, t.size, int(plan.lay[L_F])
    cap = max(int(tab.K_top), 16)
    while True:
        obs = np.empty((T, F))
        psi = np.empty(int(tab.dims.max()))
        q = np.zeros(tab.R, dtype=np.int64)
        rec_t, rec_c, rec_K = np.empty(cap), np.empty(cap, np.int64), np.empty(cap, np.int64)
        rec_b, rec_a = np.empty((cap, M)), np.empty((cap, M))
        nj, Kf, dark, overflow, b, Kp = general_kernel(
            rng_init(seed, index), t, plan.horizon, *tab.args(), plan.lay, obs, psi, q,
            rec_t, rec_c, rec_K, rec_b, rec_a)
        if not overflow:
            break
        cap *= 4                    # same (seed, index): the same trajectory, more room
    observables = {"jz": obs[:, :M].copy()}
    for name, (a, z, shape) in plan.parts.items():
        observables[name] = obs[:, a:z].reshape((T,) + shape).copy()
    if "jz_var" in plan.names:
        observables["jz_var"] = observables["jz2"] - observables["jz"] ** 2
    observables = {k: v for k, v in observables.items() if k in plan.names}
    s2j = tuple(int(x) for x in np.rint(2 * tab.half_b[b]))
    d = chain.effective(s2j).sectors.dim(Kp)
    return Trajectory(chain, t, observables["jz"], rec_t[:nj].copy(), rec_c[:nj].copy(), dark,
                      Kf, psi[:d].copy(), seed, index, plan.label(), rec_K[:nj].copy(),
                      rec_b[:nj].copy(), rec_a[:nj].copy(), None, None, observables, s2j)
