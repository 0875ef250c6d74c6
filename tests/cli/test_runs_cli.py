"""`runs` and `runs plot` for a finished run shorter than logging_steps (issue 16, item 14): its
trainer_log.jsonl holds no loss, only the line LLaMA-Factory writes when training ends."""

from __future__ import annotations

import json
from pathlib import Path

from oda_sft.runs import manifest

from conftest import Cli


def _short_run(root: Path) -> Path:
    out = root / "tiny" / "full" / "sft-oda_demo" / "seed-42"
    out.mkdir(parents=True)
    closing = {"current_steps": 3, "total_steps": 3, "epoch": 3.0, "percentage": 100.0,
               "elapsed_time": "0:00:00", "remaining_time": "0:00:00"}  # fmt: skip
    (out / "trainer_log.jsonl").write_text(json.dumps(closing) + "\n")
    results = {"epoch": 3.0, "total_flos": 3.7e9, "train_loss": 6.2513, "train_runtime": 0.41,
               "train_samples_per_second": 117.1, "train_steps_per_second": 7.3}  # fmt: skip
    (out / "all_results.json").write_text(json.dumps(results, indent=4))
    (out / "trainer_state.json").write_text(json.dumps({"global_step": 3, "max_steps": 3, "log_history": []}))
    path = out / manifest.MANIFEST_NAME
    run = {"model": {"preset": "tiny"}, "dataset": {"name": "oda_demo"}, "seed": 42, "mode": {"mode": "standard"}}
    record = manifest.start(path, run=run, launch_argv=[], launch_env={}, gpu_count=0, world_size=1, resumed_from=None)
    manifest.finish(path, record, "finished", 0)
    return out


def test_a_run_shorter_than_logging_steps_shows_its_loss_and_is_plotted(cli: Cli, tmp_path: Path) -> None:
    out = _short_run(tmp_path / "saves")
    listed = cli("runs", "--output-root", str(tmp_path / "saves"), "--json")
    assert listed.code == 0, listed.err
    [run] = json.loads(listed.out)
    assert run["final_loss"] == 6.2513 and run["final_step"] == 3 and "no step was logged" in run["final_loss_note"]
    table = cli("runs", "--output-root", str(tmp_path / "saves"))
    assert "6.2513 (mean)" in table.out
    target = tmp_path / "loss.png"
    plotted = cli("runs", "plot", "--output-root", str(tmp_path / "saves"), "-o", str(target))
    assert plotted.code == 0, plotted.err
    assert "(1 of 1 runs)" in plotted.out and "no loss logged" not in plotted.err
    assert f"{out}: drawn as one point at step 3: no step was logged" in plotted.err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _evaluated(run_dir: Path, eval_id: str = "abcdefabcdef") -> Path:
    """What `oda-sft eval` leaves in a run dir: eval/<id>/model, the checkpoint's files as links (the
    manifest among them) with the eval's own tokenizer config (eval/template.py writes it)."""
    from oda_sft.eval.template import write_model_view

    (run_dir / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    view = run_dir / "eval" / eval_id / "model"
    write_model_view(run_dir, view, "{{ messages }}")
    assert (view / manifest.MANIFEST_NAME).is_symlink()
    return view


def test_an_evaluated_run_is_listed_once_and_the_base_model_as_such(cli: Cli, tmp_path: Path) -> None:
    """Issue 22 item 8: the eval's view of the checkpoint links the manifest; it was listed (and drawn) as a
    second run, and the base model's dir as a finished training run."""
    from oda_sft.eval.record import ensure_base_manifest

    root = tmp_path / "saves"
    out = _short_run(root)
    _evaluated(out)
    base = root / "tiny" / "base"
    base.mkdir(parents=True)
    ensure_base_manifest(base, "tiny", "/models/tiny")
    listed = json.loads(cli("runs", "--output-root", str(root), "--json").out)
    assert [(r["path"], r["status"], r["base"]) for r in listed] == [
        (str(base), "base model", True),
        (str(out), "finished", False),
    ]
    table = cli("runs", "--output-root", str(root)).out.splitlines()
    assert len(table) == 3 and "/model" not in "\n".join(table)
    (base_line,) = [line for line in table if str(base) in line]
    assert "(base model)" in base_line and "finished" not in base_line
    plotted = cli("runs", "plot", "--output-root", str(root), "-o", str(tmp_path / "loss.png"))
    assert plotted.code == 0, plotted.err
    assert "(1 of 1 runs)" in plotted.out and "left out" not in plotted.err and "[model]" not in plotted.err
