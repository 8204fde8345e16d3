"""The chain of spin domains that trajspin simulates.

M domains of N_i spin-1/2 each; neighbouring domains c and c+1 share
reservoir c, whose collective jump operator is

    L_c = J_c^- + J_{c+1}^-,        c = 0 .. M-2,

with emission rate gamma_c (n_c + 1) and, at finite temperature, absorption
L_c^dag at rate gamma_c n_c (n_c the reservoir's thermal occupation).  Each
domain may also have a reservoir of its own: J_i^- at rate kappa_i (nl_i + 1)
and J_i^+ at rate kappa_i nl_i.  The master equation is

    drho/dt = -i omega0 sum_i [J_i^z, rho] + sum_k r_k (O_k rho O_k^dag - {O_k^dag O_k, rho}/2)

over all these channels O_k with rates r_k (paper eq. 3, whose D[O] = 2 O rho O^dag - ...
comes with gamma_c / 2).  Reservoir rates may follow a piecewise-constant schedule
(``Schedule``): reservoir c's channels are multiplied by a factor per time interval.
"""

from __future__ import annotations

import numbers

import numpy as np

from trajspin.channels import channels_of
from trajspin.errors import InputError, NumericalError  # noqa: F401  (re-exported)
from trajspin.sectors import sector_basis

__all__ = ["Chain", "InputError", "Schedule", "thermal_occupation", "HBAR", "K_B"]

# SI constants (CODATA 2018, exact)
HBAR = 1.054571817e-34     # J s
K_B = 1.380649e-23         # J / K


# Rates times (sum N_i + 1)^2 bound the generator's entries and exponents: float64 holds
# them with room to spare between these limits (gamma = 1e308 once gave trace 0, 1e-320 a
# division by zero).
RATE_MIN, RATE_MAX = 1e-100, 1e100


def _as_int(value, what):
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{what} must be an integer, got the boolean {value!r}")
    if not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return int(value)
        raise InputError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _per_item(value, count, what, *, allow_zero=False, per="reservoir"):
    """Broadcast a scalar or check a sequence of `count` finite rates."""
    flat = value if isinstance(value, (list, tuple)) else [value]
    if any(isinstance(v, (bool, np.bool_, str, bytes, complex, np.complexfloating)) for v in flat):
        raise InputError(f"{what} must be real numbers, got {value!r}")
    try:
        arr = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a real number or a sequence of them, got {value!r}") from None
    if arr.ndim != 1:
        raise InputError(f"{what} must be a scalar or a 1-d sequence")
    if arr.size == 1:
        arr = np.full(count, arr[0])
    if arr.size != count:
        raise InputError(f"{what} needs one value per {per}: expected {count}, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what} must be finite, got {arr.tolist()}")
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        kind = "non-negative" if allow_zero else "positive"
        raise InputError(f"{what} must be {kind}, got {arr.tolist()}")
    return arr




def _check_rate_range(chain):
    """Refuse rates whose products with (sum N_i + 1)^2 leave [RATE_MIN, RATE_MAX] (float64)."""
    scale = (sum(chain.sizes) + 1.0) ** 2
    for what, rate, occ, occ_name in (("gamma", chain.gamma, chain.n_thermal, "n_thermal"),
                                      ("kappa", chain.kappa, chain.n_thermal_local,
                                       "n_thermal_local")):
        for i, (r, n) in enumerate(zip(rate, occ)):
            if r == 0:
                continue
            with np.errstate(over="ignore"):
                top = r * (1.0 + 2.0 * n) * scale
            if r < RATE_MIN or not top <= RATE_MAX:
                raise InputError(
                    f"{what}[{i}] = {r:g} ({occ_name} {n:g}) is out of range: need {what} >= "
                    f"{RATE_MIN:g} and {what} (1 + 2 n) (sum N_i + 1)^2 <= {RATE_MAX:g}, got "
                    f"{top:.3g}; measure time in other units (times are in units of 1/gamma)")


def thermal_occupation(temperature, omega0):
    """Bose occupation n = 1 / (exp(hbar omega0 / (k_B T)) - 1) of a reservoir mode.

    Parameters
    ----------
    temperature : float or ndarray
        Kelvin (T = 0 gives n = 0).
    omega0 : float
        Angular frequency of the spins in rad/s (omega0 = 2 pi f; 10 GHz is 2 pi 1e10).

    Returns
    -------
    ndarray, shape of ``temperature``
        Mean number of quanta in the mode (dimensionless, >= 0).

    Examples
    --------
    >>> round(float(thermal_occupation(1.6, 2 * np.pi * 1e10)), 4)     # paper Fig. S1
    2.8588
    """
    T = np.asarray(temperature, dtype=float)
    with np.errstate(divide="ignore", over="ignore"):
        x = HBAR * omega0 / (K_B * T)
        n = np.where(T > 0, 1.0 / np.expm1(np.where(T > 0, x, 1.0)), 0.0)
    return n


class Schedule:
    """Piecewise-constant switching of the shared reservoirs.

    Interval p is [switch_times[p-1], switch_times[p]) (the first starts at t = 0, the last
    never ends); during it every channel of reservoir c (emission and absorption) has its
    rate multiplied by ``factors[p, c]`` (1 open, 0 closed; any non-negative factor works).
    Local (per-domain) reservoirs are not scheduled.

    Parameters
    ----------
    switch_times : sequence of float, shape (P-1,)
        Interval edges, units of 1/gamma; strictly increasing, > 0.
    factors : array_like, shape (P, M-1)
        Rate factor of each shared reservoir in each interval (dimensionless, >= 0).

    Examples
    --------
    Open reservoir 1 until t = 2, then only reservoir 2:

    >>> s = Schedule([2.0], [[1, 0], [0, 1]])
    >>> s.piece(1.0), s.piece(2.0)
    (0, 1)
    """

    def __init__(self, switch_times, factors):
        try:
            t = np.atleast_1d(np.asarray(switch_times, dtype=float))
            f = np.asarray(factors, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"schedule: switch_times must be numbers and factors a table of "
                             f"numbers (one row per interval, one column per reservoir), got "
                             f"{switch_times!r} and {factors!r}") from None
        if f.ndim == 1:
            f = f[None, :]
        if t.ndim != 1 or f.ndim != 2:
            raise InputError("schedule: switch_times must be 1-d and factors 2-d (pieces x reservoirs)")
        if f.shape[0] != t.size + 1:
            raise InputError(f"schedule: {t.size} switch times make {t.size + 1} intervals, "
                             f"but factors has {f.shape[0]} rows")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(f))):
            raise InputError("schedule: switch times and factors must be finite")
        if t.size and (t[0] <= 0 or np.any(np.diff(t) <= 0)):
            raise InputError(f"schedule: switch times must be > 0 and strictly increasing, got {t.tolist()}")
        if np.any(f < 0):
            raise InputError(f"schedule: factors must be non-negative, got {f.tolist()}")
        self.switch_times = t
        self.factors = f
        self.switch_times.flags.writeable = False
        self.factors.flags.writeable = False

    @property
    def n_pieces(self) -> int:
        """Number P of constant intervals (switch times + 1)."""
        return self.factors.shape[0]

    @property
    def starts(self) -> np.ndarray:
        """Start time of each interval, shape (P,) (0 first)."""
        return np.concatenate([[0.0], self.switch_times])

    def piece(self, t) -> int:
        """Index of the interval that holds time t (a switch time belongs to the new interval)."""
        return int(np.searchsorted(self.switch_times, t, side="right"))

    def check(self, n_reservoirs):
        """This schedule, after checking it has one factor column per shared reservoir."""
        if self.factors.shape[1] != n_reservoirs:
            raise InputError(f"schedule: factors need one column per shared reservoir "
                             f"({n_reservoirs}), got {self.factors.shape[1]}")
        return self

    def to_dict(self) -> dict:
        """Plain lists that recreate the schedule (``Schedule(**d)``)."""
        return {"switch_times": self.switch_times.tolist(), "factors": self.factors.tolist()}

    @classmethod
    def from_dict(cls, d):
        """The schedule of :meth:`to_dict` (result headers, configs).

        Parameters
        ----------
        d : dict
            ``{"switch_times": [...] (P-1 times, units of 1/gamma), "factors": [[...]] (P rows
            of M-1 factors)}``.

        Returns
        -------
        Schedule
        """
        return cls(d["switch_times"], d["factors"])

    def __eq__(self, other):
        return (isinstance(other, Schedule) and np.array_equal(self.switch_times, other.switch_times)
                and np.array_equal(self.factors, other.factors))

    def __hash__(self):
        return hash((tuple(self.switch_times), tuple(self.factors.ravel())))

    def __repr__(self):
        return f"Schedule({self.switch_times.tolist()}, {self.factors.tolist()})"


class Chain:
    """A chain of M >= 2 spin domains coupled through shared reservoirs.

    Parameters
    ----------
    sizes : sequence of int, length M
        Number of spins N_i in each domain (each >= 1).
    gamma : float or sequence of float, length M-1
        Collective rate gamma_c of reservoir c (shared by domains c and c+1).  Times are
        measured in the units of 1/gamma.
    n_thermal : float or sequence of float, length M-1, optional
        Thermal occupation n_c of reservoir c: emission L_c at rate gamma_c (n_c + 1),
        absorption L_c^dag at rate gamma_c n_c.  Default 0 (zero temperature).
    kappa : float or sequence of float, length M, optional
        Rate of each domain's own collective reservoir (J_i^- at kappa_i (nl_i + 1),
        J_i^+ at kappa_i nl_i).  Default 0 (none).
    n_thermal_local : float or sequence of float, length M, optional
        Thermal occupation nl_i of the local reservoirs.  Default 0.
    temperature, temperature_local : float or sequence, optional
        Kelvin; set ``n_thermal`` (``n_thermal_local``) through
        n = 1/(exp(hbar omega0/(k_B T)) - 1).  ``temperature_local`` defaults to
        ``temperature`` when that is one number.  Needs ``omega0``.
    omega0 : float, optional
        Spin angular frequency in rad/s (SI), used only to turn temperatures into n.
    schedule : Schedule or (switch_times, factors), optional
        Piecewise-constant switching of the shared reservoirs.

    Attributes
    ----------
    sizes : tuple of int
    gamma, n_thermal : ndarray, shape (M-1,)
    kappa, n_thermal_local : ndarray, shape (M,)
    schedule : Schedule or None
    M : int
        Number of domains.

    Examples
    --------
    >>> chain = Chain([12, 6, 2])
    >>> chain.M, chain.gamma.tolist()
    (3, [1.0, 1.0])
    >>> hot = Chain([20, 2], temperature=1.6, omega0=2 * np.pi * 1e10)
    >>> round(float(hot.n_thermal[0]), 3)
    2.859
    """

    def __init__(self, sizes, gamma=1.0, n_thermal=None, kappa=0.0, n_thermal_local=None,
                 temperature=None, temperature_local=None, omega0=None, schedule=None,
                 _allow_empty=False):
        try:
            sizes = list(sizes)
        except TypeError:
            raise InputError(f"sizes must be a sequence of domain sizes, got {sizes!r}") from None
        sizes = tuple(_as_int(n, "each domain size") for n in sizes)
        if len(sizes) < 2:
            raise InputError(f"a chain needs at least 2 domains, got {len(sizes)}: sizes={list(sizes)}")
        if min(sizes) < (0 if _allow_empty else 1):
            raise InputError(f"every domain needs at least 1 spin, got sizes={list(sizes)}")
        self.sizes = sizes
        self.M = M = len(sizes)
        self.gamma = _per_item(gamma, M - 1, "gamma")
        self.kappa = _per_item(kappa, M, "kappa", allow_zero=True, per="domain")
        self.temperature = self.temperature_local = None
        self.omega0 = None if omega0 is None else float(omega0)
        if temperature is not None or temperature_local is not None:
            if n_thermal is not None or n_thermal_local is not None:
                raise InputError("give either temperature(s) or n_thermal, not both")
            if self.omega0 is None or not (np.isfinite(self.omega0) and self.omega0 > 0):
                raise InputError(f"a temperature needs omega0 > 0 in rad/s (e.g. 2*pi*10e9), got {omega0!r}")
            if temperature_local is None and temperature is not None and np.ndim(temperature) == 0:
                temperature_local = temperature
            if temperature is not None:
                self.temperature = _per_item(temperature, M - 1, "temperature", allow_zero=True)
                n_thermal = thermal_occupation(self.temperature, self.omega0)
            if temperature_local is not None:
                self.temperature_local = _per_item(temperature_local, M, "temperature_local",
                                                   allow_zero=True, per="domain")
                n_thermal_local = thermal_occupation(self.temperature_local, self.omega0)
        self.n_thermal = _per_item(0.0 if n_thermal is None else n_thermal, M - 1, "n_thermal",
                                   allow_zero=True)
        self.n_thermal_local = _per_item(0.0 if n_thermal_local is None else n_thermal_local, M,
                                         "n_thermal_local", allow_zero=True, per="domain")
        if schedule is not None and not isinstance(schedule, Schedule):
            if isinstance(schedule, dict):
                schedule = Schedule.from_dict(schedule)
            else:
                try:
                    schedule = Schedule(*schedule)
                except TypeError:
                    raise InputError("schedule must be a Schedule or (switch_times, factors)") from None
        self.schedule = None if schedule is None else schedule.check(M - 1)
        _check_rate_range(self)
        for a in (self.gamma, self.kappa, self.n_thermal, self.n_thermal_local):
            a.flags.writeable = False

    # --- what kind of dynamics ---------------------------------------------------------
    @property
    def has_absorption(self) -> bool:
        """True if some channel raises the excitation (finite temperature somewhere)."""
        return bool(np.any(self.n_thermal > 0) or np.any((self.kappa > 0) & (self.n_thermal_local > 0)))

    @property
    def has_local(self) -> bool:
        """True if some domain has a reservoir of its own (kappa_i > 0)."""
        return bool(np.any(self.kappa > 0))

    @property
    def is_paper_model(self) -> bool:
        """Zero temperature, shared reservoirs only, no schedule: paper eq. (3) itself."""
        return not (self.has_absorption or self.has_local or self.schedule is not None)

    def channels(self):
        """The jump channels of this chain (``trajspin.channels.Channels``)."""
        return channels_of(self)

    def effective(self, sizes2j):
        """The same reservoirs acting on domains of total spin j_i = sizes2j[i] / 2.

        Collective operators conserve each j_i; a domain of N_i spins in a sector j_i < N_i/2
        behaves as 2 j_i spins in their symmetric ladder (J_i^z = m_i is unchanged).
        """
        sizes2j = tuple(int(x) for x in sizes2j)
        if sizes2j == self.sizes:
            return self
        return Chain(sizes2j, gamma=self.gamma, n_thermal=self.n_thermal, kappa=self.kappa,
                     n_thermal_local=self.n_thermal_local, schedule=self.schedule, _allow_empty=True)

    @property
    def n_reservoirs(self) -> int:
        """Number of shared reservoirs, M - 1."""
        return self.M - 1

    @property
    def hilbert_dim(self) -> int:
        """Dimension prod(N_i + 1) of the coupled Dicke basis."""
        return int(np.prod([n + 1 for n in self.sizes], dtype=object))

    @property
    def sectors(self):
        """The excitation-sector basis (built once, then cached)."""
        return sector_basis(self)

    def default_excitations(self):
        """Paper eq. (4): domain 1 fully excited, the rest in the ground state."""
        return (self.sizes[0],) + (0,) * (self.M - 1)

    def to_qutip(self, initial=None):
        """QuTiP objects of this chain (needs the optional ``qutip`` package).

        Returns a dict with ``c_ops`` (collapse operators sqrt(rate) O_k, in the order of
        ``chain.channels()``), ``jz`` (list of J_i^z), ``H`` (omega0 = 1 times sum J_i^z, or 0),
        ``rho0`` (the initial state, see ``trajspin.initial``) and ``dims``, all on the
        coupled Dicke basis |n_1> x ... x |n_M> (n_i excitations, domain 1 first).
        Reservoir schedules are returned as ``c_ops_schedule`` (list of (start, c_ops)).
        """
        from trajspin.interop import to_qutip
        return to_qutip(self, initial)

    def to_dict(self) -> dict:
        """Plain parameters that recreate this chain."""
        d = {"sizes": list(self.sizes), "gamma": self.gamma.tolist()}
        if np.any(self.n_thermal):
            d["n_thermal"] = self.n_thermal.tolist()
        if np.any(self.kappa):
            d["kappa"] = self.kappa.tolist()
        if np.any(self.n_thermal_local):
            d["n_thermal_local"] = self.n_thermal_local.tolist()
        if self.temperature is not None:
            d["temperature"] = self.temperature.tolist()
        if self.temperature_local is not None:
            d["temperature_local"] = self.temperature_local.tolist()
        if self.omega0 is not None:
            d["omega0"] = self.omega0
        if self.schedule is not None:
            d["schedule"] = self.schedule.to_dict()
        return d

    @classmethod
    def from_dict(cls, d):
        """The chain of ``to_dict`` (result headers, configs): only the public keys."""
        if not isinstance(d, dict) or "sizes" not in d:
            raise InputError(f"a chain needs a dict with 'sizes', got {d!r}"[:200])
        allowed = {"sizes", "gamma", "n_thermal", "kappa", "n_thermal_local", "temperature",
                   "temperature_local", "omega0", "schedule"}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise InputError(f"unknown chain keys {unknown}; expected some of {sorted(allowed)}")
        d = dict(d)
        sizes = d.pop("sizes")
        if "temperature" in d or "temperature_local" in d:
            d.pop("n_thermal", None)
            d.pop("n_thermal_local", None)
        if "schedule" in d and isinstance(d["schedule"], dict):
            d["schedule"] = Schedule.from_dict(d["schedule"])
        return cls(sizes, **d)

    def _key(self):
        return (self.sizes, tuple(self.gamma), tuple(self.n_thermal), tuple(self.kappa),
                tuple(self.n_thermal_local), self.schedule)

    def __eq__(self, other):
        return isinstance(other, Chain) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        def txt(a):
            return f"{a[0]:g}" if np.all(a == a[0]) else str([float(f"{x:.6g}") for x in a])
        extra = ""
        if self.temperature is not None:
            extra += f", temperature={txt(self.temperature)} K"
        if np.any(self.n_thermal):
            extra += f", n_thermal={txt(self.n_thermal)}"
        if np.any(self.kappa):
            extra += f", kappa={txt(self.kappa)}"
            if np.any(self.n_thermal_local):
                extra += f", n_thermal_local={txt(self.n_thermal_local)}"
        if self.schedule is not None:
            extra += f", schedule={self.schedule!r}"
        return f"Chain(sizes={list(self.sizes)}, gamma={txt(self.gamma)}{extra})"
