r"""Mean-field (moment-closure) dynamics of the chain, for domains of 1 to 10^8 spins.

The derivation is in ``analysis/MEAN_FIELD.md``.  The pieces, from the bottom up:

* ``trajspin.mean_field.algebra``: exact Heisenberg equations of the moments (monomials of
  J_i^z, J_i^+, J_i^- with one symbol per domain), with ``Fraction`` coefficients;
* ``trajspin.mean_field.closures``: the closures "paper" (supplement S1) and "pairs";
* ``trajspin.mean_field.moments``: the initial moments of any accepted initial state;
* ``trajspin.mean_field.equations``: ``MeanFieldModel``, the closed equations as numbers
  (scaled moments y_X = <X> / prod_{i in X} N_i, right-hand side and analytic Jacobian);
* this module: the integration, ``solve_mean_field`` and ``mean_field_equations``.

Numerics.  The scaled moments are integrated with ``scipy.integrate.solve_ivp``'s stiff
methods (LSODA with the dense analytic Jacobian, or BDF / Radau with a sparse one), rtol
1e-10, so that superradiant rates ~ gamma N_1 = 10^8 gamma are handled stiffly.  A schedule
makes the rates piecewise constant: the equations are integrated piece by piece, with the
switch times as integration boundaries.  The integration stops (later times NaN, a
``MeanFieldBreakdown`` warning) once some ``|<J_i^z>|/N_i`` leaves [-1/2, 1/2], unless
``past_breakdown=True``.
"""
from __future__ import annotations

import time
import warnings
from typing import NamedTuple

import numpy as np
from scipy.integrate import solve_ivp

from trajspin.errors import InputError
from trajspin.mean_field.closures import check_closure
from trajspin.mean_field.equations import DENSE_MAX, MeanFieldModel
from trajspin.mean_field.moments import initial_moments
from trajspin.results.base import versions
from trajspin.results.mean_field import MeanFieldResult
from trajspin.validation import check_times

__all__ = ["solve_mean_field", "mean_field_equations", "MeanFieldBreakdown", "BREAKDOWN_MARGIN"]

# The integration stops (later times NaN) once some |<J_i^z>|/N_i exceeds 1/2 by this much.
BREAKDOWN_MARGIN = 1e-6


class MeanFieldBreakdown(RuntimeWarning):
    """The closed equations left the physical range |<J_i^z>| <= N_i/2 (small domains)."""


def _chain_with(chain, n_thermal):
    """The chain to simulate: ``chain`` itself, or a copy with the ``n_thermal`` shorthand.

    ``n_thermal=`` is kept as a shorthand for ``Chain(..., n_thermal=...)``: it may set the
    shared reservoirs' occupations of a zero-temperature chain, or repeat the chain's own
    values; it may not contradict them.
    """
    if n_thermal is None:
        return chain
    nth = np.atleast_1d(np.asarray(n_thermal, dtype=float))
    if nth.ndim != 1 or nth.size not in (1, chain.M - 1):
        raise InputError(f"n_thermal needs a scalar or one value per shared reservoir "
                         f"({chain.M - 1}), got shape {np.shape(n_thermal)}")
    nth = np.broadcast_to(nth, (chain.M - 1,))
    if not np.all(np.isfinite(nth)) or np.any(nth < 0):
        raise InputError(f"n_thermal must be finite and >= 0, got {nth.tolist()}")
    if np.allclose(nth, chain.n_thermal, rtol=1e-12, atol=0.0):
        return chain
    if np.any(chain.n_thermal):
        raise InputError(f"n_thermal={nth.tolist()} contradicts the chain's own "
                         f"n_thermal={chain.n_thermal.tolist()}; give it in one place (the Chain)")
    return type(chain)(chain.sizes, gamma=chain.gamma, n_thermal=nth, kappa=chain.kappa,
                       n_thermal_local=chain.n_thermal_local, omega0=chain.omega0,
                       schedule=chain.schedule)


def mean_field_equations(chain, closure="pairs", n_thermal=None) -> str:
    """The closed moment equations of ``chain`` as text, d<X>/dt = ... for every moment X.

    Parameters
    ----------
    chain : Chain
        The chain (any sizes; rates, occupations, local reservoirs and schedule as held).
    closure : {"pairs", "paper"}
        The closure, as in :func:`solve_mean_field`.
    n_thermal : float or sequence of float (M-1), optional
        Shorthand for ``Chain(..., n_thermal=...)``, as in :func:`solve_mean_field`.

    Returns
    -------
    str
        One line per moment.  Symbols: g_c = gamma_c (times the schedule factor f_c(t) if
        the chain has a schedule; rates in units of gamma), n_c the thermal occupation,
        k_i / m_i the local rate and occupation, N_i bar the c-number standing for J_i^2.
        ``<J1+ J2->`` is half the paper's <A>; ``<J1z J2+ J3->`` half its <J_1^z B>.
    """
    return MeanFieldModel(_chain_with(chain, n_thermal), closure).equations()


def solve_mean_field(chain, times, initial=None, n_thermal=None, closure="pairs", rtol=1e-10,
                     atol=1e-13, method=None, past_breakdown=False) -> MeanFieldResult:
    """Mean-field moment dynamics (paper supplement I, derived again from eq. 3).

    Parameters
    ----------
    chain : Chain
        Any sizes from 1 to ~10^8 spins per domain, with everything ``Chain`` holds: rate
        gamma_c and thermal occupation n_c per shared reservoir, local reservoirs kappa_i
        (occupation nl_i), temperatures, and a piecewise-constant ``schedule``.
    times : array_like, shape (T,)
        Strictly increasing, >= 0, units of 1/gamma; the initial state is at t = 0.
    initial : optional
        As for every solver (``trajspin.initial``): one item per domain, an int n / Dicke(n) /
        "excited" / "ground" / "half" / "dicke:n" (Dicke state), SpinsUp(k) / "up:k" (k of N_i
        spins up), Coherent(theta) / "coherent:theta"; or a normalised state vector on the
        coupled Dicke basis; or an ``InitialState``.  Default paper eq. 4: (N_1, 0, .., 0).
        How each sets the moments: ``analysis/MEAN_FIELD.md``, section 4.
    n_thermal : float or sequence of float (M-1), optional
        Shorthand for ``Chain(..., n_thermal=...)``: sets the shared reservoirs' occupations
        of a zero-temperature chain, or repeats the chain's; contradicting a finite-temperature
        chain is an error.  The result's ``chain`` is the chain actually simulated.
    closure : {"pairs", "paper"}
        "pairs" (default): second order, at most M^2 moments, any M; stable for the
        paper's chains.  "paper": the rules S1 with every multi-domain moment kept
        (M = 2: S11, M = 3: the 13 moments of S3; grows ~3^M).  Both coincide for M = 2.
        For M >= 3 "paper" leaves the physical range for Fig. 3's chains (a warning,
        NaN afterwards); see analysis/MEAN_FIELD.md.
    rtol, atol : float
        Tolerances on the scaled moments <X>/prod N_i (all of order 1).
    method : {None, "LSODA", "Radau", "BDF"}
        Stiff integrator of ``scipy.integrate.solve_ivp``; None picks LSODA (dense
        analytic Jacobian) up to 200 moments, BDF (sparse Jacobian) beyond.
    past_breakdown : bool
        Keep integrating after some ``|<J_i^z>|/N_i`` leaves [-1/2, 1/2] and return those values
        (with the ``MeanFieldBreakdown`` warning and ``meta["breakdown_time"]``) instead of
        NaN: what the closure itself does there, e.g. "paper" on (10^6, 10^4, 10^2) stays
        bounded, <J_3^z>/N_3 overshooting to ~0.56 near gamma t = 1.1e-3.  Not physics.

    Returns
    -------
    MeanFieldResult
        ``.jz`` (T, M), ``.jz_over_n``, ``.moments`` (T, n) with ``.labels``.

    Notes
    -----
    A schedule is integrated piece by piece, each piece with its own rates, from one switch
    time to the next (the switch times are integration boundaries, never stepped over).
    """
    t = check_times(times)
    _check_options(method, closure, rtol, atol)
    chain = _chain_with(chain, n_thermal)
    start = initial_moments(chain, initial)
    wall = time.perf_counter()
    model = MeanFieldModel(chain, closure, casimir=start.casimir)
    method = _pick_method(method, model.n)
    run = _integrate(model, t, model.initial(start), method, rtol, atol, past_breakdown)
    Y = run.values
    if run.breakdown is not None:
        later = "later times are NaN"
        if past_breakdown and run.completed:
            later = "later values are the closure's, outside the physical range"
        else:
            Y[t > run.breakdown] = np.nan
        warnings.warn(f"mean field ({closure} closure) of {chain!r} breaks down at "
                      f"gamma*t = {run.breakdown:.4g}: {run.why}; {later}. The closure "
                      "is meant for large, strongly unbalanced domains (see analysis/README.md).",
                      MeanFieldBreakdown, stacklevel=2)
    moments = Y * model.scale
    meta = {"initial": list(start.excitations) if start.excitations is not None else start.label,
            "initial_label": start.label, "casimir": start.casimir.tolist(),
            "exact_at_t0": start.sharp, "closure": closure,
            "n_thermal": chain.n_thermal.tolist(), "kappa": chain.kappa.tolist(),
            "n_thermal_local": chain.n_thermal_local.tolist(),
            "schedule": None if chain.schedule is None else chain.schedule.to_dict(),
            "breakdown_time": run.breakdown, "solver": f"solve_ivp {method}",
            "rtol": rtol, "atol": atol, "nfev": run.nfev, "n_moments": model.n,
            "wall_time": time.perf_counter() - wall, "versions": versions()}
    return MeanFieldResult(chain, t, moments, model.labels, meta)


def _check_options(method, closure, rtol, atol):
    """Reject an integrator, closure or tolerance that ``solve_mean_field`` cannot use."""
    if method not in (None, "Radau", "BDF", "LSODA"):
        raise InputError(f"method must be a stiff solver: 'Radau', 'BDF' or 'LSODA', got {method!r}")
    check_closure(closure)
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not (np.isfinite(tol) and tol > 0):
            raise InputError(f"{name} must be a positive number, got {tol!r}")


def _pick_method(method, n):
    """The integrator for ``n`` moments: ``method``, or LSODA up to DENSE_MAX moments, else BDF."""
    if method is None:
        method = "LSODA" if n <= DENSE_MAX else "BDF"
    if method == "LSODA" and n > DENSE_MAX:
        raise InputError(f"LSODA needs a dense Jacobian; use 'BDF' or 'Radau' for {n} moments")
    return method


class _Run(NamedTuple):
    """What ``_integrate`` hands back."""

    values: np.ndarray          # (T, n) scaled moments, NaN where not reached
    nfev: int                   # right-hand side evaluations, all pieces
    breakdown: float | None     # time the physical range was left (or the integrator stopped)
    why: str | None             # the reason, for the warning
    completed: bool             # the integration reached the last time


def _left_range(sol, M):
    """(time, reason) of the first breakdown event of a ``solve_ivp`` solution."""
    i = int(np.argmax(np.abs(sol.y_events[0][0][:M])))
    return float(sol.t_events[0][0]), f"<J_{i + 1}^z>/N_{i + 1} left [-1/2, 1/2]"


def _integrate(model, t, y0, method, rtol, atol, past_breakdown) -> _Run:
    """Integrate the scaled moments piece by piece of the schedule, watching the range.

    Parameters
    ----------
    model : MeanFieldModel
    t : ndarray, shape (T,)
        Output times, strictly increasing, >= 0.
    y0 : ndarray, shape (n,)
        Scaled moments at t = 0.
    method : {"LSODA", "Radau", "BDF"}
    rtol, atol : float
    past_breakdown : bool
        Keep integrating once some |y_i| = |<J_i^z>|/N_i exceeds 1/2 + BREAKDOWN_MARGIN
        (the first such time is still reported); otherwise stop there.

    Returns
    -------
    _Run
        ``values`` (T, n): y at the times reached (NaN beyond), ``nfev``, ``breakdown`` and
        ``why`` (None if the range was never left), ``completed``.
    """
    Y = np.full((t.size, model.n), np.nan)
    Y[t == 0.0] = y0
    nfev, breakdown, why, completed = 0, None, None, True
    M = model.M

    def unphysical(_, y, *args):        # > 0 while every |<J_i^z>|/N_i <= 1/2 (+ margin)
        return BREAKDOWN_MARGIN + 0.5 - np.max(np.abs(y[:M]))
    unphysical.terminal = not past_breakdown

    bounds = np.append(model.starts, np.inf)
    y, t_now = y0, 0.0
    for p in range(model.n_pieces):
        t_end = min(bounds[p + 1], t[-1])
        if t_end <= t_now:
            continue
        inside = (t > t_now) & (t <= t_end)
        t_eval = np.append(t[inside], t_end) if not (inside.any() and t[inside][-1] == t_end) \
            else t[inside]
        with np.errstate(over="ignore", invalid="ignore"):
            sol = solve_ivp(model.rhs, (t_now, t_end), y, method=method, t_eval=t_eval, rtol=rtol,
                            atol=atol, jac=model.jacobian, events=unphysical, args=(p,))
        nfev += int(sol.nfev)
        if past_breakdown and breakdown is None and sol.t_events[0].size:
            breakdown, why = _left_range(sol, M)
        keep = sol.t <= t_end
        got = np.isin(t, sol.t[keep]) & inside
        Y[got] = sol.y.T[np.searchsorted(sol.t, t[got])]
        if sol.status != 0:
            completed = False
            if sol.status == 1:
                breakdown, why = _left_range(sol, M)
            else:
                breakdown = float(sol.t[-1]) if sol.t.size else t_now
                why = f"the integrator stopped ({sol.message})"
            break
        y, t_now = sol.y[:, -1], t_end
    return _Run(Y, nfev, breakdown, why, completed)
