"""The pipeline's state folder and doit's database, checked before doit opens them.

doit opens its database as it starts and reports any problem with a
traceback. Here, before that:

- the state folder is created; a read-only registry or a path that cannot be
  a folder is one line (exit 1), and nothing is left behind;
- a damaged database (garbage, truncated, text) is moved aside with one
  warning line and a new one is made: what it held (which tasks are up to
  date) is re-derived, the hashes from the stat cache;
- the database is opened for writing once, so a full disk is one line too.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from loader import logs
from loader.errors import RegistryWriteError

DATABASE = "doit.sqlite3"
# Errors that say the file is not a usable database (not: locked, busy, full).
_DAMAGED = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}
# doit's own table (doit.dependency.SqliteDB); created here as doit would.
_TABLE = "create table if not exists doit (task_id text not null primary key, task_data json)"


def prepare_state(state_dir: Path, registry_folder: Path | None = None) -> Path:
    """Make ``state_dir`` and a usable ``doit.sqlite3`` in it; returns the
    database's path. Raises ``RegistryWriteError`` (one line) when the
    registry folder, the state folder or the database cannot be written,
    leaving no new file behind."""
    if registry_folder is not None and registry_folder.is_dir():
        _check_writable(registry_folder)
    created = _make_folder(state_dir)
    database = state_dir / DATABASE
    try:
        _set_aside_if_damaged(database)
        _open_for_writing(database)
    except RegistryWriteError:
        if created:
            with contextlib.suppress(OSError):
                state_dir.rmdir()
        raise
    return database


def _check_writable(folder: Path) -> None:
    """The pipeline records hashes, locks and the snapshot in the registry
    folder: a read-only or full one is refused before any task runs."""
    if not os.access(folder, os.W_OK):
        raise RegistryWriteError(
            f"{folder}: the registry folder is read-only; refresh and doit record "
            "hashes, locks and the snapshot there; nothing was changed"
        )
    with contextlib.suppress(OSError):
        if os.statvfs(folder).f_bavail == 0:
            raise RegistryWriteError(
                f"{folder}: no space left on the registry's disk; refresh and doit "
                "record hashes, locks and the snapshot there; nothing was changed"
            )


def _make_folder(state_dir: Path) -> bool:
    if state_dir.is_dir():
        return False
    try:
        state_dir.mkdir(parents=True)
    except FileExistsError:
        if state_dir.is_dir():
            return False
        raise RegistryWriteError(
            f"{state_dir}: the pipeline's state folder is a file, not a folder "
            "(set pipeline.state_dir=PATH)"
        ) from None
    except OSError as exc:
        raise RegistryWriteError(
            f"{state_dir}: cannot create the pipeline's state folder ({exc.strerror}); "
            "nothing was changed (set pipeline.state_dir=PATH to a writable folder)"
        ) from None
    return True


def _damage(database: Path) -> str | None:
    """Why ``database`` is not a usable SQLite file, or None (it is, or it is absent)."""
    try:
        if database.stat().st_size == 0:
            return None  # SQLite reads an empty file as an empty database
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RegistryWriteError(
            f"{database}: cannot read doit's database ({exc.strerror})"
        ) from None
    try:
        # Not read-only: a hot journal left by a killed run is rolled back here,
        # as doit's own open would.
        conn = sqlite3.connect(database)
    except sqlite3.Error as exc:
        raise RegistryWriteError(f"{database}: cannot open doit's database ({exc})") from None
    try:
        rows = conn.execute("pragma quick_check").fetchall()
        if rows != [("ok",)]:
            return f"quick_check: {str(rows[0][0])[:120] if rows else 'no answer'}"
        conn.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", None) in _DAMAGED:
            return str(exc)
        raise RegistryWriteError(f"{database}: cannot read doit's database ({exc})") from None
    finally:
        conn.close()
    return None


def _set_aside_if_damaged(database: Path) -> None:
    reason = _damage(database)
    if reason is None:
        return
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = database.with_name(f"{database.name}.damaged-{stamp}-{os.getpid()}")
    try:
        os.replace(database, aside)
        for suffix in ("-journal", "-wal", "-shm"):  # they belong to the damaged file
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{database}{suffix}", f"{aside}{suffix}")
    except OSError as exc:
        raise RegistryWriteError(
            f"{database}: doit's database is damaged ({reason}) and cannot be moved "
            f"aside ({exc.strerror}); remove it by hand"
        ) from None
    logs.warning(
        __name__,
        f"{database}: doit's database is damaged ({reason}); moved aside to "
        f"{aside.name} and rebuilt: every task checks its files again (hashes come "
        "from the stat cache)",
    )


def _open_for_writing(database: Path) -> None:
    existed = database.exists()
    try:
        conn = sqlite3.connect(database)
        try:
            conn.execute(_TABLE)
            conn.execute("begin immediate")  # takes the write lock: the file is writable
            conn.rollback()
            conn.commit()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if not existed:
            with contextlib.suppress(OSError):
                database.unlink()
        raise RegistryWriteError(
            f"{database}: cannot write doit's database ({exc}); nothing was changed "
            "(a read-only or full disk? set pipeline.state_dir=PATH elsewhere)"
        ) from None
