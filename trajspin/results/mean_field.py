"""The result of the mean-field solver: the kept moments against time."""
from __future__ import annotations

import numpy as np

from trajspin.errors import InputError
from trajspin.results.base import MasterResult, format_table

__all__ = ["MeanFieldResult"]


class MeanFieldResult(MasterResult):
    """Mean-field evolution of the moments.

    Attributes
    ----------
    times : ndarray, shape (T,)
    jz : ndarray, shape (T, M)
        Unnormalised <J_i^z>(t).
    moments : ndarray, shape (T, n)
        All kept moments <X_k>(t) (unscaled), named by ``labels``.
    labels : list of str
        e.g. 'J1z', 'J1+ J2-' (= <A>/2 in the paper's notation), 'J1z J2+ J3-'.
    chain : Chain
    meta : dict   (initial, closure, n_thermal, solver, wall time, versions)
    """

    kind = "mean_field"
    _arrays = ("times", "jz", "moments")

    def __init__(self, chain, times, moments, labels, meta=None):
        moments = np.asarray(moments, dtype=float)
        self.moments = moments
        self.labels = list(labels)
        jz = moments[:, : chain.M]
        T = moments.shape[0]
        super().__init__(chain, times, jz, np.ones((T, 1)), meta)
        self.meta.setdefault("labels", self.labels)

    @property
    def breakdown_time(self):
        """gamma*t where the closure left the physical range (later values NaN), or None."""
        return self.meta.get("breakdown_time")

    def moment(self, name):
        """<X>(t) of a kept moment by label, e.g. ``res.moment('J1+ J2-')``, shape (T,)."""
        try:
            return self.moments[:, self.labels.index(name)]
        except ValueError:
            raise InputError(f"no moment {name!r}; kept: {self.labels}") from None

    def __str__(self):
        n = self.meta.get("n_thermal")
        temp = "" if not n or not any(n) else f", n_thermal = {n}"
        bd = self.breakdown_time
        bd = "" if bd is None else f"\nclosure BROKE DOWN at gamma*t = {bd:.4g} (NaN afterwards)"
        return (f"MeanFieldResult: {self.meta.get('closure')} closure ({len(self.labels)} moments) of "
                f"{self.chain!r}{temp}, initial n = {self.meta.get('initial')}, {len(self.times)} times "
                f"in [{self.times[0]:g}, {self.times[-1]:g}]/gamma{bd}\n"
                f"<J_i^z>/N_i:\n" + format_table(self.times, self.jz_over_n, sizes=self.chain.sizes))

    __repr__ = __str__

    def plot(self, ax=None, xscale="linear", label=None, **line_kw):
        """Draw <J_i^z>/N_i against gamma t, one line per domain (needs matplotlib); a dashed
        vertical line marks where the closure broke down (``breakdown_time``), if it did.

        Parameters and return as :meth:`MasterResult.plot`.
        """
        ax = super().plot(ax, xscale, label, **line_kw)
        if self.breakdown_time is not None:
            ax.axvline(self.breakdown_time, color="gray", ls="--", lw=1,
                       label="closure breaks down")
            ax.legend(fontsize=7)
        return ax

    def _plot_title(self):
        return f"mean field ({self.meta.get('closure')} closure): {self.chain!r}"

    def _summary_items(self):
        n = self.meta.get("n_thermal")
        bd = self.breakdown_time
        items = [kv for kv in super()._summary_items() if kv[0] != "max |trace - 1|"]
        return items + [
            ("closure", f"{self.meta.get('closure')} ({len(self.labels)} moments)"),
            ("n_thermal", n if n and any(n) else None),
            ("closure broke down at gamma t", None if bd is None else f"{bd:.4g} (NaN after)")]

