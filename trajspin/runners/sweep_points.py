"""One sweep point: what it costs (the resource model) and how it is solved.

Every point runs whole on one rank with the solver it names.  Trajectory points run the
fixed chunks of :class:`trajspin.runners.chunks.ChunkPlan` through
:class:`trajspin.runners.batch.EnsembleTask`, folded in chunk order, so their arrays are
bitwise those of ``run_trajectories`` with the same seed and chunk; trajectory j's random
stream is a function of (seed, j) alone, whatever rank runs the point.
"""
from __future__ import annotations

import math
import time

from trajspin.errors import InputError
from trajspin.estimate import BASELINE_BYTES, MEMORY_FRACTION, estimate
from trajspin.exact import solve_master, steady_state
from trajspin.mean_field import solve_mean_field
from trajspin.runners.batch import EnsembleTask, stop_test_for
from trajspin.runners.chunks import ChunkPlan, OrderedSums
from trajspin.validation import available_memory

__all__ = ["PointCost", "point_cost", "check_fit", "solve_point", "MEAN_FIELD_SECONDS"]

# Mean field has no entry in trajspin.estimate: a few hundred moments integrated by
# solve_ivp take well under a second; it only orders the points.
MEAN_FIELD_SECONDS = 0.5


class PointCost:
    """Predicted seconds and bytes of one point on one rank (``trajspin.estimate``)."""

    def __init__(self, seconds, bytes_per_rank, message):
        self.seconds, self.bytes, self.message = float(seconds), int(bytes_per_rank), message

    def __repr__(self):
        return f"PointCost(seconds={self.seconds:.3g}, bytes={self.bytes})"


def point_cost(point) -> PointCost:
    """The resource model's prediction for ``point`` (its solver, chain, grid, ntraj).

    A state vector as initial state is sized as if every domain were excited (its highest
    possible sector).  NaN seconds (an engine without a time model) count as 1 s.  Steady
    states of two domains from eq. (4) are priced by ``estimate`` as the closed form
    ``steady_state`` uses (``resources.steady_closed_form``).
    """
    cfg = point.config
    chain = cfg.chain()
    if point.solver == "mean_field":
        T = cfg.times.size
        return PointCost(MEAN_FIELD_SECONDS, BASELINE_BYTES + 64 * T * chain.M**2,
                         f"mean field of {chain!r}")
    initial = cfg.initial_request()
    if not isinstance(initial, list):
        initial = ["excited"] * chain.M
    est = estimate(chain, point.solver, ntraj=max(cfg.max_ntraj, 1),
                   times=None if point.solver == "steady" else cfg.times, initial=initial)
    seconds = est.seconds if math.isfinite(est.seconds) else 1.0
    return PointCost(seconds, est.bytes_per_rank, est.message())


def check_fit(spec, costs, ranks_per_node=1, available=None):
    """Refuse (one-line InputError, with the numbers) a sweep with a point too big for a rank.

    A point must fit alone in ``MEMORY_FRACTION`` of the available memory; and since every
    rank of a node may run one point at a time, so must the ``ranks_per_node`` largest
    points together.
    """
    avail = available_memory() if available is None else int(available)
    limit = MEMORY_FRACTION * avail
    for point, cost in zip(spec.points, costs):
        if cost.bytes > limit:
            raise InputError(f"sweep point {point.index + 1} of {spec.size} ({point.label()}) is "
                             f"too big for one rank: {cost.message}")
    k = max(1, min(int(ranks_per_node), spec.size))
    largest = sorted((c.bytes for c in costs), reverse=True)[:k]
    if sum(largest) > limit:
        raise InputError(f"the {k} largest sweep points need {sum(largest) / 2**30:.3g} GiB "
                         f"together ({k} ranks on this node each run one), more than "
                         f"{MEMORY_FRACTION:.0%} of the {avail / 2**30:.3g} GiB available; "
                         f"use fewer ranks per node")


def solve_point(point, tick=None):
    """Run ``point``'s solver; ``tick(n)`` is called after each chunk of n trajectories.

    Returns
    -------
    SteadyStateResult, MasterResult, EnsembleResult or MeanFieldResult
        ``meta["wall_time"]`` holds the seconds it took.
    """
    cfg = point.config
    start = time.perf_counter()
    if point.solver == "steady":
        result = steady_state(cfg.chain(), initial=cfg.initial_request())
    elif point.solver == "master":
        result = solve_master(cfg.chain(), cfg.times, initial=cfg.initial_request())
    elif point.solver == "mean_field":
        result = solve_mean_field(cfg.chain(), cfg.times, initial=cfg.initial_request())
    elif point.solver == "trajectories":
        result = _trajectories(cfg, tick or (lambda n: None))
    else:
        raise InputError(f"unknown solver {point.solver!r}")
    result.meta["wall_time"] = time.perf_counter() - start
    return result


def _trajectories(cfg, tick):
    """The ensemble of ``cfg`` in its fixed chunks, folded in order (as run_trajectories)."""
    task = EnsembleTask(cfg.chain(), cfg.times, cfg.seed, cfg.initial_request(),
                        method=cfg.method)
    chunks = ChunkPlan(cfg.ntraj, cfg.chunk, cfg.max_ntraj)
    sums = OrderedSums(task.zero(), chunks.nchunks, stop_test_for(task, chunks, cfg.target_err))
    for c in range(chunks.nchunks):
        if sums.complete:
            break
        start, stop = chunks.bounds(c)
        sums.add(c, task.compute(start, stop))
        tick(stop - start)
    n = chunks.bounds(sums.nfolded - 1)[1]
    meta = {"seed": cfg.seed, "ntraj": n, "chunk": cfg.chunk, "ndark": sums.total.ndark,
            "njumps_sum": sums.total.njumps}
    if cfg.target_err is not None:
        meta.update(target_err=cfg.target_err, max_err=task.max_error(sums.total, n),
                    target_reached=bool(sums.stopped))
    return task.result(sums.total, n, meta=meta)
