"""Commands about runs and their results: `runs`, `eval` and `rank`. A subpackage: cli/ holds 12 modules at most."""
