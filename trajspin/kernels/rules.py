"""Feedback rules inside the event kernel: reservoirs switched on the jump record.

A rule set is a float64 array (R, 5), one row per rule (``trajspin.trajectories.feedback``):

    [kind, source, threshold, reservoir, switch_on]

checked right after every jump, each firing at most once, in row order.  The reservoirs
that are open form a bit mask (bit r: reservoir r open; -1: all open).
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["RULE_QUANTA", "RULE_ABOVE", "RULE_BELOW", "RULE_TIME", "NO_RULES", "apply_rules",
           "is_open"]

RULE_QUANTA = 0      # quanta taken by reservoir `source` (all reservoirs: source = -1) >= threshold
RULE_ABOVE = 1       # conditional <J_source^z>/N_source just after the jump >= threshold
RULE_BELOW = 2       # conditional <J_source^z>/N_source just after the jump <= threshold
RULE_TIME = 3        # time of the jump >= threshold
NO_RULES = np.empty((0, 5))


@njit(cache=True, inline="always")
def is_open(mask, r):
    """Reservoir r is open under ``mask`` (-1 opens every reservoir, however many)."""
    return mask == -1 or ((mask >> r) & 1) == 1


@njit(cache=True)
def apply_rules(rules, fired, mask, quanta, njumps, t, jz_after, half):
    """The reservoir mask after the rules that fire on the record so far (``fired`` updated).

    rules : float64 (R, 5); fired : bool (>= R); quanta : int64 (reservoirs,) taken so far;
    njumps : jumps so far; t : time of the jump; jz_after : float64 (M,) conditional
    <J_i^z> just after it; half : float64 (M,) j_i = N_i / 2.
    """
    for r in range(rules.shape[0]):
        if fired[r]:
            continue
        kind = int(rules[r, 0])
        src = int(rules[r, 1])
        thr = rules[r, 2]
        if kind == RULE_QUANTA:
            hit = (njumps if src < 0 else quanta[src]) >= thr
        elif kind == RULE_ABOVE:
            hit = jz_after[src] / (2.0 * half[src]) >= thr
        elif kind == RULE_BELOW:
            hit = jz_after[src] / (2.0 * half[src]) <= thr
        else:
            hit = t >= thr
        if hit:
            fired[r] = True
            bit = np.int64(1) << np.int64(rules[r, 3])
            if rules[r, 4] > 0.0:
                mask = mask | bit
            else:
                mask = mask & ~bit
    return mask
