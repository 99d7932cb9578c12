"""The bad-input corpus (``data/bad_inputs/corpus.jsonl``): malformed layers,
fields, names, arguments and config overrides, one case per line.

Each case must give exit 1, exactly one line on stderr naming what is wrong
(every ``expect`` substring), nothing on stdout, and no file changed. Used by
``test_hardening_bad_input.py`` (in-process and a sample through the real
executable) and by ``bench/run_bad_inputs.py`` (every case through the real
executable).

Case keys: ``curated``/``discovered`` (a JSON list), ``curated_text``/
``discovered_text`` (raw text), ``curated_b64`` (raw bytes), ``patch`` (fields
merged into the base entry ``m``), ``special`` (``fifo``, ``dev-zero``,
``folder``: the discovered layer is not a regular file), ``nest`` ([open,
middle, close, depth]: what ``@NEST@`` stands for), ``args`` (``{tmp}`` and
``{model}`` are replaced), ``expect``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "data" / "bad_inputs" / "corpus.jsonl"
CURATED = "model_registry.curated.json"
DISCOVERED = "model_registry.discovered.json"
BASE_ENTRY = {
    "name": "m",
    "backend": "vllm",
    "backend_config": {"port": 24001, "model_path": None},
    "capabilities": {"text": True},
    "roles": ["chat"],
}


def load_cases() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _expand(value: Any, places: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, text in places.items():
            value = value.replace(key, text)
        return value
    if isinstance(value, list):
        return [_expand(v, places) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, places) for k, v in value.items()}
    return value


def _patched(patch: dict[str, Any]) -> dict[str, Any]:
    entry = json.loads(json.dumps(BASE_ENTRY))
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(entry.get(key), dict):
            entry[key].update(value)
        else:
            entry[key] = value
    return entry


def materialize(case: dict[str, Any], base: Path) -> tuple[Path, list[str]]:
    """Write the case's registry under ``base``; returns its folder and the
    command-line words to run (the folder is given by IMAGEWORKS_REGISTRY_DIR,
    see ``environment``, so the composed config is cached across cases)."""
    folder, model = base / "reg", base / "model"
    folder.mkdir(parents=True)
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    places = {"{tmp}": str(base), "{model}": str(model)}
    if "nest" in case:
        opener, middle, closer, depth = case["nest"]
        places["@NEST@"] = opener * depth + middle + closer * depth
    case = _expand(case, places)
    layers = {
        CURATED: [_patched(case.get("patch", {}))],
        DISCOVERED: [{"name": "m", "family": "f"}],
    }
    for file, key in ((CURATED, "curated"), (DISCOVERED, "discovered")):
        path = folder / file
        if f"{key}_b64" in case:
            path.write_bytes(base64.b64decode(case[f"{key}_b64"]))
        elif f"{key}_text" in case:
            path.write_bytes(case[f"{key}_text"].encode("utf-8"))
        else:
            layer = case.get(key, layers[file])
            path.write_text(json.dumps(layer, indent=2) + "\n", encoding="utf-8")
    special = case.get("special")
    if special == "curated-link":  # the curated layer is a symlink to a file elsewhere
        target = base / "shared-curated.json"
        (folder / CURATED).rename(target)
        (folder / CURATED).symlink_to(target)
        special = None
    if special:
        (folder / DISCOVERED).unlink()
        if special == "fifo":
            os.mkfifo(folder / DISCOVERED)
        elif special == "dev-zero":
            (folder / DISCOVERED).symlink_to("/dev/zero")
        else:
            (folder / DISCOVERED).mkdir()
    return folder, list(case["args"])


def environment(folder: Path) -> dict[str, str]:
    return {"IMAGEWORKS_REGISTRY_DIR": str(folder)}


def fingerprint(folder: Path) -> dict[str, str]:
    """Every entry in the folder: regular files by content, others by kind."""
    seen = {}
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            seen[path.name] = "link:" + os.readlink(path)
        elif path.is_file():
            seen[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            seen[path.name] = "dir" if path.is_dir() else "special"
    return seen


def problems(
    case: dict[str, Any], code: int, stdout: str, stderr: str, before: dict, after: dict
) -> list[str]:
    """Everything the case's outcome gets wrong (empty: it passed)."""
    found = []
    lines = stderr.strip().splitlines()
    if code != 1:
        found.append(f"exit {code}, expected 1")
    if len(lines) != 1:
        found.append(f"{len(lines)} stderr lines, expected 1: {stderr[-500:]!r}")
    elif not lines[0].startswith("imageworks-loader: error: "):
        found.append(f"not an error line: {lines[0][:300]!r}")
    else:
        found += [f"{n!r} not in {lines[0][:300]!r}" for n in case["expect"] if n not in lines[0]]
    if stdout.strip():
        found.append(f"stdout not empty: {stdout[:200]!r}")
    if after != before:
        found.append("files changed")
    return found
