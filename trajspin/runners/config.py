"""TOML configs of trajectory-ensemble batch runs (``mpi_scripts/run_ensemble.py``).

A config names the chain, the time grid, the ensemble and the checkpoint::

    description = "Fig. 2(b): three domains"      # optional, free text

    [chain]
    sizes = [12, 6, 2]          # N_i, one per domain
    gamma = 1.0                 # optional: one rate, or one per reservoir (M - 1)
    n_thermal = 0.0             # optional: thermal occupation, one or one per reservoir
    # temperature = 1.6         # optional instead of n_thermal: kelvin, needs omega0 (rad/s)
    # omega0 = 6.283185307e10   #   (2 pi x 10 GHz)
    kappa = 0.0                 # optional: local reservoir rate of each domain (one or M)
    n_thermal_local = 0.0       # optional: their thermal occupation (one or M)
    # [chain.schedule]          # optional: switch reservoirs on/off (piecewise constant)
    # switch_times = [2.0]      #   interval edges (units of 1/gamma), increasing
    # factors = [[1, 0], [0, 1]]  # rate factor of each reservoir in each interval

    [times]                     # either a grid spec ...
    start = 1e-4
    stop = 1e3
    points = 400
    spacing = "log"             # or "linear" (default "log")
    # values = [0.0, 0.5, 1.0]  # ... or explicit, increasing times (units of 1/gamma)

    [run]
    ntraj = 20000               # trajectories (with target_err: the minimum)
    seed = 1
    chunk = 256                 # optional: trajectories per accumulation chunk
    initial = [6, 0, 0]         # optional, one item per domain (default: domain 1 full):
                                # n (Dicke state with n excitations), "excited", "ground",
                                # "half", "up:k" (k of N spins up), "coherent:theta"
    # initial_vector = "psi.npy"  # optional instead: a state vector (coupled Dicke basis)
    observables = ["jz"]        # optional: jz, jz2, jz_var, n_dist, coherence,
                                # channel_rates, reservoir_rates
    method = "auto"             # optional: "dense", "krylov" (matrix-free, large sectors) or "auto"
    target_err = 1e-3           # optional: stop when max standard error of <J_i^z>/N_i <= this
    max_ntraj = 200000          # optional, with target_err only (default 100 * ntraj)

    [output]
    records = "none"            # per-trajectory jump records: "none", "summaries" or "full"
                                # (trajspin.demon.load_records reads them back)

    [checkpoint]
    path = "run.ckpt.npz"       # optional (default: next to the result file)
    interval_seconds = 60       # optional

Every problem (unknown key, wrong type, out-of-range value, a chain or initial
state the engine would refuse) raises :class:`trajspin.InputError` with one line
that names the key, before any work starts.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field

import numpy as np

from trajspin.errors import InputError

from trajspin.grids import time_grid
from trajspin.initial import resolve_initial
from trajspin.model import Chain
from trajspin.observables import check_observables
from trajspin.trajectories.plan import DEFAULT_CHUNK, METHODS
from trajspin.validation import MAX_SEED, check_times
from trajspin.version import __version__

__all__ = ["EnsembleConfig", "load_config", "read_toml", "unknown_key", "show_value", "parse_config", "RECORD_KINDS", "DEFAULT_CHUNK",
           "DEFAULT_CHECKPOINT_INTERVAL"]

DEFAULT_CHECKPOINT_INTERVAL = 60.0
RECORD_KINDS = ("none", "summaries", "full")
_IMPLEMENTED_RECORDS = RECORD_KINDS
_MAX_POINTS = 10**7

_SCHEMA = {
    "description": None,
    "chain": {"sizes", "gamma", "n_thermal", "kappa", "n_thermal_local", "temperature",
              "temperature_local", "omega0", "schedule"},
    "times": {"start", "stop", "points", "spacing", "values"},
    "run": {"ntraj", "seed", "chunk", "initial", "initial_vector", "observables", "target_err",
            "max_ntraj", "method"},
    "output": {"records"},
    "checkpoint": {"path", "interval_seconds"},
}
_REQUIRED = {"chain": ("sizes",), "run": ("ntraj", "seed")}


@dataclass(frozen=True, eq=False)
class EnsembleConfig:
    """A validated batch-run config.

    Attributes
    ----------
    sizes : tuple of int            domain sizes N_i
    gamma : tuple of float          rate of each reservoir (length M - 1)
    times : ndarray, shape (T,)     output times, units of 1/gamma
    ntraj, seed, chunk : int
    initial : tuple                 one item per domain (int n_i or a string such as "up:3"),
                                    or the path of a .npy state vector (``initial_vector``)
    chain_params : dict             ``Chain.to_dict()`` of the chain (all reservoir parameters)
    observables : tuple of str      observables to average (``trajspin.observables``)
    target_err : float or None
    max_ntraj : int                 largest ntraj (== ntraj without target_err)
    records : str                   "none", "summaries" or "full" (jump records in the result)
    checkpoint_path : str or None   None: derived from the result path
    checkpoint_interval : float     seconds between checkpoints
    description : str
    source : str                    file the config was read from
    raw : dict                      the TOML document as read
    """

    sizes: tuple
    gamma: tuple
    times: np.ndarray
    ntraj: int
    seed: int
    chunk: int
    initial: tuple
    target_err: float | None
    max_ntraj: int
    records: str
    checkpoint_path: str | None
    checkpoint_interval: float
    description: str = ""
    source: str = "<config>"
    raw: dict = field(default_factory=dict)
    chain_params: dict = field(default_factory=dict)
    observables: tuple = ("jz",)
    method: str = "auto"

    def chain(self) -> Chain:
        if self.chain_params:
            return Chain.from_dict(self.chain_params)
        return Chain(self.sizes, gamma=list(self.gamma))

    def initial_request(self):
        """What to pass as ``initial=`` to the solvers (a list of items or a state vector)."""
        if isinstance(self.initial, str):
            return np.load(self.initial)
        return list(self.initial)

    @property
    def basis_initial(self):
        """Excitations n_i when the initial state is one coupled Dicke basis state, else None."""
        return resolve_initial(self.chain(), self.initial_request()).basis_state

    def physics(self) -> dict:
        """Everything that determines the result arrays (what a checkpoint must match).

        The time grid enters through the SHA-256 of its float64 bytes.
        """
        return {
            "chain.sizes": list(self.sizes),
            "chain.gamma": list(self.gamma),
            **{f"chain.{k}": v for k, v in self.chain_params.items() if k not in ("sizes", "gamma")},
            "times": f"{self.times.size} points, sha256 "
                     + hashlib.sha256(np.ascontiguousarray(self.times, "<f8").tobytes()).hexdigest()[:16],
            "run.ntraj": self.ntraj,
            "run.seed": self.seed,
            "run.chunk": self.chunk,
            "run.initial": self.initial_text(),
            "run.target_err": self.target_err,
            "run.max_ntraj": self.max_ntraj,
            "trajspin version": __version__,
        } | ({"output.records": self.records} if self.records != "none" else {}) | (
            {"run.method": self.method} if self.method != "auto" else {}) | (
            {"run.observables": list(self.observables)} if self.observables != ("jz",) else {})

    def initial_text(self):
        if isinstance(self.initial, str):
            with open(self.initial, "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()[:16]
            return f"vector {self.initial} sha256 {digest}"
        return list(self.initial)

    def config_hash(self) -> str:
        """SHA-256 (hex) of :meth:`physics`."""
        text = json.dumps(self.physics(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict:
        """JSON-ready summary for result files (the time grid by its spec when it had one)."""
        times = self.raw.get("times", {})
        return {
            "source": self.source,
            "description": self.description,
            "chain": self.chain_params or {"sizes": list(self.sizes), "gamma": list(self.gamma)},
            "times": dict(times) if "values" not in times else {"values": self.times.tolist()},
            "run": {"ntraj": self.ntraj, "seed": self.seed, "chunk": self.chunk,
                    "initial": self.initial_text(), "target_err": self.target_err,
                    "max_ntraj": self.max_ntraj, "observables": list(self.observables),
                    "method": self.method},
            "output": {"records": self.records},
            "checkpoint": {"path": self.checkpoint_path, "interval_seconds": self.checkpoint_interval},
        }


def read_toml(path) -> dict:
    """The parsed TOML document at ``path`` (raises InputError with one line)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"config file {path} is a directory") from None
    except OSError as exc:
        raise InputError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: invalid TOML: not UTF-8 text") from None


def load_config(path) -> EnsembleConfig:
    """Read and validate a TOML config file (raises InputError with one line)."""
    path = os.fspath(path)
    return parse_config(read_toml(path), source=path)


def parse_config(data: dict, source: str = "<config>") -> EnsembleConfig:
    """Validate a parsed TOML document (a dict) into an :class:`EnsembleConfig`."""
    _check_keys(data)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise InputError(f"description must be a string, got {show_value(description)}")

    chain_t = data.get("chain", {})
    sizes = _int_list(chain_t["sizes"], "chain.sizes", low=1)
    if len(sizes) < 2:
        raise InputError(f"chain.sizes needs at least 2 domains, got {sizes}")
    gamma = chain_t.get("gamma", 1.0)
    if isinstance(gamma, list):
        gamma = [_number(g, f"chain.gamma[{i}]", positive=True) for i, g in enumerate(gamma)]
        if len(gamma) not in (1, len(sizes) - 1):
            raise InputError(f"chain.gamma needs 1 value or one per reservoir ({len(sizes) - 1}), "
                             f"got {len(gamma)}")
    else:
        gamma = [_number(gamma, "chain.gamma", positive=True)]
    extra = {}
    for key in ("n_thermal", "kappa", "n_thermal_local", "temperature", "temperature_local"):
        if key in chain_t:
            vals = _numbers(chain_t[key], f"chain.{key}", nonnegative=True)
            extra[key] = vals[0] if not isinstance(chain_t[key], list) else vals
    if "omega0" in chain_t:
        extra["omega0"] = _number(chain_t["omega0"], "chain.omega0", positive=True)
    if "schedule" in chain_t:
        sched = chain_t["schedule"]
        if not isinstance(sched, dict) or set(sched) - {"switch_times", "factors"} or "factors" not in sched:
            raise InputError("chain.schedule must be a table with switch_times = [...] and "
                             "factors = [[...], ...] (one row per interval)")
        switch = _numbers(sched.get("switch_times", []), "chain.schedule.switch_times", allow_empty=True)
        rows = sched["factors"]
        if not isinstance(rows, list) or not rows:
            raise InputError(f"chain.schedule.factors must be a list of rows, got {show_value(rows)}")
        factors = [_numbers(r, f"chain.schedule.factors[{i}]", nonnegative=True)
                   for i, r in enumerate(rows)]
        if len({len(r) for r in factors}) != 1:
            raise InputError("chain.schedule.factors: every row needs the same length (M - 1)")
        extra["schedule"] = (switch, factors)
    try:
        chain = Chain(sizes, gamma=gamma, **extra)
    except InputError as exc:
        raise InputError(f"chain: {exc}") from None

    times = _times(data.get("times"))

    run = data.get("run", {})
    ntraj = _integer(run["ntraj"], "run.ntraj", low=1)
    seed = _integer(run["seed"], "run.seed", low=0, high=MAX_SEED - 1)
    chunk = _integer(run.get("chunk", DEFAULT_CHUNK), "run.chunk", low=1)
    if "initial" in run and "initial_vector" in run:
        raise InputError("give run.initial or run.initial_vector, not both")
    if "initial_vector" in run:
        initial = run["initial_vector"]
        if not isinstance(initial, str) or not initial.strip():
            raise InputError(f"run.initial_vector must be the path of a .npy file, got {show_value(initial)}")
        try:
            request = np.load(initial)
        except (OSError, ValueError) as exc:
            raise InputError(f"run.initial_vector: cannot read {initial}: {exc}") from None
    elif "initial" in run:
        items = run["initial"]
        if not isinstance(items, list) or not items:
            raise InputError(f"run.initial must be a list with one item per domain, got {show_value(items)}")
        for i, v in enumerate(items):
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                raise InputError(f"run.initial[{i}] must be an integer or a string such as "
                                 f"\"up:3\", got {show_value(v)}")
        initial = request = tuple(items)
    else:
        initial = request = tuple(chain.default_excitations())
    try:
        resolve_initial(chain, list(request) if isinstance(request, tuple) else request)
    except InputError as exc:
        raise InputError(f"run.initial: {exc}") from None
    obs = run.get("observables", ["jz"])
    if not isinstance(obs, list) or not all(isinstance(o, str) for o in obs):
        raise InputError(f"run.observables must be a list of names, got {show_value(obs)}")
    try:
        observables = check_observables(obs, solver="trajectories")
    except InputError as exc:
        raise InputError(f"run.observables: {exc}") from None
    method = run.get("method", "auto")
    if method not in METHODS:
        raise InputError(f"run.method must be one of {', '.join(map(repr, METHODS))}, got {show_value(method)}")
    target_err = None
    if "target_err" in run:
        target_err = _number(run["target_err"], "run.target_err", positive=True)
    if "max_ntraj" in run:
        if target_err is None:
            raise InputError("run.max_ntraj only applies together with run.target_err")
        max_ntraj = _integer(run["max_ntraj"], "run.max_ntraj", low=ntraj)
    else:
        max_ntraj = 100 * ntraj if target_err is not None else ntraj

    records = data.get("output", {}).get("records", "none")
    if not isinstance(records, str) or records not in RECORD_KINDS:
        raise InputError(f"output.records must be one of {', '.join(map(repr, RECORD_KINDS))}, "
                         f"got {show_value(records)}")
    if records not in _IMPLEMENTED_RECORDS:
        raise InputError(f"output.records = {records!r} is not implemented yet (the trajectory "
                         f"kernel does not return per-trajectory records to the runner); use \"none\"")

    ck = data.get("checkpoint", {})
    ck_path = ck.get("path")
    if ck_path is not None and (not isinstance(ck_path, str) or not ck_path.strip()):
        raise InputError(f"checkpoint.path must be a non-empty string, got {show_value(ck_path)}")
    interval = _number(ck.get("interval_seconds", DEFAULT_CHECKPOINT_INTERVAL),
                       "checkpoint.interval_seconds", positive=True)

    return EnsembleConfig(sizes=tuple(sizes), gamma=tuple(float(g) for g in chain.gamma),
                          times=times, ntraj=ntraj, seed=seed, chunk=chunk,
                          initial=initial if isinstance(initial, str) else tuple(initial),
                          target_err=target_err, max_ntraj=max_ntraj, records=records,
                          checkpoint_path=ck_path, checkpoint_interval=interval,
                          description=description, source=source, raw=data,
                          chain_params=chain.to_dict(), observables=observables, method=method)


def _times(spec):
    if spec is None:
        raise InputError("missing table [times] (give start, stop, points[, spacing] or values)")
    if "values" in spec:
        extra = sorted(set(spec) - {"values"})
        if extra:
            raise InputError(f"times.values cannot be combined with times.{extra[0]}")
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise InputError(f"times.values must be a non-empty list of numbers, got {show_value(values)}")
        vals = [_number(v, f"times.values[{i}]") for i, v in enumerate(values)]
        try:
            return check_times(vals)
        except InputError as exc:
            raise InputError(f"times.values: {exc}") from None
    for key in ("start", "stop", "points"):
        if key not in spec:
            raise InputError(f"missing key times.{key} (or give times.values)")
    spacing = spec.get("spacing", "log")
    if spacing not in ("log", "linear"):
        raise InputError(f"times.spacing must be \"log\" or \"linear\", got {show_value(spacing)}")
    start = _number(spec["start"], "times.start", nonnegative=True)
    if spacing == "log" and start <= 0:
        raise InputError(f"times.start must be positive for spacing = \"log\", got {start:g}")
    stop = _number(spec["stop"], "times.stop")
    points = _integer(spec["points"], "times.points", low=1, high=_MAX_POINTS)
    if stop < start or (stop == start and points > 1):
        raise InputError(f"times.stop must be larger than times.start ({start:g}), got {stop:g}")
    try:
        return check_times(time_grid(stop, points, start, spacing))
    except InputError as exc:
        raise InputError(f"times: {exc} (too many points for the range?)") from None


def _check_keys(data):
    for key, value in data.items():
        if key not in _SCHEMA:
            raise InputError(unknown_key(key, _SCHEMA))
        allowed = _SCHEMA[key]
        if allowed is None:
            continue
        if not isinstance(value, dict):
            raise InputError(f"{key} must be a table [{key}], got {show_value(value)}")
        for sub in value:
            if sub not in allowed:
                raise InputError(unknown_key(f"{key}.{sub}", {f"{key}.{a}" for a in allowed}))
    for table, keys in _REQUIRED.items():
        if table not in data:
            raise InputError(f"missing table [{table}] (needs {', '.join(f'{table}.{k}' for k in keys)})")
        for k in keys:
            if k not in data[table]:
                raise InputError(f"missing key {table}.{k}")


def unknown_key(key, allowed) -> str:
    """The one-line message for a key not in ``allowed``, with the closest one if any."""
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(sorted(allowed))}"
    return f"unknown key {key!r}{hint}"


def show_value(value) -> str:
    """A short text of a config value and its TOML type, for error messages."""
    kind = type(value).__name__
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({kind})"


def _integer(value, key, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{key} must be an integer, got {show_value(value)}")
    if low is not None and value < low:
        what = {0: "non-negative", 1: "positive"}.get(low, f">= {low}")
        raise InputError(f"{key} must be {what}, got {value}")
    if high is not None and value > high:
        raise InputError(f"{key} must be <= {high}, got {value}")
    return value


def _number(value, key, positive=False, nonnegative=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{key} must be a number, got {show_value(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{key} must be finite, got {value}")
    if positive and value <= 0:
        raise InputError(f"{key} must be positive, got {value:g}")
    if nonnegative and value < 0:
        raise InputError(f"{key} must be non-negative, got {value:g}")
    return value


def _numbers(value, key, nonnegative=False, allow_empty=False):
    """One number or a list of numbers (each checked) as a list."""
    if isinstance(value, list):
        if not value and not allow_empty:
            raise InputError(f"{key} must be a number or a non-empty list of numbers")
        return [_number(v, f"{key}[{i}]", nonnegative=nonnegative) for i, v in enumerate(value)]
    return [_number(value, key, nonnegative=nonnegative)]


def _int_list(value, key, low=None):
    if not isinstance(value, list) or not value:
        raise InputError(f"{key} must be a non-empty list of integers, got {show_value(value)}")
    return [_integer(v, f"{key}[{i}]", low=low) for i, v in enumerate(value)]
