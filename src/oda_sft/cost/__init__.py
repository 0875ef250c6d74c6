"""What runs cost: step accounting, the measured throughput table, and `oda-sft estimate`.

Runtime code (no torch, no bench): `estimate` and `sweep --dry-run` import it on their light path."""
