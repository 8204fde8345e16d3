"""numba kernels: plain float64 / int64 arrays in and out, no trajspin objects.

``events`` (random streams, waiting times, the event-driven trajectory kernels), ``lanczos``
(matrix-free sector tables and restarted Lanczos propagation), ``cascade`` (implicit-Euler
sweeps of the exact sector cascade).  They import only numpy, numba, math and each other.
"""
