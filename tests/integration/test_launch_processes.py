"""The launch command and environment, and the one function that starts the trainer."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from oda_sft.train import launcher as launch


def test_run_returns_the_child_exit_status(tmp_path: Path) -> None:
    assert launch.run([sys.executable, "-c", "raise SystemExit(7)"], {}) == 7
    assert launch.run([sys.executable, "-c", "print('ok')"], {"X": "1"}) == 0


CHILD = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from pathlib import Path
    out = Path(sys.argv[1])
    # A grandchild, like torchrun's workers: it must get the signal too.
    grand = subprocess.Popen([sys.executable, "-c",
        "import signal, sys, time\\n"
        "from pathlib import Path\\n"
        "signal.signal(signal.SIGTERM, lambda *a: (Path(sys.argv[1]).write_text('grandchild'), sys.exit(0)))\\n"
        "Path(sys.argv[1] + '.ready').write_text('1')\\n"
        "time.sleep(60)", str(out) + ".grand"])
    def bye(signum, frame):
        out.write_text(f"child got {signum}")
        grand.wait()
        sys.exit(143)
    signal.signal(signal.SIGTERM, bye)
    Path(str(out) + ".ready").write_text("1")
    time.sleep(60)
    """
)


def test_sigterm_reaches_the_whole_child_process_group(tmp_path: Path) -> None:
    """Run oda_sft.launch.run in a real process, SIGTERM it, and watch child and grandchild."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / "got"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from oda_sft.train import launcher as launch; "
            f"sys.exit(launch.run([sys.executable, {str(script)!r}, {str(out)!r}], {{}}))",
        ]
    )
    deadline = time.time() + 30
    while not (Path(f"{out}.ready").exists() and Path(f"{out}.grand.ready").exists()):
        assert time.time() < deadline, "child never started"
        time.sleep(0.05)
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 143
    assert out.read_text() == f"child got {int(signal.SIGTERM)}"
    assert Path(f"{out}.grand").read_text() == "grandchild"
