"""ODA's leaderboard site: its rules (rules.py), its published rows (published.py), a user's runs beside them
(compare.py) and the tables (output.py). docs/eval.md, "ODA's site rules", lists how they differ from oda-sft's."""
