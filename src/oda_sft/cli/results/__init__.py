"""Commands about a run's results: `eval` (and `rank`). A subpackage: cli/ holds 12 modules at most."""
