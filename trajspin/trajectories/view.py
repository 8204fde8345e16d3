"""What every single-trajectory class shows the same way: <J_i^z>/N_i and its plot."""
from __future__ import annotations

import numpy as np

from trajspin.results.plotting import plot_trajectory


def observable_dict(obs, M, names, parts):
    """{name: conditional values} of one trajectory's observable rows.

    obs : ndarray (T, F), the kernel's rows (<J_i^z> in columns 0..M-1); names : the
    requested names (``trajspin.observables.check_observables``); parts : {name: (start, stop,
    shape per time)} (``trajspin.trajectories.tables.observable_layout``).  jz_var is formed as
    jz2 - jz^2.  Each value is a copy, time first.
    """
    T = obs.shape[0]
    out = {"jz": obs[:, :M].copy()}
    for name, (a, z, shape) in parts.items():
        out[name] = obs[:, a:z].reshape((T,) + shape).copy()
    if "jz_var" in names:
        out["jz_var"] = out["jz2"] - out["jz"] ** 2
    return {k: v for k, v in out.items() if k in names}


class TrajectoryView:
    """Mixin of ``Trajectory`` and ``KrylovTrajectory`` (both hold ``chain``, ``jz`` and the
    dict ``observables``, whose entries are also attributes).

    Attributes
    ----------
    jz_over_n : ndarray, shape (T, M)
        Conditional <J_i^z>/N_i: ``jz`` divided by the domain sizes.
    """

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
