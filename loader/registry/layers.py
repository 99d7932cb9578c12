"""Reading and writing the layer files: strict reads, atomic locked writes.

Writes go through :func:`loader.fileio.atomic_write` (a temp file in the same
folder, fsynced and renamed over the target), so nothing is ever
half-written. Reading strictly lives in :mod:`loader.registry.layer_reading`,
the folder lock in :mod:`loader.registry.folder_lock` and the file I/O in
:mod:`loader.fileio`; this module is the documented path for all of their
names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from loader.errors import RegistryWriteError
from loader.fileio import (
    FileTooLarge,
    NotRegularFile,
    atomic_write,
    atomic_write_bytes,
    file_holds,
    host_tag,
    read_regular_file,
    remove_dead_temps,
    temp_path,
)
from loader.registry.folder_lock import LOCK_NAME, LOCK_TIMEOUT_S, RegistryLockBusy, registry_lock
from loader.registry.layer_reading import (
    DEFAULT_MAX_LAYER_BYTES,
    JsonStyle,
    Layer,
    layer_from_bytes,
    parse_layer,
    read_layer_bytes,
)

# The one "not a regular file" error (loader.fileio), under its older name.
NotARegularFile = NotRegularFile

__all__ = [
    "DEFAULT_MAX_LAYER_BYTES",
    "LOCK_NAME",
    "LOCK_TIMEOUT_S",
    "FileTooLarge",
    "JsonStyle",
    "Layer",
    "NotARegularFile",
    "NotRegularFile",
    "RegistryLockBusy",
    "atomic_write_bytes",
    "file_holds",
    "host_tag",
    "layer_from_bytes",
    "parse_layer",
    "read_layer_bytes",
    "read_regular_file",
    "registry_lock",
    "remove_dead_temps",
    "temp_path",
    "write_if_changed",
]


def _refuse_symlink(path: Path) -> None:
    # Renaming over a link would replace the link, and its shared target would
    # never see the change: refuse, and say what to do instead.
    if os.path.islink(path):
        raise RegistryWriteError(
            f"{path}: is a symlink (to {os.readlink(path)}); refusing to replace it: "
            "point registry.dir at the target's folder, or replace the link with a file"
        )


def write_if_changed(path: Path, pieces: Iterable[bytes]) -> bool:
    """Atomically replace ``path`` with ``pieces`` unless it already holds them.

    One pass: the pieces go to a temp file while being compared with the
    current file; the temp file is dropped when they match. Returns True when
    the file was replaced; failures raise ``RegistryWriteError``. Callers hold
    the registry lock; temp files left by dead writers are removed here.
    """
    _refuse_symlink(path)
    try:
        return atomic_write(path, pieces, unless_same=True)
    except (OSError, ValueError) as exc:  # ValueError: a NaN the encoder refused
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise RegistryWriteError(f"{path}: cannot write: {reason}") from None
