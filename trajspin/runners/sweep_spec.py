"""The ``[sweep]`` table of a TOML config: axes, their points, and one config per point.

A sweep config is an ensemble config (``trajspin.runners.config``: ``[chain]``, ``[times]``,
``[run]``) that gives the *base point*, plus a ``[sweep]`` table of axes that replace base
values::

    [chain]
    sizes = [40, 2]

    [sweep]
    mode = "grid"                 # "grid" (default): every combination, the last axis fastest;
                                  # "list": the k-th value of every axis together
    solver = "steady"             # "steady", "master", "trajectories", "mean_field",
                                  # or a list of them (then it is an axis)
    N1 = [4, 8, 12, 16]           # one domain's size N_i (i = 1..M), replaces chain.sizes[i-1]
    initial = [["excited", "ground"], ["half", "ground"]]

Axes (each a non-empty list of values): ``sizes`` (lists of N_i), ``N1`` .. ``N9``,
``gamma``, ``n_thermal``, ``temperature``, ``kappa``, ``n_thermal_local`` (a number or a
list per reservoir / domain, as in ``[chain]``), ``initial`` (lists of per-domain items, as
``run.initial``), ``seed``, ``ntraj``, and ``solver``.

``[times]`` is needed when a point runs master, trajectories or mean_field; ``run.ntraj`` and
``run.seed`` when a point runs trajectories (or give them as axes).  The sweep records
<J_i^z> (with standard errors for trajectories): ``run.observables``, ``[output]`` and
``[checkpoint]`` do not apply (a sweep checkpoints per point, next to its result file).

Every problem (unknown key, with a "did you mean"; an empty axis; lists of unequal length in
list mode; a point whose config the engine would refuse, named by its coordinates) raises
:class:`trajspin.InputError` with one line, before any work starts.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field

from trajspin.errors import InputError
from trajspin.runners.config import EnsembleConfig, show_value, unknown_key, parse_config, read_toml

__all__ = ["SweepSpec", "SweepPoint", "load_sweep", "parse_sweep", "SOLVERS", "AXES",
           "TIME_SOLVERS", "MAX_POINTS"]

SOLVERS = ("steady", "master", "trajectories", "mean_field")
TIME_SOLVERS = ("master", "trajectories", "mean_field")
MAX_POINTS = 100_000
# sweep key -> (config table, key) it replaces; "N<i>" and "solver" are handled apart
AXES = {"sizes": ("chain", "sizes"), "gamma": ("chain", "gamma"),
        "n_thermal": ("chain", "n_thermal"), "temperature": ("chain", "temperature"),
        "kappa": ("chain", "kappa"), "n_thermal_local": ("chain", "n_thermal_local"),
        "initial": ("run", "initial"), "seed": ("run", "seed"), "ntraj": ("run", "ntraj")}
_DOMAIN_AXIS = re.compile(r"N([1-9])$")
_OPTIONS = ("mode", "solver")
_NOT_IN_SWEEPS = {"checkpoint": "a sweep checkpoints per point, in the folder next to its "
                                "result file; remove [checkpoint]",
                  "output": "a sweep records <J_i^z> only; remove [output]"}
_TRAJ_ONLY = ("run.ntraj", "run.seed", "run.chunk", "run.target_err", "run.max_ntraj",
              "run.method")


@dataclass(frozen=True, eq=False)
class SweepPoint:
    """One point of a sweep: its coordinates, its solver and its validated config.

    Attributes
    ----------
    index : int                 position in the sweep (C order of the grid, or list order)
    coords : dict               axis name -> value at this point (JSON-ready)
    solver : str                "steady", "master", "trajectories" or "mean_field"
    config : EnsembleConfig     the base config with this point's values
    """

    index: int
    coords: dict
    solver: str
    config: EnsembleConfig

    def chain(self):
        return self.config.chain()

    def physics(self) -> dict:
        """What the point's result depends on (the key of its checkpoint file)."""
        phys = dict(self.config.physics(), solver=self.solver)
        if self.solver != "trajectories":
            for key in _TRAJ_ONLY:
                phys.pop(key, None)
        if self.solver == "steady":
            phys.pop("times", None)
        return phys

    @property
    def key(self) -> str:
        """SHA-256 (hex) of :meth:`physics`."""
        text = json.dumps(self.physics(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def ntraj_goal(self) -> int:
        """Trajectories this point runs at most (0 for the other solvers)."""
        return self.config.max_ntraj if self.solver == "trajectories" else 0

    def label(self) -> str:
        """``N1=20, initial=['half', 'ground'], solver=steady`` (short, for messages)."""
        parts = [f"{k}={_short(v)}" for k, v in self.coords.items()]
        return ", ".join(parts)


@dataclass(frozen=True, eq=False)
class SweepSpec:
    """A validated sweep: its axes and every point.

    Attributes
    ----------
    mode : str                   "grid" or "list"
    axes : dict                  axis name -> list of values, in the config's order
    shape : tuple of int         grid: one length per axis; list: (number of points,)
    dims : tuple of str          names of the dimensions of ``shape`` (list mode: ("point",))
    points : tuple of SweepPoint
    times : ndarray or None      the output times when some point runs a time solver
    description, source : str
    raw : dict                   the TOML document as read
    """

    mode: str
    axes: dict
    shape: tuple
    dims: tuple
    points: tuple
    times: object = None
    description: str = ""
    source: str = "<config>"
    raw: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.points)

    @property
    def solvers(self) -> tuple:
        return tuple(p.solver for p in self.points)

    def sweep_hash(self) -> str:
        """SHA-256 (hex) of the axes, the mode and every point's key."""
        text = json.dumps({"mode": self.mode, "axes": self.axes,
                           "points": [p.key for p in self.points]}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict:
        """JSON-ready summary for result files."""
        return {"source": self.source, "description": self.description, "mode": self.mode,
                "axes": self.axes, "shape": list(self.shape), "dims": list(self.dims),
                "config": self.raw}


def load_sweep(path) -> SweepSpec:
    """Read and validate a sweep config file (raises InputError with one line)."""
    path = os.fspath(path)
    data = read_toml(path)
    return parse_sweep(data, source=path)


def parse_sweep(data: dict, source: str = "<config>") -> SweepSpec:
    """Validate a parsed TOML document with a ``[sweep]`` table into a :class:`SweepSpec`."""
    if not isinstance(data, dict):
        raise InputError(f"a sweep config is a TOML document (a dict), got {show_value(data)}")
    if "sweep" not in data:
        raise InputError("missing table [sweep] (give its axes, e.g. N1 = [4, 8, 16], and "
                         "solver = \"steady\")")
    table = data["sweep"]
    if not isinstance(table, dict):
        raise InputError(f"sweep must be a table [sweep], got {show_value(table)}")
    data = dict(data, sweep={k: _plain(v) for k, v in table.items()})
    table = data["sweep"]
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise InputError(f"a sweep config holds numbers, strings, lists and tables only ({exc})") \
            from None
    for key, why in _NOT_IN_SWEEPS.items():
        if key in data:
            raise InputError(f"[{key}] does not apply to a sweep: {why}")
    mode, solver, axes = _read_table(table)
    shape, dims, combos = _expand(mode, axes)
    base = {k: copy.deepcopy(v) for k, v in data.items() if k != "sweep"}
    _check_observables(base)
    solvers = [c.get("solver", solver) for c in combos]
    _fill_defaults(base, set(solvers))
    points = tuple(_point(i, base, combo, s, len(combos))
                   for i, (combo, s) in enumerate(zip(combos, solvers)))
    times = None
    if any(s in TIME_SOLVERS for s in solvers):
        times = next(p.config.times for p in points if p.solver in TIME_SOLVERS)
    return SweepSpec(mode=mode, axes=axes, shape=shape, dims=dims, points=points, times=times,
                     description=base.get("description", ""), source=source, raw=data)


def _read_table(table):
    """(mode, fixed solver or None, {axis: values}) of the [sweep] table, keys checked."""
    allowed = set(AXES) | set(_OPTIONS) | {f"N{i}" for i in range(1, 10)}
    for key in table:
        if key not in allowed:
            raise InputError(unknown_key(f"sweep.{key}", {f"sweep.{a}" for a in allowed}))
    mode = table.get("mode", "grid")
    if mode not in ("grid", "list"):
        raise InputError(f"sweep.mode must be \"grid\" or \"list\", got {show_value(mode)}")
    axes = {}
    for key, values in table.items():
        if key == "mode" or (key == "solver" and isinstance(values, str)):
            continue
        if key == "solver" and not isinstance(values, list):
            raise InputError(f"sweep.solver must be a solver name or a list of them, "
                             f"got {show_value(values)}")
        if not isinstance(values, list):
            raise InputError(f"sweep.{key} must be a list of values (an axis), got {show_value(values)}")
        if not values:
            raise InputError(f"sweep.{key} is an empty list: every axis needs at least one value")
        for k, v in enumerate(values):
            _check_value(key, k, v)
        axes[key] = values
    solver = table.get("solver")
    if solver is None:
        raise InputError("missing key sweep.solver (\"steady\", \"master\", \"trajectories\" "
                         "or \"mean_field\", or a list of them)")
    if isinstance(solver, str):
        _check_value("solver", None, solver)
    else:
        solver = None
    if not axes:
        raise InputError("sweep has no axes: give at least one list of values (sizes, N1, gamma, "
                         "n_thermal, temperature, kappa, initial, seed, ntraj or solver)")
    return mode, solver, axes


def _check_value(key, k, value):
    """Checks of one axis value that need no chain (the rest: parse_config per point)."""
    where = f"sweep.{key}" + ("" if k is None else f"[{k}]")
    if key == "solver":
        if value not in SOLVERS:
            raise InputError(_unknown_solver(where, value))
    elif _DOMAIN_AXIS.match(key) or key in ("seed", "ntraj"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} must be an integer, got {show_value(value)}")
        low = 0 if key == "seed" else 1
        if value < low:
            raise InputError(f"{where} must be {'non-negative' if low == 0 else 'positive'}, "
                             f"got {value}")
    elif key in ("sizes", "initial"):
        if not isinstance(value, list) or not value:
            raise InputError(f"{where} must be a non-empty list (one item per domain), "
                             f"got {show_value(value)}")
    elif isinstance(value, (bool, str, dict)):
        raise InputError(f"{where} must be a number or a list of numbers, got {show_value(value)}")


def _unknown_solver(where, value):
    text = f"{where} must be one of {', '.join(map(repr, SOLVERS))}, got {show_value(value)}"
    if isinstance(value, str):
        hint = unknown_key(value.replace(" ", "_"), set(SOLVERS))
        if "did you mean" in hint:
            text += "; did you mean " + hint.split("did you mean ")[1]
    return text


def _expand(mode, axes):
    """(shape, dims, [ {axis: value} per point ]) in C order (grid) or list order."""
    names = list(axes)
    lengths = [len(axes[n]) for n in names]
    if mode == "list":
        if len(set(lengths)) != 1:
            text = ", ".join(f"{n}: {m}" for n, m in zip(names, lengths))
            raise InputError(f"sweep.mode = \"list\" needs axes of equal length, got {text}")
        return (lengths[0],), ("point",), [{n: axes[n][k] for n in names}
                                          for k in range(lengths[0])]
    total = math.prod(lengths)
    if total > MAX_POINTS:
        grid = " x ".join(map(str, lengths))
        raise InputError(f"sweep grid {grid} has {total} points, more than {MAX_POINTS}; "
                         f"split it into several sweeps")
    combos = [{}]
    for n in names:
        combos = [dict(c, **{n: v}) for c in combos for v in axes[n]]
    return tuple(lengths), tuple(names), combos


def _check_observables(base):
    obs = base.get("run", {}).get("observables") if isinstance(base.get("run"), dict) else None
    if obs is not None and obs != ["jz"]:
        raise InputError("run.observables does not apply to a sweep (it records <J_i^z> "
                         "only); remove it")


def _fill_defaults(base, solvers):
    """Placeholders for tables the sweep's solvers do not use (steady: no [times]; no
    trajectories: no run.ntraj / run.seed), so that parse_config checks the rest."""
    if "times" not in base and not solvers & set(TIME_SOLVERS):
        base["times"] = {"values": [0.0]}
    if "trajectories" not in solvers:
        run = base.setdefault("run", {})
        if isinstance(run, dict):
            run.setdefault("ntraj", 1)
            run.setdefault("seed", 0)


def _point(index, base, combo, solver, total):
    """Apply one point's values to a copy of the base document and validate it."""
    doc = copy.deepcopy(base)
    coords = {}
    for key, value in combo.items():
        coords[key] = value
        if key == "solver":
            continue
        match = _DOMAIN_AXIS.match(key)
        if match:
            sizes = doc.get("chain", {}).get("sizes")
            i = int(match.group(1))
            if not isinstance(sizes, list) or len(sizes) < i:
                raise InputError(f"sweep.{key} needs chain.sizes with at least {i} domains "
                                 f"(the other sizes), got {show_value(sizes)}")
            sizes[i - 1] = value
            continue
        table, name = AXES[key]
        if not isinstance(doc.setdefault(table, {}), dict):
            raise InputError(f"{table} must be a table [{table}], got {show_value(doc[table])}")
        doc[table][name] = copy.deepcopy(value)
        if key == "temperature":
            doc[table].pop("n_thermal", None)
        elif key == "n_thermal":
            doc[table].pop("temperature", None)
    try:
        config = parse_config(doc, source="<sweep point>")
    except InputError as exc:
        where = ", ".join(f"{k}={_short(v)}" for k, v in coords.items())
        raise InputError(f"sweep point {index + 1} of {total} ({where}): {exc}") from None
    coords.setdefault("solver", solver)
    return SweepPoint(index, coords, solver, config)


def _plain(value):
    """Tuples and NumPy arrays / scalars (from Python callers) as plain lists and numbers."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _short(value):
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."
