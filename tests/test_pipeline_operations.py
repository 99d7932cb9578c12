"""The tasks that call other issues' operations, against their stand-in servers:
import:ollama and rediscover (issue 7)."""

from __future__ import annotations

import pytest
from pipeline_support import importer_site, ran  # noqa: F401 (a fixture)


@pytest.fixture
def site(importer_site):  # noqa: F811 (the fixture imported above)
    return importer_site


def names(site) -> set[str]:
    return {e["name"] for e in site.discovered()}


def test_imports_run_only_when_named(site):
    plain = site.doit()
    assert plain.returncode == 0, plain.stderr
    assert not any(t.startswith(("import", "rediscover")) for t in ran(plain.stdout))
    assert names(site) == {"alpha", "beta_(Q4_K_M)"}

    named = site.doit("import:ollama")
    assert named.returncode == 0, named.stderr
    assert ran(named.stdout) == ["import:ollama"]
    imported = names(site) - {"alpha", "beta_(Q4_K_M)"}
    assert len(imported) == 1 and "qwen3" in imported.pop()


def test_the_profile_enables_them_and_the_snapshot_follows(site):
    enabled = site.doit(overrides=("profile.import_ollama=true", "profile.rediscover=true"))
    assert enabled.returncode == 0, enabled.stderr
    order = [line[3:] for line in enabled.stdout.splitlines() if line.startswith(".  ")]
    assert {"import:ollama", "rediscover"} <= set(order)
    assert order[-1] == "snapshot"  # after every task that writes the discovered layer
    assert any("qwen3" in n for n in names(site))


def test_an_unreachable_ollama_fails_its_task_only(site):
    site.ollama.stop()
    result = site.doit(overrides=("profile.import_ollama=true",))
    assert result.returncode != 0
    failed = [line for line in result.stderr.splitlines() if line.startswith("doit: import:ollama")]
    assert len(failed) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "verify:alpha" in ran(result.stdout)  # the model chains still ran
