"""numba kernels: plain float64 / int64 arrays (and named tuples of them) in and out.

``rng`` (one random stream per (seed, index)), ``linalg`` (the steps every trajectory sampler
shares: products with row-major eigenvector blocks, waiting times, dark weight, the one
channel pick, <J^z> of a Dicke-basis vector), ``rules`` (feedback rules), ``events`` (the one
event-driven trajectory kernel), ``ensemble`` (its index-ordered sums and the shared no-jump
trace), ``matrix_free`` (sector tables and G_K x without a matrix, for large sectors),
``lanczos`` (restarted Lanczos propagation through a sector), ``cascade`` (implicit-Euler
sweeps of the exact sector cascade).  They import only numpy, numba, math and each other.
"""
