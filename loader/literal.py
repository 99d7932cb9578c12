"""Storing outside text literally: escaping OmegaConf's ``${…}`` syntax.

Text from a model's answer, from Ollama or from a model folder is data, never
configuration. Compose resolves every string that holds ``${`` with OmegaConf,
so whatever a tool writes from outside data goes through ``literal()`` first:
OmegaConf then reads the string back exactly as it was received. Only people
write interpolations (in the curated layer or in config).
"""

from __future__ import annotations

import re
from typing import Any

# ``${`` preceded by any run of backslashes. OmegaConf reads ``\${`` as a literal
# ``${`` and ``\\`` before ``${`` as one backslash, so the run is doubled and
# one more backslash escapes the opener.
_OPENER = re.compile(r"(\\*)\$\{")


def escape(text: str) -> str:
    """``text`` written so that OmegaConf resolves it to ``text`` itself."""
    if "${" not in text:
        return text  # never resolved: backslashes elsewhere stay as they are
    return _OPENER.sub(lambda m: m.group(1) * 2 + "\\${", text)


# An opener that OmegaConf resolves: preceded by an even run of backslashes
# (none included), so it is not one that ``escape()`` wrote.
LIVE_OPENER = re.compile(r"(?<!\\)(?:\\\\)*\$\{")


def interpolates(text: str) -> bool:
    """True when OmegaConf would resolve something in ``text``; False for
    text without ``${`` and for text that ``escape()`` made literal."""
    return "${" in text and LIVE_OPENER.search(text) is not None


def literal(data: Any) -> Any:
    """``data`` with every string value escaped by ``escape()`` (keys are never
    resolved, so they stay as they are)."""
    if isinstance(data, str):
        return escape(data)
    if isinstance(data, dict):
        return {key: literal(value) for key, value in data.items()}
    if isinstance(data, list):
        return [literal(value) for value in data]
    return data
