"""One effective chain from its blocks at t = 0 to the output times, or to t -> infinity.

An initial state is a weighted sum over effective chains (sizes 2 j_i, ``trajspin.initial``);
each is evolved on its own, as real symmetric sector blocks {K: rho_K} in the Dicke basis:

* lowering channels only (zero temperature): the sector cascade (``trajspin.exact.cascade``)
  over sectors 0..max K of the initial blocks;
* with a raising channel (absorption): the packed generator over all sectors 0..sum 2 j_i,
  propagated by shift-and-invert Krylov (``trajspin.exact.packed``).

Switch times of a schedule are exact step boundaries: the state at a switch time is reached
with the old rates, then the next piece starts from it (between cascade pieces the blocks go
through the Dicke basis, rho~' = V'^T V rho~ V^T V').
"""
from __future__ import annotations

import numpy as np

from trajspin.exact.cascade import Cascade, advance, stationary_blocks
from trajspin.exact.packed import PackedGenerator, propagate_packed, stationary_packed

__all__ = ["evolve_effective", "stationary_effective"]


def evolve_effective(eff, blocks0, times, observe, stats, final_time=None):
    """Evolve one effective chain from Dicke blocks {K: rho_K} at t = 0.

    Parameters
    ----------
    eff : Chain               the effective chain (sizes 2 j_i)
    blocks0 : dict            {K: ndarray (d_K, d_K)} at t = 0
    times : array_like (T,)   output times, increasing, >= 0
    observe : callable        ``observe(k, blocks)`` at every output time times[k], blocks
                              {K: rho_K} in the Dicke basis
    stats : dict              solver counters (``trajspin.exact.master``), updated; "h" carries
                              the cascade's step size from one call to the next
    final_time : float, optional
        Evolve at least up to this time.

    Returns
    -------
    dict {K: rho_K} at ``final_time`` if given, else at times[-1].
    """
    ch = eff.channels()
    basis = eff.sectors
    times = [float(t) for t in times]
    t_end = max(times[-1], 0.0 if final_time is None else float(final_time))
    starts = [float(s) for s in ch.starts] + [np.inf]
    absorbing = ch.raises
    K_top = basis.K_max if absorbing else max(blocks0)
    state = dict(blocks0)
    outputs = {t: k for k, t in enumerate(times)}
    if 0.0 in outputs:
        observe(outputs[0.0], state)
    events = {t for t in times if t > 0}
    events |= {s for s in starts[1:-1] if s <= t_end}
    if final_time is not None and final_time > 0:
        events.add(float(final_time))
    events = sorted(events)
    now = 0.0
    for p in range(ch.P):
        seg = [e for e in events if starts[p] < e <= starts[p + 1]]
        if not seg:
            continue
        if absorbing:
            gen = PackedGenerator(basis, ch, p)
            ys = propagate_packed(gen, gen.pack(state), now, seg, stats)
            stats["lu"] += gen.n_lu
            for t, yv in zip(seg, ys):
                if t in outputs:
                    observe(outputs[t], gen.unpack(yv))
            state = gen.unpack(ys[-1])
        else:
            cas = Cascade(basis, ch, p, K_top)
            Y = cas.to_eigen(state)
            h = stats.get("h")
            for t in seg:
                Y, h = advance(cas, Y, now, t, h, stats)
                now = t
                if t in outputs:
                    observe(outputs[t], cas.to_dicke(Y))
            stats["h"] = h
            state = cas.to_dicke(Y)
        now = seg[-1]
    return state


def stationary_effective(eff, blocks0, stats):
    """t -> infinity blocks {K: rho_K} (Dicke basis) of one effective chain from blocks at t = 0.

    With a schedule, the state is first evolved to the last switch time; the last piece's
    channels then act forever.  Zero temperature: every sector 0..max K, zero blocks where
    nothing stays.
    """
    ch = eff.channels()
    basis = eff.sectors
    state = dict(blocks0)
    last = ch.P - 1
    if last > 0:
        state = evolve_effective(eff, blocks0, np.array([0.0]), lambda k, b: None, stats,
                                 final_time=float(ch.starts[last]))
    if ch.raises:
        gen = PackedGenerator(basis, ch, last)
        x = stationary_packed(gen, gen.pack(state), stats)
        stats["lu"] += gen.n_lu
        return gen.unpack(x)
    return {K: (np.zeros((basis.dim(K),) * 2) if rho is None else rho)
            for K, rho in stationary_blocks(basis, ch, last, state)}
