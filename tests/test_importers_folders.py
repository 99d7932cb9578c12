"""import-dir and rediscover on real model folders in tmp_path."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loader.integrity.hashing import aggregate_sha256
from loader.registry.schema import normalize_capabilities
from tests.conftest import CURATED, DISCOVERED, SNAPSHOT, folder_digest, read_json, sha, write
from tests.importers_support import (
    FORMATS,
    TEMPLATE,
    empty_registry_folder,
    model_folder,
    run_loader,
)


def run(registry: Path, *words: str, root: Path | None = None):
    """The loader as a real process; ``root``: this host's model root
    (``IMAGEWORKS_MODEL_ROOT``, as a host sets it: a default composition, so
    the run may write the shared snapshot, which a ``paths.models=`` override
    for one run never does)."""
    env = None if root is None else {**os.environ, "IMAGEWORKS_MODEL_ROOT": str(root)}
    return run_loader(registry, *words, env=env)


@pytest.fixture
def registry(tmp_path) -> Path:
    return empty_registry_folder(tmp_path)


@pytest.fixture
def weights(tmp_path) -> Path:
    return tmp_path / "weights"


def entries_of(registry: Path) -> dict[str, dict]:
    return {e["name"]: e for e in read_json(registry / SNAPSHOT)}


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_each_format_is_recorded_from_its_files_and_config(kind, registry, weights):
    download_format, quantization, name, vision, template = FORMATS[kind]
    folder = model_folder(weights, kind)
    result = run(registry, "import-dir", str(folder))
    assert result.returncode == 0, result.stderr
    assert [a["name"] for a in json.loads(result.stdout)["added"]] == [name]
    entry = entries_of(registry)[name]
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert entry["download_format"] == download_format
    assert entry["quantization"] == quantization
    assert entry["download_path"] == str(folder)
    assert entry["download_files"] == files
    assert entry["download_size_bytes"] == sum((folder / f).stat().st_size for f in files)
    assert entry["downloaded_at"]
    assert entry["backend"] == "vllm"
    assert entry["backend_config"]["model_path"] == str(folder)
    assert entry["backend_config"]["port"] == 24001
    assert entry["display_name"] == name.replace("_", " ")
    assert normalize_capabilities(entry["capabilities"])["vision"] is vision
    assert entry["capabilities"]["vl"] is vision  # the stored, expanded form
    assert entry["chat_template"]["source"] == template
    assert entry["metadata"]["has_chat_template"] is (template is not None)
    if template == "external":
        path = Path(entry["chat_template"]["path"])
        assert path.parent == folder and entry["chat_template"]["sha256"] == sha(path.read_bytes())
    if template == "extracted":  # tokenizer_config.json's template, as a file vLLM can take
        path = Path(entry["chat_template"]["path"])
        assert path.is_absolute() and path.parent == registry / ".imageworks-state/chat_templates"
        assert path.read_text(encoding="utf-8") == TEMPLATE
        assert entry["chat_template"]["sha256"] == sha(TEMPLATE.encode())


def test_a_folder_of_model_folders_records_each(registry, weights):
    for kind in ("awq", "fp8", "gguf"):
        model_folder(weights, kind)
    result = run(registry, "import-dir", str(weights), "--backend", "lmdeploy")
    assert result.returncode == 0, result.stderr
    entries = entries_of(registry)
    names = {FORMATS[kind][2] for kind in ("awq", "fp8", "gguf")}
    assert set(entries) == names
    assert {e["backend"] for e in entries.values()} == {"lmdeploy"}


def test_a_second_run_leaves_every_file_byte_identical(registry, weights):
    model_folder(weights, "awq")
    model_folder(weights, "gguf")
    assert run(registry, "import-dir", str(weights), "--hash").returncode == 0
    before = folder_digest(registry)
    result = run(registry, "import-dir", str(weights), "--hash")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == [] and report["updated"] == [] and report["written"] is False
    assert sorted(report["unchanged"]) == sorted(FORMATS[k][2] for k in ("awq", "gguf"))
    assert folder_digest(registry) == before


def test_a_recorded_folder_updates_its_entry_and_never_adds_a_second(registry, weights):
    folder = model_folder(weights, "gptq")
    name = FORMATS["gptq"][2]
    assert run(registry, "import-dir", str(folder)).returncode == 0
    write(folder / "model.safetensors", b"g" * 1000)  # re-downloaded, larger
    config = json.loads((folder / "config.json").read_text())
    write(folder / "config.json", json.dumps({**config, "max_position_embeddings": 65536}).encode())
    # the same folder reached through a symlink is the same folder
    link = weights.parent / "link-to-model"
    link.symlink_to(folder)
    result = run(registry, "import-dir", str(link))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == []
    [updated] = report["updated"]
    assert updated["name"] == name
    fields = {c["field"] for c in updated["changes"]}
    assert {"download_size_bytes", "metadata.context_length"} <= fields
    assert "backend_config.model_path" not in fields  # static and set: left alone
    assert "download_path" not in fields  # the same folder, spelled as recorded
    assert list(entries_of(registry)) == [name]
    assert entries_of(registry)[name]["metadata"]["context_length"] == 65536


def test_name_and_a_name_taken_by_a_different_model(registry, weights):
    awq = model_folder(weights, "awq")
    fp8 = model_folder(weights, "fp8")
    result = run(registry, "import-dir", str(awq), "--name", "captioner")
    assert result.returncode == 0, result.stderr
    entry = entries_of(registry)["captioner"]
    assert entry["display_name"] == "captioner" and entry["download_path"] == str(awq)

    before = folder_digest(registry)
    refused = run(registry, "import-dir", str(fp8), "--name", "captioner")
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert str(fp8) in lines[0] and str(awq) in lines[0] and "'captioner'" in lines[0]
    assert folder_digest(registry) == before


def test_hash_records_artifacts_that_verify_agrees_with(registry, weights):
    folder = model_folder(weights, "safetensors")
    name = FORMATS["safetensors"][2]
    result = run(registry, "import-dir", str(folder), "--hash")
    assert result.returncode == 0, result.stderr
    artifacts = entries_of(registry)[name]["artifacts"]
    expected = [
        {"path": str(p.relative_to(folder)), "sha256": sha(p.read_bytes())}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
    assert artifacts["files"] == expected
    assert artifacts["aggregate_sha256"] == aggregate_sha256(expected)
    verified = run(registry, "verify", name)
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["aggregate_sha256"] == artifacts["aggregate_sha256"]
    assert report["files_read"] == 0  # the same stat cache as verify


def test_dry_run_prints_the_changes_and_writes_nothing(registry, weights):
    model_folder(weights, "bnb")
    before = folder_digest(registry)
    result = run(registry, "import-dir", str(weights), "--dry-run", "--hash")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] is True and report["written"] is False
    [added] = report["added"]
    fields = {c["field"]: c["after"] for c in added["changes"]}
    assert fields["download_format"] == "bnb" and fields["backend"] == "vllm"
    assert folder_digest(registry) == before
    assert not (registry / DISCOVERED).exists()
    assert not (registry / SNAPSHOT).exists()  # not even the snapshot a load found missing


def test_errors_are_one_line_and_change_nothing(registry, weights, tmp_path):
    (tmp_path / "empty").mkdir()
    broken = model_folder(weights, "gptq")
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    before = folder_digest(registry)
    for words, expected in [
        (("import-dir", str(tmp_path / "nowhere")), "not a folder"),
        (("import-dir", str(tmp_path / "empty")), "no model folder"),
        (("import-dir", str(broken)), "config.json: not readable JSON"),
        (("import-dir", str(weights), str(tmp_path / "empty")), "no model folder"),
    ]:
        result = run(registry, *words)
        assert result.returncode == 1, words
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], result.stderr
    assert folder_digest(registry) == before


# --- rediscover ----------------------------------------------------------------------


def test_rediscover_imports_every_model_folder_under_the_roots(registry, weights):
    for kind in ("awq", "gguf", "llava"):
        model_folder(weights, kind)
    too_deep = model_folder(weights / "a" / "b" / "c", "gptq")  # 5 levels down
    result = run(registry, "rediscover", root=weights)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(a["name"] for a in report["added"]) == sorted(
        FORMATS[k][2] for k in ("awq", "gguf", "llava")
    )
    assert str(too_deep) not in json.dumps(report)
    deeper = run(registry, "rediscover", "importers.rediscover.depth=5", root=weights)
    assert [a["name"] for a in json.loads(deeper.stdout)["added"]] == [FORMATS["gptq"][2]]


def test_rediscover_reports_entries_whose_folder_has_gone(registry, weights):
    gone = model_folder(weights, "awq")
    model_folder(weights, "fp8")
    assert run(registry, "rediscover", root=weights).returncode == 0
    shutil.rmtree(gone)
    before = folder_digest(registry)
    result = run(registry, "rediscover", root=weights)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(m["name"], m["model"]) for m in report["missing"]] == [(FORMATS["awq"][2], str(gone))]
    assert FORMATS["awq"][2] in entries_of(registry)  # reported, not deleted
    assert folder_digest(registry) == before


def test_rediscover_updates_an_entry_recorded_under_another_backend(registry, weights):
    folder = model_folder(weights, "fp8")
    (registry / CURATED).write_text(
        json.dumps(
            [
                {
                    "name": "vl-fast",
                    "backend": "lmdeploy",
                    "backend_config": {"model_path": str(folder)},
                }
            ]
        ),
        encoding="utf-8",
    )
    curated = (registry / CURATED).read_bytes()
    result = run(registry, "rediscover", root=weights)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == [] and [u["name"] for u in report["updated"]] == ["vl-fast"]
    entry = entries_of(registry)["vl-fast"]
    assert entry["backend"] == "lmdeploy" and entry["download_format"] == "fp8"
    assert (registry / CURATED).read_bytes() == curated


def test_a_reimport_fills_unset_static_fields_and_refreshes_the_others():
    from loader.importers.plan import FieldPatterns, field_changes

    current = {
        "family": "kept",
        "quantization": None,
        "download_size_bytes": 1,
        "backend_config": {"host": "imageworks-ollama", "port": None},
        "metadata": {"ollama_digest": "old", "note": "mine"},
        "capabilities": {"text": True},
    }
    fields = {
        "family": "new",
        "quantization": "q4_k_m",
        "download_size_bytes": 2,
        "backend_config": {"host": "host.docker.internal", "port": 11434},
        "metadata": {"ollama_digest": "new", "note": "theirs"},
        "capabilities": {"text": True, "vision": True},
    }
    refresh = FieldPatterns(["download_*", "metadata.ollama_*"])
    changes = {
        ".".join(c.path): (c.before, c.after) for c in field_changes(current, fields, refresh)
    }
    assert changes == {
        "quantization": (None, "q4_k_m"),
        "download_size_bytes": (1, 2),
        "backend_config.port": (None, 11434),
        "metadata.ollama_digest": ("old", "new"),
    }


# --- files from outside the registry (issue 18.10) ------------------------------------


def one_line_refusal(registry: Path, *words: str) -> str:
    before = folder_digest(registry)
    result = run(registry, *words)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert folder_digest(registry) == before
    return lines[0]


def test_a_config_json_nested_deep_is_refused_in_one_line(registry, weights):
    folder = model_folder(weights, "gptq")
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    line = one_line_refusal(registry, "import-dir", str(folder))
    assert "config.json: not readable JSON (nested more than" in line


def test_a_huge_config_json_is_refused_before_it_is_read(registry, weights):
    folder = model_folder(weights, "gptq")
    with open(folder / "config.json", "r+b") as handle:
        handle.truncate(2 * 1024**3)  # 2 GB, sparse: costs no disk
    line = one_line_refusal(registry, "import-dir", str(folder))
    assert "config.json: larger than 16,777,216 bytes (importers.max_json_bytes)" in line


def test_a_config_json_linked_outside_the_folder_is_refused(registry, weights, tmp_path):
    folder = model_folder(weights, "gptq")
    outside = write(tmp_path / "elsewhere" / "big.json", b'{"model_type": "llama"}')
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(outside)
    line = one_line_refusal(registry, "import-dir", str(folder))
    assert f"config.json: a symlink to {outside}, outside the model folder" in line


def test_a_tokenizer_config_that_is_a_fifo_is_refused_not_waited_on(registry, weights):
    import os

    folder = model_folder(weights, "gptq")
    os.mkfifo(folder / "tokenizer_config.json")  # nobody writes: a plain open waits for ever
    line = one_line_refusal(registry, "import-dir", str(folder))
    assert "tokenizer_config.json: not a regular file" in line


def test_a_modification_time_past_year_9999_is_not_a_date():
    import os

    from loader.importers.folders import _newest_date

    def stat(mtime: float) -> os.stat_result:
        return os.stat_result((0o100644, 0, 0, 1, 0, 0, 10, mtime, mtime, mtime))

    far = 1_000_000_000_000  # year 33658
    assert _newest_date(Path("/m"), ["a", "b"], [stat(far), stat(1_700_000_000)]) == (
        "2023-11-14T22:13:20+00:00"
    )
    assert _newest_date(Path("/m"), ["a"], [stat(far)]) is None


def test_a_file_dated_year_33658_imports_with_a_warning(registry):
    import os
    import tempfile

    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("needs tmpfs at /dev/shm: ext4 cannot hold a date past 2446")
    with tempfile.TemporaryDirectory(dir=shm) as root:
        folder = model_folder(Path(root), "gptq")
        far = 1_000_000_000_000
        os.utime(folder / "model.safetensors", (far, far))
        if os.stat(folder / "model.safetensors").st_mtime != far:
            pytest.skip("this tmpfs clamps dates")
        result = run(registry, "import-dir", str(folder))
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "model.safetensors: modification time 1000000000000 is outside" in line
    (entry,) = entries_of(registry).values()
    # The date comes from the other files, whose times are real.
    assert entry["downloaded_at"].startswith(str(datetime.now(UTC).year))


def test_outside_text_from_a_folder_is_stored_literally(registry, weights):
    folder = model_folder(weights, "gptq")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "${oc.env:HOME}"
    (folder / "config.json").write_text(json.dumps(config))
    result = run(registry, "import-dir", str(folder))
    assert result.returncode == 0, result.stderr
    (entry,) = entries_of(registry).values()
    assert entry["metadata"]["model_type"] == "${oc.env:HOME}"
    assert run(registry, "list").returncode == 0
    # A name is an identity: a folder name holding ${ is refused before anything
    # is written. (A path holding ${ is stored portably by issue 19's importers.)
    odd = folder.rename(folder.parent / "odd-${missing}")
    line = one_line_refusal(registry, "import-dir", str(odd))
    assert "holds '${'" in line and "--name" in line


def test_an_extracted_template_is_named_not_written_by_a_dry_run(registry, weights):
    folder = model_folder(weights, "safetensors")
    result = run(registry, "import-dir", str(folder), "--dry-run")
    assert result.returncode == 0, result.stderr
    added = json.loads(result.stdout)["added"][0]["changes"]
    path = next(c["after"] for c in added if c["field"] == "chat_template.path")
    assert path.endswith(".jinja") and not Path(path).exists()
    assert not (registry / ".imageworks-state").exists()


def test_a_deleted_extracted_template_comes_back_on_the_next_import(registry, weights):
    folder = model_folder(weights, "safetensors")
    assert run(registry, "import-dir", str(folder)).returncode == 0
    name = FORMATS["safetensors"][2]
    path = Path(entries_of(registry)[name]["chat_template"]["path"])
    path.unlink()
    result = run(registry, "import-dir", str(folder))
    assert result.returncode == 0, result.stderr
    assert path.read_text(encoding="utf-8") == TEMPLATE


def test_one_folder_is_never_recorded_under_two_names(registry, weights):
    folder = model_folder(weights, "awq")
    assert run(registry, "import-dir", str(folder)).returncode == 0
    before = folder_digest(registry)
    first = FORMATS["awq"][2]
    renamed = run(registry, "import-dir", str(folder), "--name", "other-name")
    assert renamed.returncode == 1
    assert "other-name" in renamed.stderr and first in renamed.stderr
    assert len(renamed.stderr.strip().splitlines()) == 1
    other_backend = run(
        registry, "import-dir", str(folder), "--backend", "lmdeploy", "--name", "lm-copy"
    )
    assert other_backend.returncode == 1
    assert first in other_backend.stderr and "lm-copy" in other_backend.stderr
    assert "already recorded" in other_backend.stderr
    assert folder_digest(registry) == before


def test_the_python_api_refuses_a_second_name_for_a_recorded_download(registry, weights):
    from loader.config import load_config
    from loader.errors import RegistryWriteError
    from loader.registry.core import Registry, RegistryEntry

    folder = model_folder(weights, "awq")
    assert run(registry, "import-dir", str(folder)).returncode == 0
    before = folder_digest(registry)
    reg = Registry(load_config([f"registry.dir={registry}"]))
    entries = reg.ensure_loaded()
    entries["copy"] = RegistryEntry(name="copy", download_path=str(folder) + "/")
    with pytest.raises(RegistryWriteError, match=r"'copy'.*already recorded as"):
        reg.save()
    assert folder_digest(registry) == before


def test_a_relative_folder_is_stored_resolved_and_a_reimport_repairs_relative_paths(
    registry, weights, tmp_path
):
    """Issue 17 item 7: chat_template.path relative to the folder import-dir ran in."""
    import subprocess
    import sys

    folder = model_folder(weights, "awq")
    name = FORMATS["awq"][2]
    relative = folder.relative_to(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "loader", "import-dir", str(relative), f"registry.dir={registry}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    entry = entries_of(registry)[name]
    template = folder / "chat_template.json"
    assert entry["chat_template"]["path"] == str(template)
    assert entry["download_path"] == entry["backend_config"]["model_path"] == str(folder)

    # An entry an older version left with a relative path is repaired by a re-import.
    layer = read_json(registry / DISCOVERED)
    layer[0]["chat_template"]["path"] = str(relative / "chat_template.json")
    (registry / DISCOVERED).write_text(json.dumps(layer, indent=2) + "\n")
    result = run(registry, "import-dir", str(folder))
    assert result.returncode == 0, result.stderr
    [updated] = json.loads(result.stdout)["updated"]
    assert {"field": "chat_template.path", "before": str(relative / "chat_template.json"),
            "after": str(template)} in updated["changes"]  # fmt: skip
    assert entries_of(registry)[name]["chat_template"]["path"] == str(template)


def test_paths_under_the_model_root_are_stored_relative_to_it(registry, weights):
    folder = model_folder(weights, "awq")
    result = run(registry, "import-dir", str(folder), root=weights)
    assert result.returncode == 0, result.stderr
    [stored] = read_json(registry / DISCOVERED)
    rel = "${paths.models}/" + str(folder.relative_to(weights))
    assert stored["download_path"] == stored["backend_config"]["model_path"] == rel
    assert stored["chat_template"]["path"] == rel + "/chat_template.json"
    assert stored["backend_config"]["port"] == "${backends.vllm.port}"
    # A folder name holding ${ is stored literally, never as an interpolation.
    odd = model_folder(weights / "${oc.env:HOME}", "fp8")
    result = run(registry, "import-dir", str(odd), root=weights)
    assert result.returncode == 0, result.stderr
    entry = entries_of(registry)[FORMATS["fp8"][2]]
    assert entry["download_path"] == str(odd)
