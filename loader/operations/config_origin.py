"""Where a config value came from: ``explain --config KEY``.

A value is set by a command-line override, else by ``conf/config.yaml`` (its
``_self_`` comes last in the defaults list, so it wins), else by the file of
the group the key belongs to (``conf/backends/default.yaml``, or the option an
override chose: ``profile=ci`` -> ``conf/profile/ci.yaml``). A value that reads
an environment variable (``${oc.env:VAR,default}``) also names the variable
and whether it is set.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loader.config import Config, conf_dir
from loader.errors import OverrideError

if TYPE_CHECKING:
    from collections.abc import Sequence

_ENV_REF = re.compile(r"\$\{oc\.env:([A-Za-z_]\w*)")
_MISSING = object()


def _at(data: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _group_choices(conf: Path, overrides: Sequence[str]) -> dict[str, str]:
    """Each config group's chosen option: the defaults list, then overrides."""
    chosen: dict[str, str] = {}
    for item in _yaml(conf / "config.yaml").get("defaults") or []:
        if isinstance(item, dict):
            for group, option in item.items():
                if isinstance(group, str) and not group.startswith("override "):
                    chosen[group] = str(option)
    for text in overrides:
        key, _, value = text.partition("=")
        if key.lstrip("+~") in chosen and "." not in key:
            chosen[key.lstrip("+~")] = value
    return chosen


def _override_for(key: str, overrides: Sequence[str], groups: set[str]) -> str | None:
    for text in reversed(overrides):
        name = text.partition("=")[0].lstrip("+~")
        if name in groups:
            continue  # `profile=ci` chooses a file; it sets no value itself
        if name == key or key.startswith(name + "."):
            return text
    return None


def _show(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def explain_config_key(cfg: Config, key: str) -> dict[str, Any]:
    """The resolved value of config ``key`` and what set it."""
    parts = [p for p in key.split(".") if p]
    raw = _at(cfg.raw, parts)
    if not parts or raw is _MISSING:
        top = ", ".join(sorted(k for k in cfg.raw if k != "hydra"))
        raise OverrideError(f"explain --config: no config key {key!r} (top-level keys: {top})")
    result: dict[str, Any] = {"key": key, "value": cfg.get(key)}
    if isinstance(raw, str) and "${" in raw:
        result["raw"] = raw
    conf = conf_dir()
    overrides = cfg.overrides or ()
    choices = _group_choices(conf, overrides)
    override = _override_for(key, overrides, set(choices))
    if override is not None:
        result["source"] = "override"
        result["override"] = override
    elif _at(_yaml(conf / "config.yaml"), parts) is not _MISSING:
        result["source"] = _show(conf / "config.yaml")
    else:
        option = choices.get(parts[0])
        path = conf / parts[0] / f"{option}.yaml"
        if option is not None and _at(_yaml(path), parts[1:]) is not _MISSING:
            result["source"] = _show(path)
        else:
            result["source"] = "default"  # a group's value not found in its file
    names = _ENV_REF.findall(raw) if isinstance(raw, str) else []
    if names:
        result["environment"] = {name: os.environ.get(name) for name in names}
        first_set = next((n for n in names if os.environ.get(n) is not None), None)
        if first_set and override is None:
            result["source"] += f" (environment variable {first_set})"
    return result
