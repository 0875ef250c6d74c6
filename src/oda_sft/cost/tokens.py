"""How many tokens a dataset has, and how they are distributed: what `estimate` needs.

A fast measurement: one streaming pass over the file counts its records and keeps a uniform random
sample of them (reservoir sampling, by byte span); the sample is tokenized exactly as LLaMA-Factory
counts a sample (data/measure/token_counter.py). Total tokens = records x the sample's mean, exact when
the sample is the whole dataset, or when a cached exact length analysis (`oda-sft data inspect
--exact`) gives the mean. The result is cached by file sha256 and tokenizer under
$ODA_SFT_HOME/token-stats, so a sweep or a second estimate does not measure again.

The tokenizers library is imported only when something has to be tokenized.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.data.formats import alpaca
from oda_sft.data.formats.jsonstream import JsonStream, read_span
from oda_sft.data.registry.analysis import data_file
from oda_sft.data.registry.dataset_dir import ResolvedDataset
from oda_sft.errors import DatasetError
from oda_sft.util.fs import atomic_write_json
from oda_sft.util.paths import cache_dir

SAMPLE = 2000
CACHE_VERSION = 1


@dataclass(frozen=True)
class TokenStats:
    records: int
    lengths: tuple[int, ...]  # sorted token lengths of the measured samples (all, or a random sample)
    tokenizer: str
    exact_mean: float | None = None  # from an exact measurement of every sample
    source: str = ""

    @property
    def exact(self) -> bool:
        return self.exact_mean is not None or len(self.lengths) == self.records

    @property
    def mean(self) -> float:
        if self.exact_mean is not None:
            return self.exact_mean
        return sum(self.lengths) / len(self.lengths) if self.lengths else 0.0

    @property
    def total_tokens(self) -> float:
        return self.records * self.mean

    def describe(self) -> str:
        how = "exact" if self.exact else f"estimated from {len(self.lengths):,} random samples"
        return f"{self.records:,} samples, {self.total_tokens:,.0f} tokens ({how}; {self.source})"


def _cache_path(sha256: str, tokenizer: str) -> Path:
    tok = hashlib.sha256(tokenizer.encode()).hexdigest()[:12]
    return cache_dir() / "token-stats" / f"{sha256[:32]}-{tok}.json"


def cached(dataset: ResolvedDataset, tokenizer: str) -> TokenStats | None:
    """The stats measured earlier for this very file with this tokenizer, if any (no tokenizer needed)."""
    if not dataset.sha256:
        return None
    path = _cache_path(dataset.sha256, tokenizer)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("version") != CACHE_VERSION or data.get("sha256") != dataset.sha256:
        return None
    stats = TokenStats(int(data["records"]), tuple(data["lengths"]), tokenizer, source=str(data.get("source", "")))
    return _with_exact_analysis(stats, dataset, tokenizer)


def _with_exact_analysis(stats: TokenStats, dataset: ResolvedDataset, tokenizer: str) -> TokenStats:
    """The exact mean from a cached `data inspect --exact` analysis of this file, when there is one."""
    found = [a for a in dataset.analyses() if a.tokenizer == tokenizer and a.sha256 == dataset.sha256]
    record = found[0] if found else None
    if record is None or not record.exact or record.mean is None:
        return stats
    return TokenStats(
        record.count or stats.records,
        stats.lengths,
        tokenizer,
        record.mean,
        f"total from the cached exact analysis ({record.measured_at}), distribution from {stats.source}",
    )


def measure(dataset: ResolvedDataset, counter: Any, sample: int = SAMPLE, seed: int = 0) -> TokenStats:
    """Count the records and tokenize a uniform random sample of `sample` of them; cache the result.

    `counter` is a data.token_counter.LengthCounter (typed loosely: importing it here would load
    nothing heavy, but the light path should not depend on it)."""
    path = data_file(dataset)
    columns = dataset.columns()
    rng = random.Random(seed)
    spans: list[tuple[int, int]] = []
    records = 0
    stream = JsonStream(path)
    for rec in stream:
        records += 1
        if len(spans) < sample:
            spans.append((rec.start, rec.end))
        else:
            j = rng.randrange(records)
            if j < sample:
                spans[j] = (rec.start, rec.end)
    if records == 0:
        raise DatasetError(f"{path} holds no records: an empty dataset has no cost; add records")
    turns = []
    with path.open("rb") as handle:
        for start, end in sorted(spans):
            value = read_span(handle, start, end)
            if isinstance(value, dict):
                try:
                    turns.append(alpaca.turns(value, columns))
                except (KeyError, TypeError, ValueError):
                    continue
    lengths = sorted(counter.lengths(turns)) if turns else []
    if not lengths:
        raise DatasetError(f"no sample of {path} could be read as Alpaca: check it with `oda-sft data inspect`")
    how = "every sample" if len(lengths) == records else f"{len(lengths):,} of {records:,} samples"
    stats = TokenStats(records, tuple(lengths), counter.ref.ident, source=f"{how} tokenized with {counter.ref.label}")
    if dataset.sha256:
        atomic_write_json(
            _cache_path(dataset.sha256, counter.ref.ident),
            {
                "version": CACHE_VERSION,
                "sha256": dataset.sha256,
                "tokenizer": counter.ref.ident,
                "records": records,
                "lengths": list(lengths),
                "source": stats.source,
            },
        )
    return _with_exact_analysis(stats, dataset, counter.ref.ident)
