"""The benchmark questions an evaluation asks, read by OpenCompass's own loaders, for the overlap check."""
