"""What the overlap test is, named once: the method module runs it, the store keys results by it."""

from __future__ import annotations

N = 8
METHOD = f"word {N}-grams after NFKC, lowercase and open-instruct's separators; exact match below {N} words"
METHOD_VERSION = 1  # bump when the method changes: stored results of another version are recomputed
