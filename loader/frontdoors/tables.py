"""``--format table``: the results of ``list``, ``metrics`` and
``current-model`` as a table for a person at a terminal.

JSON on stdout stays the default for scripts; a table is asked for. The rows
come from the operation's result (which names the models); the columns a
person wants at a glance come from the same registry entries:

    NAME  BACKEND  SIZE  LOCKED  VERIFY  PROBE  SERVED

VERIFY is this host's last verify (``ok 3d``, ``violated 2h``, ``never``),
PROBE its last vision probe (``-`` for a model without vision), SERVED marks
the model the orchestrator serves now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loader.registry.hosts import age, host_name, last_probe, last_verify

if TYPE_CHECKING:
    from loader.registry.core import Registry
    from loader.registry.schema import RegistryEntry

FORMATS = ("json", "table")
TABLE_COMMANDS = ("list", "metrics", "current-model")


def human_size(size: int | None) -> str:
    """``4.6G``, ``512M``, ``-`` when unknown (powers of 1024, as ``ls -h``)."""
    if not isinstance(size, int) or size < 0:
        return "-"
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" or value >= 10 else f"{value:.1f}{unit}"
        value /= 1024
    return "-"


def _with_age(status: str, when: str | None) -> str:
    since = age(when)
    return f"{status} {since}" if since and status != "never" else status


def served_now(registry: Registry) -> str | None:
    """The logical name the orchestrator serves now, or None. Reads the state
    file only (a stale one is left for current-model to clear)."""
    from loader.errors import RegistryError

    try:
        from loader.orchestrator.settings import Settings
        from loader.orchestrator.state import read_state
        from loader.orchestrator.switch import liveness
        from loader.orchestrator.tree import Liveness

        state = read_state(Settings.from_config(registry.cfg).state_file)
        if state is not None and liveness(state) is Liveness.RUNNING:
            return state.logical_name
    except (RegistryError, OSError):
        return None
    return None


def model_row(entry: RegistryEntry, host: str, served: str | None) -> list[str]:
    verify = last_verify(entry, host)
    probe = last_probe(entry, host)
    probed = _with_age(probe["status"], probe["at"])
    return [
        entry.name,
        entry.backend,
        human_size(entry.download_size_bytes),
        "yes" if entry.locked() else "no",
        _with_age(verify["status"], verify["at"]),
        probed if entry.has_capability("vision") or probe["status"] != "never" else "-",
        "yes" if served == entry.name else "",
    ]


MODEL_COLUMNS = ["NAME", "BACKEND", "SIZE", "LOCKED", "VERIFY", "PROBE", "SERVED"]


def render_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; no trailing blanks."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)  # an argv reads as a command line
    return str(value)


def _names(result: Any) -> list[str]:
    if isinstance(result, dict) and "name" in result:
        return [result["name"]]
    if isinstance(result, list):
        return [r["name"] for r in result if isinstance(r, dict) and "name" in r]
    return []


def render(command: str, result: Any, registry: Registry) -> str:
    """The table for ``command``'s ``result``."""
    if command == "current-model":
        if result is None:
            return "no model is served (no vLLM server runs)\n"
        rows = [[key, _cell(value)] for key, value in result.items()]
        return render_rows(["FIELD", "VALUE"], rows)
    entries = registry.ensure_loaded()
    host = host_name(registry.cfg)
    served = served_now(registry)
    rows = [model_row(entries[n], host, served) for n in _names(result) if n in entries]
    if not rows:
        return "no models\n"
    return render_rows(MODEL_COLUMNS, rows)
