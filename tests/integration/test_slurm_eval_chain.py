"""`oda-sft slurm --eval -- train ...`: the printed command that submits the jobs works as printed, the eval job is
submitted with --dependency=afterok:<the training job's id>, and both scripts run under bash with stand-in sbatch,
srun and scontrol first on PATH, each handing its oda-sft exactly the arguments it should (the real Slurm runs
in test_slurm_cluster.py)."""

from __future__ import annotations

import json
import shlex
import stat
import subprocess
import sys
from pathlib import Path

from ocstub import stub_opencompass
from realproc import ODA_SFT, VENV_BIN

TRAIN_ID, EVAL_ID = 4242, 4243


def _tool(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _stand_ins(bin_dir: Path) -> None:
    bin_dir.mkdir()
    # sbatch --parsable: records its argv, prints the next job id (the first call gets TRAIN_ID).
    _tool(bin_dir / "sbatch", '#!/bin/bash\necho "$*" >> "$SBATCH_CALLS"\n'
          f'echo $(( {TRAIN_ID} + $(wc -l < "$SBATCH_CALLS") - 1 ))\n')  # fmt: skip
    # srun: one task, node 0, running what follows srun's own --options, with oda-sft swapped for a recorder.
    _tool(bin_dir / "srun", '#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\n'
          'export SLURM_NODEID=0 ODA_SFT="$RECORDER"\nexec "$@"\n')  # fmt: skip
    _tool(bin_dir / "scontrol", "#!/bin/bash\necho node0\n")
    _tool(bin_dir / "oda-sft-recorder", f"#!{sys.executable}\nimport json, os, sys\n"
          "with open(os.environ['RECORD'], 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n")  # fmt: skip


def test_eval_after_training_submits_with_a_dependency_and_both_scripts_run(tmp_path: Path, data_dir: Path) -> None:
    bin_dir, calls, record = tmp_path / "bin", tmp_path / "sbatch-calls", tmp_path / "record.jsonl"
    _stand_ins(bin_dir)
    oc = stub_opencompass(tmp_path / "oc", [], ("transformers", "torch"))
    env = {"PATH": f"{bin_dir}:{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
           "SBATCH_CALLS": str(calls), "RECORD": str(record), "RECORDER": str(bin_dir / "oda-sft-recorder"),
           "SLURM_JOB_NODELIST": "node0", "ODA_SFT_HOME": str(tmp_path / "home")}  # fmt: skip
    root = tmp_path / "saves"
    train = ["--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir), "--output-root", str(root)]
    slurm = ["--nodes", "1", "--gpus-per-node", "0", "--eval", "--eval-opencompass", str(oc), "--", "train", *train]

    # Without --submit: both scripts written, and the one command that submits them, printed.
    shown = subprocess.run([str(ODA_SFT), "slurm", *slurm], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert not calls.exists()
    command = shown.stderr.strip().splitlines()[-1].rsplit("`", 2)[1]
    assert command == shlex.join(["oda-sft", "slurm", "--submit", *slurm])

    # The command, as printed: sbatch submits the training job, then the eval job after it.
    done = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(TRAIN_ID), str(EVAL_ID)]
    first, second = (line.split() for line in calls.read_text().splitlines())
    train_script, eval_script = Path(first[-1]), Path(second[-1])
    assert first == ["--parsable", str(train_script)]
    assert second == ["--parsable", f"--dependency=afterok:{TRAIN_ID}", "--kill-on-invalid-dep=yes", str(eval_script)]
    run = root / "tiny/full/sft-oda_demo/seed-42"
    assert train_script.parent == eval_script.parent == run / "slurm-logs"

    # Each script under bash: the training job's node runs preflight and train, the eval job's node runs eval.
    for script, job in ((train_script, TRAIN_ID), (eval_script, EVAL_ID)):
        ran = subprocess.run(["bash", str(script)], cwd=tmp_path, env={**env, "SLURM_JOB_ID": str(job)},
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
    preflight, trained, evaluated = (json.loads(line) for line in record.read_text().splitlines())
    assert preflight[0] == "preflight" and preflight[-len(train) - 1 :] == ["train", *train]
    assert trained[0] == "train" and trained[-len(train) :] == train
    assert evaluated == ["eval", "--run", str(run), "--opencompass", str(oc)]
    assert (run / "slurm-logs" / str(EVAL_ID)).is_dir()
