"""Run by the OpenCompass environment's Python (never imported by oda-sft): read each benchmark with
OpenCompass's own loaders and write its questions as JSON Lines.

argv[1]: a JSON request {"out": DIR, "benchmarks": [{"name", "config": PATH | null, "custom": PATH | null}]}.
Prints one JSON line per benchmark: {"name", "status": "ok" | "missing" | "error", ...}. Data is never
downloaded: a path OpenCompass would fetch is reported as missing instead (OpenCompass's
utils/datasets.py get_data_path would download it from DATASETS_URL).
"""

import json
import os
import sys


def _resolve(dataset_id, local_mode):
    """Where get_data_path looks (utils/datasets.py), without its download: (found or None, looked at)."""
    from opencompass.utils.datasets_info import DATASETS_MAPPING

    if os.path.isabs(dataset_id):
        return (dataset_id if os.path.exists(dataset_id) else None), [dataset_id]
    cache = os.environ.get("COMPASS_DATA_CACHE", "")
    local = dataset_id if local_mode else (DATASETS_MAPPING.get(dataset_id, {}).get("local") or dataset_id)
    first = os.path.join(cache, local)
    default = os.path.join(os.path.expanduser("~"), ".cache/opencompass/", first)
    for candidate in (first, default):
        if os.path.exists(candidate):
            return os.path.abspath(candidate), [first, default]
    return None, [first, default]


def _url(looked):
    from opencompass.utils.datasets_info import DATASETS_URL

    found = ""
    for key, info in DATASETS_URL.items():
        if key in looked:
            found = info.get("url", "")
    return found


def _configs(entry):
    if entry.get("custom"):
        from opencompass.datasets.custom import make_custom_dataset_config

        path = entry["custom"]
        return [make_custom_dataset_config({"path": path, "data_type": "qa", "infer_method": "gen"})]
    from mmengine.config import Config

    cfg = Config.fromfile(entry["config"], format_python_code=False)
    out = []
    for key in cfg.keys():  # noqa: SIM118 (an mmengine Config)
        if key.endswith("_datasets"):
            out += list(cfg[key])
    return out


def _text(row, columns):
    parts = [row.get(c) for c in columns]
    return "\n".join(p if isinstance(p, str) else json.dumps(p, ensure_ascii=False) for p in parts if p is not None)


def _one(entry, out_dir):
    from opencompass.utils import build_dataset_from_cfg

    datasets = _configs(entry)
    files = []
    for ds in datasets:
        path = ds.get("path")
        if not isinstance(path, str):
            continue
        found, looked = _resolve(path, bool(ds.get("local_mode")))
        if found is None:
            return {
                "status": "missing",
                "dataset": ds.get("abbr") or path,
                "path": path,
                "looked": looked,
                "url": _url(looked[0]),
            }
        files.append(found)
    target = os.path.join(out_dir, entry["name"] + ".jsonl")
    count = 0
    with open(target, "w", encoding="utf-8") as handle:
        for ds in datasets:
            built = build_dataset_from_cfg(ds)
            columns = list(ds.get("reader_cfg", {}).get("input_columns") or [])
            split = built.test
            for row in split:
                text = _text(row, columns)
                handle.write(json.dumps({"subset": ds.get("abbr", ""), "text": text}, ensure_ascii=False) + "\n")
                count += 1
    return {"status": "ok", "files": sorted(set(files)), "items": count, "texts": target}


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        request = json.load(handle)
    for entry in request["benchmarks"]:
        try:
            answer = _one(entry, request["out"])
        except Exception as exc:  # one benchmark's failure is reported, the others still run
            answer = {"status": "error", "message": f"{type(exc).__name__}: {exc}"[:500]}
        print(json.dumps({"name": entry["name"], **answer}), flush=True)


if __name__ == "__main__":
    main()
