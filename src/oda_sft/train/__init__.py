"""A training run, in pipeline order: request -> plan (mode, render, profile) -> run (output-dir guard, launcher)."""
