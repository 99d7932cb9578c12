"""Field patterns: which fields a rule covers (``download_*``, ``metadata.ollama_*``).

One notion, used twice: the registry's dynamic fields (``registry.dynamic_fields``,
where the discovered layer wins when the layers merge) and the fields a
re-import refreshes (those plus ``importers.refresh_fields``).
"""

from __future__ import annotations

from collections.abc import Iterable


class FieldPatterns:
    """Dotted field names; a trailing ``*`` matches a prefix. A pattern naming
    a top-level field covers everything inside it.

    ``key in patterns`` takes a top-level key (a string: the merge's hot path)
    or a path of keys (a tuple, ``("metadata", "ollama_digest")``).
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        patterns = list(patterns)
        self.exact = {p for p in patterns if not p.endswith("*")}
        self.prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))

    def __contains__(self, field: str | tuple[str, ...]) -> bool:
        if isinstance(field, str):
            return field in self.exact or field.startswith(self.prefixes)
        dotted = ".".join(field)
        return field[0] in self.exact or dotted in self.exact or dotted.startswith(self.prefixes)
