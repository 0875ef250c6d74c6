"""`--report-to`: the experiment tracker a run logs to (LLaMA-Factory's and transformers' `report_to`).

A tracker is an optional extra (`pip install 'oda-sft[wandb]'`): one that is not installed is refused in
one line before anything starts, instead of transformers' error after the model has loaded. The tracker
run is named <model>/<dataset>/seed-<n>; TensorBoard writes into a fixed folder of the run dir, so every
attempt of a resumed run adds to the same tracker run. The manifest records what the trainer was told.

The tracker run's id is known before the trainer starts (open_run): TensorBoard's is its folder, wandb's is chosen
here (WANDB_RUN_ID), mlflow's run is made here (MLFLOW_RUN_ID); a resumed attempt is given the id its manifest
recorded, so it continues that run. Its config holds the era, the data's sha256 and the rendered recipe. A finished
`eval` logs its scores to the same run (log_eval), at the run's last step.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from oda_sft.errors import LaunchError, UsageError
from oda_sft.runs import manifest
from oda_sft.util.console import say
from oda_sft.util.paths import install_command

# The module transformers 4.57.1 looks for (integrations/integration_utils.py: is_*_available, and its
# INTEGRATION_TO_CALLBACK, which holds all four names); tensorboardX will do for tensorboard.
_MODULES: dict[str, tuple[str, ...]] = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "mlflow": ("mlflow",),
    "swanlab": ("swanlab",),
}
# What pyproject's extra of the same name installs (oda-sft[mlflow] is the tracking client, mlflow-skinny).
_DISTRIBUTIONS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow-skinny", "swanlab": "swanlab"}
TENSORBOARD_DIR = "tensorboard"  # in the run dir: TensorBoard reads every event file of a folder as one run
MLFLOW_DIR = "mlruns"  # in the run dir: the file store, when MLFLOW_TRACKING_URI names none
DEFAULT_PROJECT = "oda-sft"  # wandb's project and mlflow's experiment, unless WANDB_PROJECT / MLFLOW_EXPERIMENT_NAME


def install_hint(tracker: str) -> str:
    """The command that installs the tracker into this environment, as oda-sft's extra pins it: it works as
    printed (a bare `pip` may be another Python's, and `oda-sft[...]` needs oda-sft on the index)."""
    return install_command(_DISTRIBUTIONS.get(tracker, tracker))


def require(tracker: str) -> None:
    """One line, before anything starts, when the tracker's package is not installed."""
    modules = _MODULES.get(tracker, ())
    if modules and not any(importlib.util.find_spec(m) is not None for m in modules):
        raise UsageError(
            f"--report-to {tracker} needs the {modules[0]} package, which is not installed here: "
            f"`{install_hint(tracker)}`, or leave --report-to out"
        )


def run_name(model: str, dataset: str, seed: int) -> str:
    return f"{model}/{dataset}/seed-{seed}"


def settings(tracker: str, name: str, output_dir: Path) -> dict[str, Any]:
    """The trainer's settings for `tracker`, merged into the rendered config."""
    found: dict[str, Any] = {"report_to": tracker, "run_name": name}
    if tracker == "tensorboard":
        found["logging_dir"] = str(output_dir / TENSORBOARD_DIR)
    return found


def record(config: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's `tracker`: what the rendered config tells the trainer, whether from --report-to or
    from a `-- report_to=` override; None when the config names no tracker."""
    report_to = config.get("report_to")
    if report_to in (None, "none", ["none"]):
        return None
    found: dict[str, Any] = {"report_to": report_to, "run_name": config.get("run_name")}
    if config.get("logging_dir"):
        found["logging_dir"] = config["logging_dir"]
    return found


# -- The tracker run: opened before the trainer starts, continued by a resumed attempt and by `eval`. --


@dataclass(frozen=True)
class Opened:
    record: dict[str, Any] | None  # the manifest's `tracker`, with the run's id
    env: dict[str, str]  # what the trainer is told (never a secret: keys come from the caller's own environment)


def run_config(
    model: str, dataset: str, sha256: str | None, era: str, seed: int, recipe: dict[str, Any]
) -> dict[str, Any]:
    """What the tracker run is about, beside the trainer's own arguments: the era, the data and the recipe."""
    kept = {k: v for k, v in recipe.items() if k not in ("report_to", "run_name", "logging_dir", "tokenized_path")}
    return {"oda_sft/model": model, "oda_sft/dataset": dataset, "oda_sft/dataset_sha256": sha256,
            "oda_sft/recipe_era": era, "oda_sft/seed": seed, "oda_sft/recipe": kept}  # fmt: skip


def open_run(record_: dict[str, Any] | None, earlier: Any, output_dir: Path, config: dict[str, Any]) -> Opened:
    """The tracker run this attempt logs to: the earlier attempt's (its id as the manifest recorded it), else a
    new one. `earlier` is the `tracker` of this run's own manifest, if any."""
    kind = (record_ or {}).get("report_to")
    if record_ is None or not isinstance(kind, str) or kind not in _OPENERS:  # `-- report_to=[a,b]`: as told
        return Opened(record_, {})
    same = earlier if isinstance(earlier, dict) and earlier.get("report_to") == kind and earlier.get("id") else None
    try:
        return _OPENERS[kind](record_, same, output_dir, config)
    except ImportError as exc:  # require() found it, so a broken install: one line, before the trainer starts
        raise LaunchError(f"--report-to {kind}: {exc}: `{install_hint(kind)}`") from None


def _open_tensorboard(
    found: dict[str, Any], earlier: dict[str, Any] | None, output_dir: Path, config: dict[str, Any]
) -> Opened:
    # TensorBoard reads every event file of its folder as one run: the id is the folder. The trainer logs its
    # own arguments as text; oda-sft adds the era, the data and the recipe beside them, once.
    log_dir = Path(found.get("logging_dir") or output_dir / TENSORBOARD_DIR)
    if earlier is None:
        with _tensorboard_writer(log_dir) as writer:
            writer.add_text("oda_sft/config", "    " + json.dumps(config, indent=2).replace("\n", "\n    "), 0)
    return Opened({**found, "id": str(log_dir)}, {})


def _open_wandb(
    found: dict[str, Any], earlier: dict[str, Any] | None, output_dir: Path, config: dict[str, Any]
) -> Opened:
    # oda-sft chooses the id, so it knows it without reading the trainer's output, and makes the run here with its
    # config (wandb 0.31 cannot take a config file from WANDB_CONFIG_PATHS: a str is refused as its list). The
    # trainer's WandbCallback, and every resumed attempt, continue it: the same id, WANDB_RESUME=allow.
    project = os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
    if earlier:
        run_id, url = str(earlier["id"]), earlier.get("url")
    else:
        run_id = uuid.uuid4().hex[:16]
        wandb = _module("wandb")
        try:
            run = wandb.init(id=run_id, project=project, dir=str(output_dir), name=found.get("run_name"),
                             config=config, resume="allow")  # fmt: skip
        except ImportError:
            raise
        except Exception as exc:  # not logged in, no network: before the model loads, not after
            raise LaunchError(f"--report-to wandb: {exc}: `wandb login`, or set WANDB_MODE=offline") from None
        url = run.url
        run.finish()
    env = {"WANDB_RUN_ID": run_id, "WANDB_RESUME": "allow", "WANDB_DIR": str(output_dir), "WANDB_PROJECT": project}
    return Opened({**found, "id": run_id, "project": project, "dir": str(output_dir), "url": url}, env)


def _open_mlflow(
    found: dict[str, Any], earlier: dict[str, Any] | None, output_dir: Path, config: dict[str, Any]
) -> Opened:
    # The run is made here, up front, so its id is known: the trainer's MLflowCallback resumes it (MLFLOW_RUN_ID).
    # Without MLFLOW_TRACKING_URI, a file store in the run dir (`mlflow ui --backend-store-uri` shows it).
    uri = os.environ.get("MLFLOW_TRACKING_URI") or (output_dir / MLFLOW_DIR).absolute().as_uri()
    if earlier and earlier.get("tracking_uri") == _shown_uri(uri):
        run_id = str(earlier["id"])
    else:
        with _environ(_file_store_allowed(uri)):
            client = _module("mlflow.tracking").MlflowClient(uri)
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_PROJECT
            got = client.get_experiment_by_name(name)
            experiment = got.experiment_id if got is not None else client.create_experiment(name)
            tags = {k.replace("/", "."): v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
            run_id = client.create_run(experiment, tags=tags, run_name=found.get("run_name")).info.run_id
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_RUN_ID": run_id, **_file_store_allowed(uri)}
    return Opened({**found, "id": run_id, "tracking_uri": _shown_uri(uri)}, env)


def _file_store_allowed(uri: str) -> dict[str, str]:
    # mlflow 3 refuses its file store unless told (it is in "maintenance mode"); it needs no database package,
    # so mlflow-skinny will do. MLFLOW_TRACKING_URI chooses any other store (sqlite:///..., a server).
    return {"MLFLOW_ALLOW_FILE_STORE": "true"} if uri.startswith("file:") else {}


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """`values` in this process's environment for a while (mlflow reads its settings from there)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _shown_uri(uri: str) -> str:
    """A tracking URI as recorded: without a user or password it may carry (https://user:pass@host)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=host))


_OPENERS = {"tensorboard": _open_tensorboard, "wandb": _open_wandb, "mlflow": _open_mlflow}


def eval_metrics(rec: dict[str, Any]) -> dict[str, float]:
    """An eval record's scores as tracker metrics: eval/<benchmark>, eval/domain/<domain>, eval/overall."""
    found = {f"eval/{k}": float(v) for k, v in (rec.get("scores") or {}).items() if isinstance(v, int | float)}
    found.update(
        {f"eval/domain/{k}": float(v) for k, v in (rec.get("domains") or {}).items() if isinstance(v, int | float)}
    )
    if isinstance(rec.get("overall"), int | float):
        found["eval/overall"] = float(rec["overall"])
    return found


def log_eval(run_dir: Path, rec: dict[str, Any]) -> None:
    """Log a finished eval's scores to the run's tracker run, at the run's last training step, so one dashboard
    shows the training and its evaluation. A tracker that cannot be reached is a warning: the eval stands."""
    found = (manifest.read(run_dir / manifest.MANIFEST_NAME) or {}).get("tracker")
    kind = found.get("report_to") if isinstance(found, dict) else None
    if not isinstance(found, dict) or not isinstance(kind, str) or kind not in _LOGGERS or not found.get("id"):
        return
    metrics = eval_metrics(rec)
    step = final_step(run_dir)
    try:
        _LOGGERS[kind](found, metrics, step, run_dir)
    except ImportError as exc:
        say(f"warning: the scores were not logged to {kind} ({exc}): `{install_hint(kind)}`")
    except Exception as exc:  # a tracker's server or store: the scores are in the manifest all the same
        say(f"warning: the scores were not logged to {kind} run {found['id']} ({type(exc).__name__}: {exc})")
    else:
        say(f"scores logged to {kind} run {found['id']} at step {step}")


def final_step(run_dir: Path) -> int:
    """The run's last training step (trainer_state.json, which the trainer writes at the end), else 0."""
    try:
        state = json.loads((run_dir / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    step = state.get("global_step") if isinstance(state, dict) else None
    return step if isinstance(step, int) else 0


def _log_tensorboard(found: dict[str, Any], metrics: dict[str, float], step: int, run_dir: Path) -> None:
    with _tensorboard_writer(Path(found["id"])) as writer:
        for name, value in metrics.items():
            writer.add_scalar(name, value, step)


def _log_wandb(found: dict[str, Any], metrics: dict[str, float], step: int, run_dir: Path) -> None:
    wandb = _module("wandb")
    # The trainer's x-axis is train/global_step (transformers' WandbCallback defines it): scores sit at its end.
    run = wandb.init(id=found["id"], project=found.get("project"), dir=found.get("dir") or str(run_dir),
                     resume="allow", name=found.get("run_name"))  # fmt: skip
    try:
        run.log({**metrics, "train/global_step": step})
    finally:
        run.finish()


def _log_mlflow(found: dict[str, Any], metrics: dict[str, float], step: int, run_dir: Path) -> None:
    # The manifest's URI has no password: a server that needs one has it in MLFLOW_TRACKING_URI here as well.
    uri = os.environ.get("MLFLOW_TRACKING_URI") or found["tracking_uri"]
    with _environ(_file_store_allowed(uri)):
        client = _module("mlflow.tracking").MlflowClient(uri)
        for name, value in metrics.items():
            client.log_metric(found["id"], name, value, step=step)


_LOGGERS: dict[str, Callable[[dict[str, Any], dict[str, float], int, Path], None]] = {
    "tensorboard": _log_tensorboard,
    "wandb": _log_wandb,
    "mlflow": _log_mlflow,
}


@contextmanager
def _tensorboard_writer(log_dir: Path) -> Iterator[Any]:
    """transformers' own choice of writer (TensorBoardCallback): torch's, else tensorboardX's."""
    try:
        writer_class = _module("torch.utils.tensorboard").SummaryWriter
    except ImportError:
        writer_class = _module("tensorboardX").SummaryWriter
    writer = writer_class(log_dir=str(log_dir))
    try:
        yield writer
    finally:
        writer.close()


def _module(name: str) -> Any:
    """A tracker's package, imported only when used (each is an optional extra, untyped for mypy)."""
    return importlib.import_module(name)
