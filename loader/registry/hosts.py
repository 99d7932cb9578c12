"""Results that belong to one host: verify, probe, activation.

One registry serves several GPU hosts (each with its own model root). What a
host found about its own copy of a model is recorded under the entry's
``hosts`` field, keyed by host name, so two hosts never overwrite each other's
verdicts::

    "hosts": {"gpu-a": {"verify": {"status": "ok", "at": "…", "aggregate_sha256": "…"}},
              "gpu-b": {"verify": {"status": "violated", …}, "probe": {…}}}

``hosts`` is a dynamic field (tooling owns it), and dicts merge key by key, so
each host's records stay side by side in the discovered layer.

The host name is ``registry.host`` (``IMAGEWORKS_HOST``, else ``HOSTNAME``),
else the machine's own name.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from loader.config import Config
    from loader.registry.schema import RegistryEntry

FIELD = "hosts"


def host_name(cfg: Config) -> str:
    """This host's name, as its records are keyed."""
    configured = cfg.get("registry.host")
    if configured not in (None, ""):
        return str(configured)
    if hasattr(os, "uname"):  # what gethostname() returns, without importing socket
        return os.uname().nodename or "localhost"
    import socket

    return socket.gethostname() or "localhost"


def now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def records(entry: RegistryEntry) -> dict[str, Any]:
    """Every host's records on ``entry`` (empty when none)."""
    value = (entry.model_extra or {}).get(FIELD)
    return value if isinstance(value, dict) else {}


def host_record(entry: RegistryEntry, host: str, kind: str) -> dict[str, Any] | None:
    """One host's record of one kind (``verify``, ``probe``, ``activation``)."""
    mine = records(entry).get(host)
    value = mine.get(kind) if isinstance(mine, dict) else None
    return value if isinstance(value, dict) else None


def record(entry: RegistryEntry, host: str, kind: str, result: dict[str, Any]) -> None:
    """Set ``hosts.HOST.KIND`` on ``entry`` (the caller saves). Other hosts'
    records, and this host's other kinds, stay as they are."""
    every = {key: dict(value) for key, value in records(entry).items() if isinstance(value, dict)}
    every.setdefault(host, {})[kind] = result
    setattr(entry, FIELD, every)


def age(when: str | None, *, at: datetime | None = None) -> str:
    """``3d``, ``5h``, ``12m``, ``40s`` since an ISO time; ``""`` when unknown."""
    from datetime import UTC, datetime

    if not when:
        return ""
    try:
        then = datetime.fromisoformat(when)
    except ValueError:
        return ""
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int(((at or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def last_verify(entry: RegistryEntry, host: str) -> dict[str, Any]:
    """The last verify of ``entry`` on ``host``: ``{"status", "at"}`` with
    status ``ok``, ``violated`` or ``never``. A verify that failed stays shown
    until a later one passes. An entry verified before per-host records
    (``version_lock.last_verified`` only) counts as ``ok`` then."""
    return _verify_status(host_record(entry, host, "verify"), entry.version_lock.last_verified)


def last_verify_plain(data: dict[str, Any], host: str) -> dict[str, Any]:
    """``last_verify`` of an entry read as plain data (a confirmed snapshot)."""
    every = data.get(FIELD)
    mine = every.get(host) if isinstance(every, dict) else None
    mine = mine.get("verify") if isinstance(mine, dict) else None
    lock = data.get("version_lock")
    verified = lock.get("last_verified") if isinstance(lock, dict) else None
    return _verify_status(mine if isinstance(mine, dict) else None, verified)


def _verify_status(mine: dict[str, Any] | None, last_verified: Any) -> dict[str, Any]:
    if mine and mine.get("status") in ("ok", "violated", "legacy-lock", "unlocked"):
        status = "violated" if mine["status"] == "violated" else "ok"
        return {"status": status, "at": mine.get("at")}
    if last_verified:
        return {"status": "ok", "at": last_verified}
    return {"status": "never", "at": None}


def last_probe(entry: RegistryEntry, host: str) -> dict[str, Any]:
    """The last vision probe: ``{"status": ok|failed|never, "at"}``, this
    host's record first, else the entry's ``probes.vision``."""
    mine = host_record(entry, host, "probe")
    probe = mine if mine is not None else entry.probes.vision
    if not isinstance(probe, dict):
        return {"status": "never", "at": None}
    ok = probe.get("vision_ok")
    status = "ok" if ok is True else ("failed" if ok is False else "never")
    return {"status": status, "at": probe.get("timestamp") or probe.get("at")}
