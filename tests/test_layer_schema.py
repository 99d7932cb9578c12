"""The layer files' JSON Schema: generated, committed, and true to real files."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import CURATED, DEMO_REGISTRY, DISCOVERED, REAL_REGISTRY, ROOT, SNAPSHOT, run_cli

COMMITTED = ROOT / "docs" / "model_registry.layer.schema.json"


def validator():
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_what_the_schema_command_prints(demo_registry):
    result = run_cli("schema", f"registry.dir={demo_registry}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == COMMITTED.read_text(encoding="utf-8"), (
        "docs/model_registry.layer.schema.json is stale: regenerate it with "
        "`uv run imageworks-loader schema > docs/model_registry.layer.schema.json`"
    )
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    "path",
    [
        DEMO_REGISTRY / CURATED,
        DEMO_REGISTRY / DISCOVERED,
        REAL_REGISTRY / CURATED,
        REAL_REGISTRY / DISCOVERED,
        REAL_REGISTRY / SNAPSHOT,
    ],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_shipped_and_real_registries_validate(path):
    errors = list(validator().iter_errors(json.loads(path.read_text(encoding="utf-8"))))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


@pytest.mark.parametrize(
    "layer",
    [
        [{"backend": "vllm"}],  # no name
        [{"name": ""}],
        [{"name": "m", "backend_config": {"port": "abc"}}],
        [{"name": "m", "backend_config": {"port": 70000}}],
        [{"name": "m", "roles": "caption"}],
        [{"name": "m", "version_lock": {"locked": "yes"}}],
        {"name": "m"},  # a layer is a list
    ],
)
def test_what_the_loader_refuses_the_schema_refuses(layer):
    assert list(validator().iter_errors(layer))


def test_nulls_interpolations_and_extra_fields_are_allowed():
    layer = [
        {
            "name": "m",
            "backend_config": {"port": "${backends.vllm.port}", "model_path": None},
            "roles": None,
            "my_own_field": {"kept": True},
        }
    ]
    assert not list(validator().iter_errors(layer))
