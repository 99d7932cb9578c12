"""The docs stay true: the CLI reference matches the program, links resolve."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GENERATOR = DOCS / "gen_cli_reference.py"
CLI_REFERENCE = DOCS / "cli.md"

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)


def _python_version_of_reference() -> str | None:
    match = re.search(r"Generated with Python (\d+\.\d+)", CLI_REFERENCE.read_text("utf-8"))
    return match.group(1) if match else None


def test_cli_reference_is_up_to_date():
    recorded = _python_version_of_reference()
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if recorded and recorded != running:
        pytest.skip(f"docs/cli.md was generated with Python {recorded}; argparse layout differs")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def _relative_links(markdown: str) -> list[str]:
    text = _CODE_SPAN.sub("", _FENCE.sub("", markdown))
    targets = _INLINE_LINK.findall(text) + _REFERENCE_LINK.findall(text)
    return [t for t in targets if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^#", t)]


def test_relative_links_in_docs_point_to_existing_files():
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "no docs/*.md"
    broken = []
    for page in pages:
        for target in _relative_links(page.read_text("utf-8")):
            path = target.split("#", 1)[0].split("?", 1)[0]
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)
