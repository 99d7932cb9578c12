"""Validating composed entries, with one-line messages naming file, entry and field."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loader import logs
from loader.errors import EntryValidationError
from loader.registry.merge import DynamicFields
from loader.registry.sources import Composed, Sources, locate_field

if TYPE_CHECKING:
    from loader.registry.schema import RegistryEntry

_ERROR_WORDS = {
    "int_parsing": "not an integer",
    "int_type": "not an integer",
    "int_from_float": "not an integer",
    "float_parsing": "not a number",
    "float_type": "not a number",
    "finite_number": "not a finite number",
    "bool_parsing": "not a boolean",
    "bool_type": "not a boolean",
    "string_type": "not a string",
    "list_type": "not a list",
    "dict_type": "not an object",
    "model_type": "not an object",
    "model_attributes_type": "not an object",
    "missing": "missing",
}


def validate(
    result: Composed,
    sources: Sources,
    dynamic: DynamicFields,
    reuse: Mapping[str, RegistryEntry] | None = None,
    *,
    keep: bool = True,
) -> dict[str, RegistryEntry]:
    """Validate every merged entry; the first bad field is reported precisely.

    ``reuse``: entry objects a caller may still hold (a writer reloading
    after its save); each one whose content the fresh entry confirms is kept
    instead, so a later change to it is not lost. Done entry by entry, so a
    10,000-entry reload never holds two validated copies of the registry.
    ``keep=False``: each entry is checked and let go; returns ``{}``."""
    from pydantic import ValidationError

    from loader.registry.schema import RegistryEntry

    entries: dict[str, RegistryEntry] = {}
    _warn_zero_ports(result, sources, dynamic)
    for name in result.order:
        try:
            entry = RegistryEntry.model_validate(result.merged[name])
        except ValidationError as exc:
            error = exc.errors()[0]
            path = tuple(str(part) for part in error["loc"])
            words = _ERROR_WORDS.get(error["type"], error["msg"].lower())
            shown = "" if error["type"] == "missing" else f": {_show(error.get('input'))}"
            where = locate_field(result, sources, dynamic, name, path)
            raise EntryValidationError(
                f"{where}: {_dotted(error['loc'])}: {words}{shown}"
            ) from None
        if not keep:
            continue
        held = reuse.get(name) if reuse else None
        if held is not None and held.model_dump() == entry.model_dump():
            entry = held
        entries[name] = entry
    return entries


def _warn_zero_ports(result: Composed, sources: Sources, dynamic: DynamicFields) -> None:
    """One line naming the entries whose ``backend_config.port`` is ``0``: ImageWorks
    writes it for "no port", and the backend's default port is used instead."""
    zero = []
    for name in result.order:
        config = result.merged[name].get("backend_config")
        port = config.get("port") if isinstance(config, dict) else None
        if port == 0 and not isinstance(port, bool):
            zero.append(name)
    if not zero:
        return
    where = locate_field(result, sources, dynamic, zero[0], ("backend_config", "port"))
    more = f" (also {', '.join(repr(n) for n in zero[1:])})" if zero[1:] else ""
    logs.warning(
        __name__,
        f"{where}: backend_config.port: 0 means no port, so the backend's default "
        f"port is used (as ImageWorks reads it){more}",
    )


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
