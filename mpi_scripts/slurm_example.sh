#!/bin/bash
# Slurm job: a trajspin ensemble that survives the wall-time limit by resubmitting itself.
#
#   sbatch mpi_scripts/slurm_example.sh                                  # fig2b, defaults below
#   CONFIG=mpi_scripts/configs/fig2c.toml OUT=results/fig2c.npz sbatch mpi_scripts/slurm_example.sh
#
# Pattern: before it starts computing, each job queues its own successor with
# --dependency=afternotok (runs only if this job ends badly: time limit, node failure, kill)
# and --kill-on-invalid-dep=yes (dropped if this job succeeds).  Every job runs with --resume:
# it continues from the last checkpoint (rank 0 writes one every checkpoint.interval_seconds,
# atomically), so a kill loses at most one interval, and the final RESULT is bitwise the same
# as an uninterrupted run, whatever number of ranks each job gets.  A job that finds RESULT
# already complete exits at once.
#
#SBATCH --job-name=trajspin
#SBATCH --ntasks=32
#SBATCH --cpus-per-task=1
#SBATCH --time=02:00:00
#SBATCH --output=%x-%j.log

set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"

CONFIG=${CONFIG:-mpi_scripts/configs/fig2b.toml}
OUT=${OUT:-results/fig2b.npz}
MAX_JOBS=${MAX_JOBS:-10}            # give up after this many jobs in the chain
JOB_NUMBER=${JOB_NUMBER:-1}
SELF=${SELF:-mpi_scripts/slurm_example.sh}
PYTHON=${PYTHON:-python}            # the environment with trajspin, mpi4py and mpich
MPIEXEC=${MPIEXEC:-$(dirname "$(command -v "$PYTHON")")/mpiexec}   # pip-installed MPICH

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1   # ranks give the parallelism
mkdir -p "$(dirname "$OUT")"

if [ "$JOB_NUMBER" -lt "$MAX_JOBS" ]; then
    next=$(sbatch --parsable --dependency="afternotok:${SLURM_JOB_ID}" --kill-on-invalid-dep=yes \
                  --export="ALL,JOB_NUMBER=$((JOB_NUMBER + 1)),CONFIG=${CONFIG},OUT=${OUT},SELF=${SELF}" \
                  "$SELF")
    echo "job ${JOB_NUMBER}/${MAX_JOBS}: successor ${next} queued in case this one is cut off"
fi

# Hydra (pip MPICH's mpiexec) picks up the Slurm allocation; with a cluster MPI build of
# mpi4py use `srun --mpi=pmix "$PYTHON" ...` instead.
"$MPIEXEC" -n "${SLURM_NTASKS:-1}" "$PYTHON" mpi_scripts/run_ensemble.py "$CONFIG" \
    --out "$OUT" --resume --quiet
