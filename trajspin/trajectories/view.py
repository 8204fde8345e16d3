"""What every single-trajectory class shows the same way: <J_i^z>/N_i and its plot."""
from __future__ import annotations

import numpy as np

from trajspin.results.plotting import plot_trajectory


class TrajectoryView:
    """Mixin of ``Trajectory`` and ``KrylovTrajectory`` (both hold ``chain`` and ``jz``).

    Attributes
    ----------
    jz_over_n : ndarray, shape (T, M)
        Conditional <J_i^z>/N_i: ``jz`` divided by the domain sizes.
    """

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
