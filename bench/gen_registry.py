"""Write a layered registry of N entries shaped like the real ImageWorks one.

    uv run python bench/gen_registry.py N OUT_DIR [--source DIR]

Every generated entry is a real entry of the ImageWorks fixture shipped with
the tests (``tests/data/imageworks-registry``), renamed ``<name>-<k>``, so the
files have the real shape: long capability maps, nested metadata, artifact
lists, names with parentheses. The discovered layer has N entries; the
curated layer overlays the first N/2 of them with curated copies. The same N
always gives the same bytes.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "data" / "imageworks-registry"


def renamed_copies(entries: list[dict], count: int) -> Iterator[dict]:
    """``count`` deep copies of ``entries``, round after round, each renamed."""
    for index in range(count):
        round_no, template = divmod(index, len(entries))
        entry = copy.deepcopy(entries[template])
        entry["name"] = f"{entries[template]['name']}-{round_no}"
        yield entry


def generate(count: int, out_dir: Path, source: Path = SOURCE) -> tuple[int, int]:
    """Write the two layer files; returns (curated, discovered) entry counts."""
    curated_src = json.loads((source / "model_registry.curated.json").read_text("utf-8"))
    discovered_src = json.loads((source / "model_registry.discovered.json").read_text("utf-8"))
    discovered = list(renamed_copies(discovered_src, count))
    curated = list(renamed_copies(curated_src, count // 2))
    for overlay, target in zip(curated, discovered, strict=False):
        overlay["name"] = target["name"]  # curated copies overlay discovered entries
    out_dir.mkdir(parents=True, exist_ok=True)
    for layer, data in (("curated", curated), ("discovered", discovered)):
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        (out_dir / f"model_registry.{layer}.json").write_text(text, encoding="utf-8")
    return len(curated), len(discovered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="entries in the discovered layer")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--source", type=Path, default=SOURCE, help="a registry to copy from")
    args = parser.parse_args()
    curated, discovered = generate(args.count, args.out_dir, args.source)
    print(f"wrote {curated} curated and {discovered} discovered entries to {args.out_dir}")


if __name__ == "__main__":
    main()
