"""`oda-sft rank --oda` and `--rules oda-site`: ODA's published rows beside the user's, by the site's rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from oda_sft.errors import UsageError
from oda_sft.names import suggest

if TYPE_CHECKING:
    from oda_sft.eval.leaderboard import Board, Group
    from oda_sft.eval.oda_site.output import SiteTable

RULES: tuple[str, ...] = ("oda-sft", "oda-site")
MakeBoard = Callable[[list[Path] | None, str | None, str], "Board"]


def check_rules(rules: str) -> None:
    if rules not in RULES:
        raise UsageError(f"unknown --rules {rules!r}{suggest(rules, RULES)}: choose one of {', '.join(RULES)}")


def _oda_view(roots: list[Path] | None, model: str | None, by: str, make_board: MakeBoard) -> list[SiteTable]:
    from oda_sft.eval.leaderboard import METRICS
    from oda_sft.eval.oda_site import published
    from oda_sft.eval.oda_site.compare import user_rows
    from oda_sft.eval.oda_site.output import SiteTable
    from oda_sft.presets import PRESETS

    if model is not None and model not in published.MODELS:
        known = f"{suggest(model, PRESETS)}" if model not in PRESETS else ""
        raise UsageError(f"ODA published a leaderboard for {' and '.join(published.MODELS)} only, not --model "
                         f"{model!r}{known}: pass --model llama or --model qwen")  # fmt: skip
    if by not in METRICS:
        raise UsageError(f"unknown --by {by!r}{suggest(by, METRICS)}: choose one of {', '.join(METRICS)}")
    # The published rows need no runs: with no --output-root and no saves/ here, they are shown alone.
    board = make_board(roots, model, by) if roots or Path("saves").is_dir() else None
    view = []
    for name in [model] if model else list(published.MODELS):
        base = published.rows(name)[1].name  # the base row's name, e.g. Llama-3.1-8B
        mine = [g for g in board.groups if g.preset == name] if board else []
        together, apart = user_rows(_only(board, mine)) if board else ([], [])
        title = (f"{name}: ODA's published leaderboard for {base} ({published.cite()}), with your runs that compare "
                 f"with it, by the site's rules")  # fmt: skip
        notes = []
        if board is None:
            notes.append("no runs here (no saves/): ODA's rows alone; --output-root names where your runs are")
        elif not mine:
            notes.append(f"no evaluated {name} run under the output roots: ODA's rows alone")
        table = SiteTable(title, name, [*published.rows(name), *together], source=published.source(), apart=apart)
        table.notes = notes
        view.append(table)
    if board is not None and board.left_out:
        view[-1].notes.append(f"{len(board.left_out)} run(s) left out: `{why_command(roots, model)}` says why")
    return view


def why_command(roots: list[Path] | None, model: str | None) -> str:
    """`oda-sft rank` over the same runs with oda-sft's own rules, which lists what was left out and why (it
    works as printed: the output roots and the model given)."""
    import shlex

    argv = ["oda-sft", "rank"]
    for root in roots or []:
        argv += ["--output-root", str(root)]
    return shlex.join(argv + (["--model", model] if model else []))


def _only(board: Board, groups: list[Group]) -> Board:
    from oda_sft.eval.leaderboard import Board

    return Board([g for g in board.groups if g in groups], [], board.by, board.manifests)


def _own_view(roots: list[Path] | None, model: str | None, by: str, make_board: MakeBoard) -> list[SiteTable]:
    from oda_sft.eval.leaderboard_output import title
    from oda_sft.eval.oda_site.compare import group_rows
    from oda_sft.eval.oda_site.output import SiteTable

    board = make_board(roots, model, by)
    return [SiteTable(f"{title(g, by).rsplit('; ranked by', 1)[0]}, by ODA's site rules", g.preset, group_rows(g),
                      eval_id=g.eval_id) for g in board.groups]  # fmt: skip


def show(
    roots: list[Path] | None, model: str | None, by: str, oda: bool, rules: str, fmt: str, make_board: MakeBoard
) -> str:
    """The view as text, JSON, CSV or Markdown (fmt); `--oda` always applies the site's rules."""
    from oda_sft.eval.oda_site import output

    check_rules(rules)
    view = _oda_view(roots, model, by, make_board) if oda else _own_view(roots, model, by, make_board)
    if fmt == "json":
        return output.as_json(view, by) + "\n"
    if fmt == "csv":
        return output.as_csv(view, by)
    if fmt == "markdown":
        return output.markdown(view, by)
    if not view:
        return f"no evaluated runs to rank: `{why_command(roots, model)}` says why\n"
    return output.text(view, by) + "\n"
