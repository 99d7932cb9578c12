"""Interpolation: the few entry strings holding ``${`` resolved with OmegaConf.

Bulk merging is plain Python (OmegaConf on a whole registry is ~5,000x
slower); OmegaConf only resolves the strings that contain ``${``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from loader.config import omegaconf_reason
from loader.registry.merge import Path_


def iter_interpolated(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """Every string holding ``${`` inside ``data``, with its path."""
    if isinstance(data, str):
        if "${" in data:
            yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from iter_interpolated(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from iter_interpolated(value, (*path, str(index)))


class Interpolator:
    """Resolves entry strings against the composed config with OmegaConf."""

    _SLOT = "__entry_value__"

    def __init__(self, raw_config: dict[str, Any]) -> None:
        from omegaconf import OmegaConf

        # A private copy: the slot written below must not leak into the config.
        self._cfg = OmegaConf.create(raw_config)
        OmegaConf.set_struct(self._cfg, False)
        # Importers write the same few texts into every entry
        # (``${backends.ollama.port}``). Each OmegaConf resolution parses the
        # text into a tree full of reference cycles, which a load (collector
        # paused) would keep until it ends: 10,000 entries left ~330,000
        # such objects. A scalar result is remembered for this composition.
        self._scalars: dict[str, Any] = {}

    def resolve(self, text: str) -> Any:
        from omegaconf.errors import OmegaConfBaseException

        if text in self._scalars:
            return self._scalars[text]
        try:
            # Assigning parses the text: an unterminated ``${`` fails here.
            self._cfg[self._SLOT] = text
            value = self._cfg[self._SLOT]
        except OmegaConfBaseException as exc:
            raise ValueError(omegaconf_reason(exc)) from None
        if value is None or isinstance(value, (str, int, float, bool)):
            self._scalars[text] = value
        return value
