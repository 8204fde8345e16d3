"""Where each observable sits in a trajectory kernel's row of F numbers per output time.

lay = [F, o_jz2, o_ndist, o_coh, o_chan, o_res, nbins, R], int64 (8,): offsets of each
observable's columns (-1 when not asked for), the number of bins of n_dist (max N_i + 1) and
of reservoirs.  <J_i^z> is always at columns 0..M-1.  Built by
``trajspin.trajectories.tables.observable_layout``; read by the event kernel (``events``) and
the Lanczos kernel (``lanczos``, via ``matrix_free.sector_extra``).
"""
from __future__ import annotations

__all__ = ["L_F", "L_JZ2", "L_NDIST", "L_COH", "L_CHAN", "L_RES", "L_NBINS", "L_R"]

L_F, L_JZ2, L_NDIST, L_COH, L_CHAN, L_RES, L_NBINS, L_R = range(8)
