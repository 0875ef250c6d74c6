"""The trainer-side patch mechanism in a real interpreter started the way the trainer is (slow: it
imports transformers.trainer, as LLaMA-Factory does)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from oda_sft.train import patches


def _python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_sitecustomize_hooks_the_target_lazily_and_chains_to_the_one_it_shadows(tmp_path: Path) -> None:
    """A real interpreter started as the trainer is: the hook installs nothing heavy at start-up, patches
    the target when it is imported, and the user's own sitecustomize still runs."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import os\nos.environ['THEIRS_RAN'] = '1'\n")
    src = Path(patches.__file__).resolve().parents[3]
    pythonpath = os.pathsep.join([str(patches.site_dir()), str(src), str(theirs)])
    env = {**os.environ, "PYTHONPATH": pythonpath, patches.ENV_VAR: "resume_epoch"}
    done = _python(
        """
        import os, sys
        print("theirs", os.environ.get("THEIRS_RAN"))
        print("heavy at start", [m for m in ("torch", "transformers", "accelerate") if m in sys.modules])
        import transformers.trainer as t
        print("patched", getattr(t.skip_first_batches, "__wrapped__", None) is not None)
        """,
        env,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["theirs 1", "heavy at start []", "patched True"]

    # Without the variable the directory alone changes nothing: no hook, and theirs still runs.
    env.pop(patches.ENV_VAR)
    done = _python("import os, sys; print(os.environ.get('THEIRS_RAN'), [type(f).__name__ for f in sys.meta_path])",
                   env, tmp_path)  # fmt: skip
    assert done.stdout.startswith("1 ") and "_AfterImport" not in done.stdout, done.stderr[-3000:]


def test_inside_the_trainer_a_version_mismatch_stops_it_with_one_line(tmp_path: Path) -> None:
    src = Path(patches.__file__).resolve().parents[3]
    fake = tmp_path / "fake"  # a module named like the target, so no heavy import is needed
    fake.mkdir()
    (fake / "lookalike.py").write_text("skip_first_batches = lambda loader, n=0: loader\n")
    code = """
        from oda_sft.train import patches
        from oda_sft.train.patches import resume_epoch
        resume_epoch.WRITTEN_FOR["accelerate"] = "0.0.1"
        resume_epoch.TARGET = "lookalike"
        patches.apply(["resume_epoch"])
        import lookalike
        print("not reached")
        """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(fake)])}
    done = _python(code, env, tmp_path)
    assert done.returncode == patches.REFUSED_EXIT
    assert "not reached" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: oda-sft patch resume_epoch was written for accelerate 0.0.1")
