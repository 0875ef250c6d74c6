"""Commands about runs and their results: `runs`, `eval`, `rank` and `push`.

A subpackage: cli/ holds 12 modules at most."""
