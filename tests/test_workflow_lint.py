"""The shipped CI workflow (docs/examples/registry-refresh.yml), linted here
without downloading anything: it parses, every `run:` step names only
commands that exist in this repository (or the standard tools of a runner),
their arguments and config overrides are ones the program accepts, and the
install step is the README's own command."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

WORKFLOW = ROOT / "docs" / "examples" / "registry-refresh.yml"
STANDARD_TOOLS = {"cat", "echo", "test", "mkdir", "ls", "cp"}
_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
_SHELL_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text("utf-8"))


def steps() -> list[dict]:
    return workflow()["jobs"]["refresh"]["steps"]


def quickstart_install() -> list[str]:
    """The README Quickstart's first command, without its subcommand: the
    install (``./uvw run imageworks-loader``)."""
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("## Quickstart", 1)[1]
    block = re.search(r"```sh[^\n]*\n(.*?)```", section, re.DOTALL).group(1)
    first = block.strip().splitlines()[0].split("  #")[0]
    return shlex.split(first)[:3]


def expand(text: str, env: dict[str, str]) -> str:
    """GitHub expressions, then the job's environment, as the runner would."""
    text = _EXPRESSION.sub(lambda m: "/runner/" + m.group(1).replace(".", "-"), text)
    return _SHELL_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), "/runner/var"), text)


def simple_commands(script: str) -> list[list[str]]:
    """Each command of a step's script as words, redirections dropped."""
    found = []
    for line in script.replace("&&", "\n").replace(";", "\n").replace("|", "\n").splitlines():
        words = shlex.split(line, comments=True)
        kept, skip = [], False
        for word in words:
            if skip:
                skip = False
            elif word in (">", ">>", "<", "2>", "2>&1"):
                skip = word != "2>&1"
            else:
                kept.append(word)
        if kept:
            found.append(kept)
    return found


def check_loader_words(words: list[str]) -> None:
    """An ``imageworks-loader`` command line: a real subcommand with arguments it
    accepts, and overrides that compose (Hydra, offline)."""
    from loader.config import load_config
    from loader.frontdoors.cli import build_parser, split_overrides

    if words == ["--version"]:
        return
    arguments, overrides = split_overrides(words)
    build_parser().parse_args(arguments)  # raises UsageError on a wrong word
    load_config(overrides)  # raises OverrideError on an unknown key or bad value


def test_the_workflow_parses_and_each_action_is_pinned_to_a_major_version():
    flow = workflow()
    assert flow[True]["schedule"][0]["cron"]  # YAML reads `on` as True
    for step in steps():
        assert ("uses" in step) != ("run" in step), step
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_every_run_step_names_only_commands_of_this_repository(tmp_path, monkeypatch):
    env = {k: str(v) for k, v in workflow()["jobs"]["refresh"]["env"].items()}
    env = {k: expand(v, env) for k, v in env.items()}
    monkeypatch.setenv("IMAGEWORKS_LOADER_CACHE", str(tmp_path / "cache"))
    checked = 0
    for step in steps():
        for words in simple_commands(expand(step.get("run", ""), env)):
            program = words[0]
            if program.startswith("./"):
                assert (ROOT / program).is_file() and os.access(ROOT / program, os.X_OK), program
                if program == "./uvw":
                    assert words[1] == "run", words
                    assert words[2] == "imageworks-loader", words
                    check_loader_words(words[3:])
            elif program in ("python", "python3"):
                assert (ROOT / words[1]).is_file(), words
            else:
                assert program in STANDARD_TOOLS and shutil.which(program), words
            checked += 1
    assert checked >= 3


def test_the_install_step_is_the_readmes_command():
    [install] = [s for s in steps() if s.get("name", "").lower().startswith("install")]
    assert simple_commands(install["run"])[0][:3] == quickstart_install()
    # no pip install: Debian 12 and Ubuntu >= 23.04 refuse it (PEP 668)
    assert not any("pip install" in s.get("run", "") for s in steps())


def test_the_state_and_hash_cache_live_outside_the_cleaned_checkout():
    refresh = next(s["run"] for s in steps() if "refresh" in s.get("run", ""))
    words = dict(w.split("=", 1) for w in refresh.split() if "=" in w)
    for key in ("pipeline.state_dir", "hashing.cache_file"):
        assert words[key].startswith("${REFRESH_STATE}/"), key
    state = workflow()["jobs"]["refresh"]["env"]["REFRESH_STATE"]
    assert "/../" in state  # beside the workspace, not inside it
    assert "profile.import_ollama=${IMPORT_OLLAMA}" in refresh


@pytest.mark.parametrize(
    "bad",
    [
        "./uvw run imageworks-loader refrsh profile=ci",
        "./uvw run imageworks-loader refresh profile=nope",
        "./uvw run imageworks-loader refresh pipeline.no_such_key=1",
        "./not-here --flag",
        "pip install uv",
    ],
)
def test_the_lint_catches_a_wrong_step(bad, tmp_path, monkeypatch):
    from loader.errors import RegistryError

    monkeypatch.setenv("IMAGEWORKS_LOADER_CACHE", str(tmp_path / "cache"))
    with pytest.raises((AssertionError, RegistryError)):
        for words in simple_commands(bad):
            if words[0] == "./uvw":
                check_loader_words(words[3:])
            elif words[0].startswith("./"):
                assert (ROOT / words[0]).is_file()
            else:
                assert words[0] in STANDARD_TOOLS


def test_the_guide_shows_the_shipped_workflow_and_how_to_turn_off_ollama():
    guide = (ROOT / "docs" / "scheduled-refresh.md").read_text()
    assert f"```yaml\n{WORKFLOW.read_text()}```" in guide
    assert "profile.import_ollama=false" in guide
    assert Path(ROOT / "docs" / "examples" / "merge_reports.py").is_file()
