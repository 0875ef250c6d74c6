"""`oda-sft bench`: the throughput benchmark. Optional: only the bench command imports it, lazily."""
