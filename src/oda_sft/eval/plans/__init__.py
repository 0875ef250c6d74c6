"""Planning evals: one (plan.py), the eval command, its dry run and the Slurm eval job all plan through
plan_eval; and many at once (batch.py): --datasets/--seeds and --all in one process."""
