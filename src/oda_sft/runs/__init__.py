"""What a run leaves behind: the output-dir state, the manifest, the trainer log, listings and plots."""
