"""Measuring token lengths and the standard/long-CoT decision they feed."""
