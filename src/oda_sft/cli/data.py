"""`oda-sft data add` and `oda-sft data inspect`: register, convert, validate and measure datasets."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from oda_sft.cli.options import DatasetDirOpt, JsonOpt, RecipeOpt, new_app, optional
from oda_sft.cli.overlap.command import contamination
from oda_sft.data.formats.alpaca import DEFAULT_SHOWN
from oda_sft.datasets_catalog import DATASETS
from oda_sft.datasets_catalog.advice import add_command
from oda_sft.datasets_catalog.oda_release import SCORE_COLUMNS
from oda_sft.eras import CURRENT
from oda_sft.errors import DatasetError, UsageError
from oda_sft.names import suggest
from oda_sft.presets import PRESETS, preset_names
from oda_sft.util.console import say
from oda_sft.util.paths import data_command, doc_ref, ensure_user_dataset_dir

# The work is imported inside the commands: `--help` and the other commands stay light.
if TYPE_CHECKING:
    from oda_sft.data.measure.lengths import LengthReport
    from oda_sft.data.registry.add import AddResult
    from oda_sft.data.registry.fetch import FetchRequest

RULE = "Decision rule"

ShownOpt = Annotated[
    int, typer.Option("--show-errors", min=1, help="How many bad records to list when some are invalid.")
]


def add(
    name: Annotated[str, typer.Argument(help="Name to register it under (letters, digits, '.', '_', '-').")],
    dataset_dir: DatasetDirOpt,
    source: Annotated[
        str | None,
        typer.Argument(
            help="A .json/.jsonl file, a dataset directory, or a Hugging Face dataset id. Leave it out for a "
            "catalog dataset: it is fetched and converted as the catalog declares (a local copy of its repo "
            "may be given instead).",
            show_default=False,
        ),
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split to load (Hugging Face) [default: train].")] = None,
    subset: Annotated[str | None, typer.Option(help="Subset (configuration) to load (Hugging Face).")] = None,
    file: Annotated[str | None, typer.Option("--file", help="A data file inside the Hugging Face repo.")] = None,
    mapping: Annotated[
        list[str] | None,
        optional(
            "--map",
            help="Columns for other shapes, as FIELD=COLUMN (comma-separated or repeated): instruction and "
            "output, optionally input, system and history; e.g. instruction=query,output=answer.",
        ),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Leave out records that cannot be converted, and report how many and why.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Replace a registered dataset of the same name.")] = False,
    shown: ShownOpt = DEFAULT_SHOWN,
    revision: Annotated[
        str | None,
        optional(help="Catalog datasets: the branch, tag or commit to fetch [default: main]."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Catalog datasets: fetch, convert and show the result; write nothing.")
    ] = False,
    origin: Annotated[
        str,
        typer.Option(
            "--from",
            help="Catalog datasets: 'upstream' converts the publisher's files as the catalog declares; 'oda' takes "
            "the rows ODA published in OpenDataArena/OpenDataArena-scored-data (`oda:SUBSET` names always do).",
        ),
    ] = "upstream",
    keep_scores: Annotated[
        bool,
        typer.Option(help="ODA's release: keep its Q_scores/QA_scores in every record (LLaMA-Factory ignores them)."),
    ] = False,
) -> None:
    """Register a dataset in dataset_info.json, converting it to Alpaca JSON when needed.

    A catalog dataset needs no SOURCE: `oda-sft data add OpenR1-Math-220k` fetches it and converts it as the
    catalog declares (docs/data.md); `oda-sft data add oda:SUBSET` fetches a subset of ODA's normalised release
    and registers it as oda-SUBSET."""
    from oda_sft.data.registry.add import AddRequest, add_dataset
    from oda_sft.data.registry.fetch import FetchRequest
    from oda_sft.data.sources import oda
    from oda_sft.data.sources.local import SourceSpec

    oda_subset = _oda_subset(
        name, origin, keep_scores, bool(source is not None or split or subset or file or mapping or skip_invalid)
    )
    local = None if oda_subset else _catalog_source(name, source, split, subset, file, mapping, skip_invalid)
    if oda_subset or local is not None or (source is None and name in DATASETS):
        keep = SCORE_COLUMNS if keep_scores else ()
        request = FetchRequest(
            oda.registered_name(name), dataset_dir, revision, local, force, oda=oda_subset, keep=keep
        )
        _fetch(request, dry_run)
        return
    source = _plain_source(name, dataset_dir, source, revision, dry_run)
    ensure_user_dataset_dir(dataset_dir)
    request_ = AddRequest(
        name=name,
        dataset_dir=dataset_dir,
        source=SourceSpec(source, split, subset, file),
        mapping=list(mapping or []),
        skip_invalid=skip_invalid,
        force=force,
        shown=shown,
    )
    _report(add_dataset(request_), dataset_dir)


def _oda_subset(name: str, origin: str, keep_scores: bool, local_options: bool) -> str:
    """The subset of ODA's release `data add` fetches ("" for upstream); refuses what does not apply to it."""
    from oda_sft.data.sources import oda

    if origin not in ("upstream", "oda"):
        raise UsageError(f"--from {origin!r} is not a source: use --from upstream (the default) or --from oda")
    oda_subset = oda.subset_for(name, origin == "oda")
    if keep_scores and not oda_subset:
        raise UsageError("--keep-scores applies to ODA's release: add `--from oda`, or name an `oda:SUBSET`")
    if oda_subset and local_options:
        raise UsageError(
            f"{name} is fetched from ODA's release and converted as it is (docs/data.md), so SOURCE, --split, "
            "--subset, --file, --map and --skip-invalid do not apply: drop them"
        )
    return oda_subset


def _fetch(request: FetchRequest, dry_run: bool) -> None:
    """A catalog dataset or a subset of ODA's release: fetched and converted, shown, then registered."""
    from oda_sft.data.registry import fetch

    prepared = fetch.prepare(request)
    typer.echo(fetch.summary(prepared))
    if request.oda:  # the number a run of it is to reproduce, before anything is written or trained
        from oda_sft.eval.oda_site.published import standing_line

        typer.echo(standing_line(request.name))
    if dry_run or prepared.unchanged:
        if dry_run and not prepared.unchanged:
            typer.echo("dry run: nothing written")
        return
    _report(fetch.register(prepared), request.dataset_dir)


def _plain_source(name: str, dataset_dir: Path, source: str | None, revision: str | None, dry_run: bool) -> str:
    """A dataset outside the catalog: it needs a SOURCE, and takes no catalog options."""
    if source is None:
        raise UsageError(
            f"{name} is not a catalog dataset, so it needs a SOURCE: "
            f"`{add_command(name, dataset_dir)}` (a .json/.jsonl file, a dataset directory or a "
            "Hugging Face id); `oda-sft list-datasets` shows the catalog"
        )
    if revision is not None or dry_run:
        raise UsageError(
            "--revision and --dry-run apply to catalog datasets added by name (`oda-sft data add NAME`): drop them"
        )
    return source


def _catalog_source(
    name: str,
    source: str | None,
    split: str | None,
    subset: str | None,
    file: str | None,
    mapping: list[str] | None,
    skip_invalid: bool,
) -> Path | None:
    """For a catalog name: the local copy given as SOURCE (None: fetch from the Hub). Refuses what would bypass
    the declared conversion."""
    catalog = DATASETS.get(name)
    if catalog is None:
        return None
    if split or subset or file or mapping or skip_invalid:
        raise UsageError(
            f"{name} is a catalog dataset: its files and conversion are declared ({doc_ref('data.md')}), so --split, "
            "--subset, --file, --map and --skip-invalid do not apply; register other data under another name"
        )
    if source is None or source == catalog.hf_id:
        return None
    local = Path(source).expanduser()
    if not local.exists():
        raise UsageError(
            f"{name} is a catalog dataset converted as declared: leave SOURCE out to fetch {catalog.hf_id}, give a "
            f"local copy of it ({source} does not exist), or register other data under another name"
        )
    return local


def _report(result: AddResult, dataset_dir: Path) -> None:
    where = f"{result.file} (registered in place)" if result.in_place else str(result.file)
    if result.status == "unchanged":
        typer.echo(f"{result.name} is already registered with this content ({where}); nothing changed")
        return
    skipped = f", {result.skipped:,} skipped" if result.skipped else ""
    typer.echo(
        f"{result.status} {result.name}: {result.records:,} records{skipped}, shape {result.shape}, "
        f"{where}, sha256 {result.sha256[:12]}"
    )
    typer.echo(f"next: {inspect_command(result.name, dataset_dir)} {INSPECT_HINT}")


INSPECT_MODEL = "llama"
_OTHERS = " or ".join(n for n, p in PRESETS.items() if n != INSPECT_MODEL and not p.embedded)
INSPECT_HINT = (
    f"measures its token lengths with {PRESETS[INSPECT_MODEL].base_model}'s tokenizer and decides standard or "
    f"long-CoT (--model {_OTHERS} for theirs)"
)


def inspect_command(name: str, dataset_dir: Path) -> str:
    """The `data inspect` command for a dataset just added, as a user types it."""
    return f"`{data_command('inspect', name, dataset_dir, '--model', INSPECT_MODEL)}`"


class _Bars:
    """One progress bar per phase, on stderr, only when a person is watching."""

    def __init__(self) -> None:
        self.phase = ""
        self.done = 0
        self.bar: Any = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if phase != self.phase:
            self.close()
            self.phase, self.done = phase, 0
            self.bar = typer.progressbar(length=max(total, 1), label=phase, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def inspect(
    name: Annotated[str, typer.Argument(help="A dataset registered in dataset_info.json.")],
    model: Annotated[str, typer.Option("--model", "-m", help=f"Whose tokenizer: {preset_names()}.")],
    dataset_dir: DatasetDirOpt,
    model_path: Annotated[Path | None, optional(help="Load the tokenizer from this local model directory.")] = None,
    recipe: RecipeOpt = CURRENT,  # the 2025 era's template has no EOS after the user and system turns
    exact: Annotated[
        bool, typer.Option(help="Tokenize every sample for full statistics, instead of stopping once decided.")
    ] = False,
    long_tokens: Annotated[
        int | None,
        optional(help="Threshold in tokens [default: $ODA_SFT_LONG_TOKENS, else 4096].", rich_help_panel=RULE),
    ] = None,
    long_percent: Annotated[
        str | None,
        optional(
            help="long if more than this % of samples exceed the threshold [default: $ODA_SFT_LONG_PERCENT, else 1].",
            rich_help_panel=RULE,
        ),
    ] = None,
    cache: Annotated[bool, typer.Option(help="Store the result in dataset_info.json for `train --mode auto`.")] = True,
    as_json: JsonOpt = False,
    shown: ShownOpt = DEFAULT_SHOWN,
) -> None:
    """Measure token lengths under the default template and decide standard or long-CoT."""
    from oda_sft.data.measure.length_rule import Rule
    from oda_sft.data.measure.token_counter import LengthCounter
    from oda_sft.data.registry import analysis
    from oda_sft.data.registry.dataset_dir import DatasetDir
    from oda_sft.train.plan import resolve_preset

    preset = resolve_preset(model)
    rule = Rule.parse(long_tokens, long_percent)
    datasets = DatasetDir.load(dataset_dir)
    dataset = datasets.resolve(name)
    if not dataset.registered:
        how = add_command(name, dataset_dir)
        raise DatasetError(
            f"dataset {name!r} is not registered in {datasets.info_path}{suggest(name, datasets.names())}: "
            f"register it with `{how}`"
        )
    analysis.data_file(dataset)  # a missing file is reported before the tokenizer loads
    counter = LengthCounter.load(preset, model_path, recipe)
    bars = _Bars()
    try:
        report = analysis.measure(dataset, counter, rule, exact=exact, shown=shown, progress=bars)
    finally:
        bars.close()
    if cache and dataset.builtin:
        say(f"{name} ships inside oda-sft and is read only: the result is not stored")
    elif cache:
        analysis.store(dataset, report)
    from oda_sft.data.contamination.store import entry_counts

    overlap = entry_counts(dataset.entry, dataset.file)  # `data contamination`'s result, when it checked this file
    if as_json:
        checked = {"overlap": overlap} if overlap is not None else {}
        typer.echo(json.dumps({"name": name, **report.as_json(), **checked}, indent=2, ensure_ascii=False))
        return
    typer.echo(format_report(name, counter.ref.label, report, overlap))


def format_report(name: str, tokenizer_label: str, r: LengthReport, overlap: dict[str, int] | None = None) -> str:
    from oda_sft.data.contamination.store import describe_counts
    from oda_sft.data.measure.lengths import LONG_CUTOFF

    t = r.rule.threshold
    rows = [
        ("dataset", f"{name}: {r.count:,} samples in {r.file} (sha256 {r.sha256[:12]})"),
        ("tokenizer", f"{tokenizer_label}, template default"),
    ]
    if r.stats is not None:
        s = r.stats
        of = f"  (of the {r.measured:,} tokenized samples)" if r.untokenized else ""
        rows.append(
            (
                "tokens",
                f"mean {s['mean']:,.1f}  p50 {int(s['p50']):,}  p90 {int(s['p90']):,}  "
                f"p99 {int(s['p99']):,}  max {int(s['max']):,}{of}",
            )
        )
        over = f"{r.over:,}" if r.over == r.over_upper else f"between {r.over:,} and {r.over_upper:,}"
        rows.append((f"> {t:,}", f"{over} (truncated by the standard config, cutoff_len 4096)"))
        at_least = "at least " if r.untokenized else ""
        rows.append((f"> {LONG_CUTOFF:,}", f"{at_least}{r.over_cutoff or 0:,} (truncated even by the long config)"))
    else:
        over = f"{r.over:,}" if r.over == r.over_upper else f"between {r.over:,} and {r.over_upper:,}"
        rows.append(
            ("tokens", f"{r.measured:,} of {r.count:,} samples tokenized to decide; --exact gives full statistics")
        )
        rows.append((f"> {t:,}", over))
    rows.append(("rule", r.rule.describe()))
    rows.append(("decision", f"{r.mode}: {r.reason}"))
    for note in r.notes:
        rows.append(("note", note))
    if overlap is not None:
        rows.append(
            ("overlap", f"{describe_counts(overlap)} (overlapping samples by benchmark, from data contamination)")
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def build_app(wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> typer.Typer:
    """The `data` sub-app; `wrap` is the CLI's one error-to-exit-code wrapper."""
    data_app = new_app("data", "Add, convert, validate and measure datasets.")
    data_app.command("add")(wrap(add))
    data_app.command("inspect")(wrap(inspect))
    data_app.command("contamination")(wrap(contamination))
    return data_app
