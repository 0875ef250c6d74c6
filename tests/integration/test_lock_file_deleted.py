"""A live run stays the only trainer of its output dir even when its lock file is deleted by hand (issue 16
item 10): real oda-sft processes, real supervisors, and a stand-in for llamafactory-cli that holds the run
until told to finish, so the test takes seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from oda_sft.runs import lock

from realproc import kill_tree, start, tail

RUN = Path("tiny/full/sft-oda_demo/seed-42")

# llamafactory-cli's stand-in: says it started (its pid), waits for the go file, then finishes the run.
TRAINER = textwrap.dedent(
    """\
    import os, sys, time
    from pathlib import Path
    out = Path(sys.argv[2]).parent
    with open(os.environ["STAND_IN_PIDS"], "a") as pids:
        pids.write(f"{os.getpid()}\\n")
    while not Path(os.environ["STAND_IN_GO"]).exists():
        time.sleep(0.05)
    (out / "all_results.json").write_text("{}")
    """
)

# The real oda-sft program, launching the stand-in instead of llamafactory-cli.
ODA = textwrap.dedent(
    """\
    import sys
    from oda_sft.train import launcher
    trainer = sys.argv.pop(1)
    launcher.launcher_path = lambda: trainer
    from oda_sft.cli import main
    raise SystemExit(main())
    """
)


def test_a_deleted_lock_file_does_not_let_a_second_trainer_in(data_dir: Path, tmp_path: Path) -> None:
    trainer, oda = tmp_path / "llamafactory-cli", tmp_path / "oda.py"
    trainer.write_text(f"#!{sys.executable}\n{TRAINER}")
    trainer.chmod(0o755)
    oda.write_text(ODA)
    pids, go, root = tmp_path / "pids", tmp_path / "go", tmp_path / "saves"
    env = {**os.environ, "STAND_IN_PIDS": str(pids), "STAND_IN_GO": str(go)}
    args = [sys.executable, str(oda), str(trainer), "train", "--model", "tiny", "--dataset", "oda_demo",
            "--dataset-dir", str(data_dir), "--output-root", str(root), "--no-tokenized-cache"]  # fmt: skip
    run = root / RUN

    def started() -> list[str]:
        return pids.read_text().split() if pids.exists() else []

    first = start(args, env, tmp_path / "first.log")
    second = None
    try:
        deadline = time.monotonic() + 120  # the tiny model may be built first
        while not started():
            assert first.poll() is None and time.monotonic() < deadline, tail(tmp_path / "first.log")
            time.sleep(0.05)
        lock.lock_path(run).unlink()  # by hand, while the run lives

        second = start(args, env, tmp_path / "second.log")
        deadline = time.monotonic() + 60
        while second.poll() is None:
            assert len(started()) == 1, "a second trainer started in the same run"
            assert time.monotonic() < deadline, tail(tmp_path / "second.log")
            time.sleep(0.05)
        rc = second.returncode
        log = (tmp_path / "second.log").read_text()
        errors = [line for line in log.splitlines() if line.startswith("error:")]
        assert rc == 3 and len(errors) == 1, log
        assert f"is being trained right now by oda-sft pid {first.pid}" in errors[0], log
        assert len(started()) == 1, "a second trainer started in the same run"
        listed = subprocess.run([sys.executable, "-m", "oda_sft", "runs", "--output-root", str(root), "--json"],
                                capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
        assert [r["status"] for r in json.loads(listed.stdout)] == ["running"], listed.stderr

        go.touch()
        assert first.wait(60) == 0, tail(tmp_path / "first.log")
    finally:
        go.touch()
        for proc in (first, second):
            if proc is not None:
                kill_tree(proc)
    record = json.loads((run / "oda_sft_run.json").read_text())
    assert record["status"] == "finished"
    assert [a["status"] for a in record["attempts"]] == ["finished"]  # one attempt, not one left running
    assert len(started()) == 1
