"""Shell completion: the real scripts in real bash and zsh, names from a real registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CLI, run_cli

BIN = str(Path(CLI).parent)


def script(shell: str) -> str:
    result = run_cli("--print-completion", shell)
    assert result.returncode == 0, result.stderr
    return result.stdout


def env_for(registry: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env["IMAGEWORKS_REGISTRY_DIR"] = str(registry)
    return env


BASH_DRIVER = """
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
_shtab_imageworks_loader
printf '%s\\n' "${COMPREPLY[@]}"
"""


def bash_complete(tmp_path: Path, registry: Path, *words: str) -> list[str]:
    completion = tmp_path / "imageworks-loader.bash"
    completion.write_text(script("bash"))
    proc = subprocess.run(
        ["bash", "-c", BASH_DRIVER, "driver", str(completion), "imageworks-loader", *words],
        capture_output=True,
        text=True,
        env=env_for(registry),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def test_bash_completes_commands_flags_and_quoted_model_names(tmp_path, demo_registry):
    assert bash_complete(tmp_path, demo_registry, "lis") == ["list", "list-roles"]
    assert "--require-vision" in bash_complete(tmp_path, demo_registry, "select", "--req")
    assert bash_complete(tmp_path, demo_registry, "select", "qwen") == [
        "'qwen2.5-vl-7b-instruct_(AWQ)'",
        "'qwen3_8b_(Q4_K_M)'",
    ]
    # A word the user began quoting still matches; --name of metrics completes too.
    assert bash_complete(tmp_path, demo_registry, "verify", "'flo") == ["'florence-2-large_(FP16)'"]
    assert bash_complete(tmp_path, demo_registry, "metrics", "--name", "ll") == [
        "'llama3.1_8b_(Q5_K_M)'"
    ]


# Types a line and TAB in an interactive zsh (in a pseudo-terminal), then
# prints the edited line.
ZSH_DRIVER = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1=''; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'showbuf() { print -r -- "B""UF<$BUFFER>"; BUFFER=""; }'
zpty -w z 'zle -N showbuf; bindkey "^X" showbuf'
zpty -w -n z "$2"$'\t\x18'
local line out
while zpty -r -t z line 2>/dev/null || sleep 0.1; do
  out+=$line
  [[ $out == *'BUF<'*'>'* ]] && break
  (( SECONDS > 30 )) && break
done
print -r -- ${${out##*BUF<}%%>*}
zpty -d z
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
@pytest.mark.parametrize(
    ("typed", "completed"),
    [
        ("imageworks-loader li", "imageworks-loader list"),
        ("imageworks-loader metrics --na", "imageworks-loader metrics --name "),
        ("imageworks-loader select qwen3_", r"imageworks-loader select qwen3_8b_\(Q4_K_M\) "),
        ("imageworks-loader explain flo", r"imageworks-loader explain florence-2-large_\(FP16\) "),
    ],
)
def test_zsh_completes_commands_flags_and_quoted_model_names(
    tmp_path, demo_registry, typed, completed
):
    functions = tmp_path / "zfunc"
    functions.mkdir()
    (functions / "_imageworks-loader").write_text(script("zsh"))
    driver = tmp_path / "drive.zsh"
    driver.write_text(ZSH_DRIVER)
    proc = subprocess.run(
        ["zsh", "-f", str(driver), str(functions), typed],
        capture_output=True,
        text=True,
        env=env_for(demo_registry),
        timeout=60,
    )
    assert proc.stdout.strip("\r\n") == completed, proc.stdout + proc.stderr


def test_model_names_follow_an_edit_of_a_layer(demo_registry):
    env = {"IMAGEWORKS_REGISTRY_DIR": str(demo_registry)}
    first = run_cli("__complete-names", "zsh", "", env=env)
    assert first.returncode == 0 and "qwen3_8b_(Q4_K_M)" in first.stdout.splitlines()
    curated = demo_registry / "model_registry.curated.json"
    entries = json.loads(curated.read_text("utf-8"))
    entries.append({"name": "new-model_(Q8_0)", "backend": "ollama"})
    curated.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    again = run_cli("__complete-names", "bash", "new", env=env)
    assert again.stdout.splitlines() == ["'new-model_(Q8_0)'"]


def test_model_names_complete_for_probe_vision_and_activate_model(tmp_path, demo_registry):
    for command in ("probe-vision", "activate-model"):
        assert bash_complete(tmp_path, demo_registry, command, "qwen2") == [
            "'qwen2.5-vl-7b-instruct_(AWQ)'"
        ]


# The README's shell function: `imageworks-loader` runs `uvw run` of a checkout
# from any folder, and the completion script completes it (names included).
FUNCTION_DRIVER = """
checkout="$1"; script="$2"; shift 2
imageworks-loader() { "$checkout/uvw" run --project "$checkout" imageworks-loader "$@"; }
source "$script"
cd /
COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
_shtab_imageworks_loader
printf '%s\\n' "${COMPREPLY[@]}"
"""


def test_the_readme_function_runs_uvw_from_anywhere_and_completes(tmp_path, demo_registry):
    from conftest import ROOT
    from doc_examples_support import fresh_path, install_uv_stand_in

    readme = (ROOT / "README.md").read_text("utf-8")
    assert 'imageworks-loader() { "$IMAGEWORKS_LOADER_HOME/uvw" run --project' in readme
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy2(ROOT / "uvw", checkout / "uvw")
    install_uv_stand_in(checkout / ".tools" / "uv" / "bin" / "uv")  # what ./uvw installs
    completion = tmp_path / "imageworks-loader.bash"
    completion.write_text(script("bash"))
    env = {**os.environ, "PATH": fresh_path(os.environ["PATH"])}
    env["IMAGEWORKS_REGISTRY_DIR"] = str(demo_registry)
    for words, expected in [
        (["imageworks-loader", "probe-vision", "qwen3"], ["'qwen3_8b_(Q4_K_M)'"]),
        (["imageworks-loader", "activate-model", "flo"], ["'florence-2-large_(FP16)'"]),
        (["imageworks-loader", "lis"], ["list", "list-roles"]),
    ]:
        proc = subprocess.run(
            ["bash", "-c", FUNCTION_DRIVER, "driver", str(checkout), str(completion), *words],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert [line for line in proc.stdout.splitlines() if line] == expected, proc.stderr
