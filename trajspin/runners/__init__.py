"""Running ensembles as batch jobs: TOML configs, chunk order, checkpoints, serial and MPI.

``config`` (the TOML schema), ``batch`` (chunk plan, ordered sums, checkpoints, the coordinator,
the run on rank 0) and ``mpi`` (the only module that imports mpi4py).
"""
