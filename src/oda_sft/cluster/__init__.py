"""Multi-node runs: the Slurm job script and the per-node preflight checks."""
