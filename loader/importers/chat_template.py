"""Chat templates embedded in ``tokenizer_config.json``, extracted to files.

vLLM takes a template as a file (``--chat-template``). When a model folder
has no template file of its own but its ``tokenizer_config.json`` holds a
``chat_template`` string (Jinja: it contains ``{{`` and ``}}``), the importer
records ``chat_template = {"source": "extracted", "path", "sha256"}`` and
writes the text to ``importers.chat_templates.dir`` (the registry's state
folder; ``IMAGEWORKS_TEMPLATE_CACHE_DIR`` as in the ImageWorks loader). The
file is named by its sha256, so the same text is one file, a re-import
writes nothing new, and a dry run can name the path without writing it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loader.fileio import atomic_write_bytes, read_regular_file

if TYPE_CHECKING:
    from loader.config import Config

_MAX_TOKENIZER_CONFIG = 32 * 1024 * 1024


def template_dir(cfg: Config) -> Path:
    return cfg.importers.chat_templates_dir or Path("_staging/chat_templates").absolute()


def embedded_template(folder: Path) -> str | None:
    """The Jinja ``chat_template`` string of a folder's tokenizer config, if any."""
    try:
        data = json.loads(
            read_regular_file(folder / "tokenizer_config.json", _MAX_TOKENIZER_CONFIG)
        )
    except (OSError, ValueError):
        return None
    text = data.get("chat_template") if isinstance(data, dict) else None
    if isinstance(text, str) and "{{" in text and "}}" in text:
        return text
    return None


class TemplateStore:
    """Templates an import extracts: their fields now, their files on ``commit``
    (after the plan is written; never on a dry run)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pending: dict[Path, bytes] = {}

    def extract(self, folder: Path) -> dict[str, Any] | None:
        text = embedded_template(folder)
        if text is None:
            return None
        data = text.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        path = self.folder / f"{digest}.jinja"
        self.pending[path] = data
        return {"source": "extracted", "path": str(path), "sha256": digest}

    def commit(self) -> list[Path]:
        """Write each template whose file is absent or differs; returns those written."""
        written = []
        for path, data in sorted(self.pending.items()):
            try:
                if read_regular_file(path, len(data) + 1) == data:
                    continue
            except OSError:
                pass
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
            written.append(path)
        self.pending.clear()
        return written
