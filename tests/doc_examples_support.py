"""Run the fenced examples of a Markdown page, in order, in a sandbox.

The conventions (also in docs/contributing.md and test_doc_examples.py):

- ```` ```sh ```` / ```` ```bash ````: commands, run in order by bash; each
  must exit 0. Output is not compared. A line ending in
  ``# no-run: REASON`` is skipped.
- ```` ```console ````: a transcript. ``$ COMMAND`` lines (a trailing ``\\``
  continues one) are run; the lines up to the next ``$`` are the expected
  stdout and stderr together, compared with doctest's ELLIPSIS (``...``
  matches anything) and NORMALIZE_WHITESPACE. The exit status is not
  checked; ``$ echo $?`` shows it.
- ```` ```python ````: run in one Python session per page (later blocks see
  earlier names). A block with ``>>>`` prompts is a doctest (same flags);
  a block without them must run without an exception.
- ```` ```LANG no-run: REASON ````: not run, for what cannot run here (a
  live vLLM or Ollama server, a GPU, the weights of a real model, the whole
  test suite). The reason is required.
- Other fences (``text``, ``json``, ``yaml`` ...) are not examples; a
  ``text`` fence must not hold a ``$ `` transcript (use ``console``).

The sandbox is a fresh shell with only what the README's Quickstart set up:
the tracked files of the repository, copied and committed in a temporary
folder, are the working folder (so ``configs`` is a copy of the demo registry
and ``git status`` there must stay clean), and ``./uvw`` finds the uv it
installed in ``.tools/uv`` (git-ignored). That uv is a stand-in whose ``uv run
CMD`` runs CMD in this project's environment, as uv does. Nothing else: no uv
and no virtual environment on ``PATH``, so a page that writes ``uv run …`` or
a bare ``imageworks-loader`` fails as it would for a reader who followed the
Quickstart. Paths under ``/tmp/`` mean a folder inside the sandbox; shell
``export``/``cd`` carry over to later blocks.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SHELL_LANGS = {"sh", "bash", "shell"}
RUN_LANGS = SHELL_LANGS | {"console", "python"}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
EXAMPLE_TIMEOUT_S = 300.0
NO_RUN = re.compile(r"\bno-run\b:?\s*(.*)$")
_FENCE = re.compile(
    r"^(?P<fence>```+|~~~+)(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=fence)\s*$", re.M | re.S
)


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    info: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def no_run(self) -> str | None:
        """The reason given after ``no-run``, or None when the block runs."""
        match = NO_RUN.search(self.info)
        return None if match is None else match.group(1).strip()


def blocks(page: Path) -> list[Block]:
    text = page.read_text("utf-8")
    found = []
    for match in _FENCE.finditer(text):
        info = match.group("info").strip()
        lang = info.split()[0] if info else ""
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(page, line, lang, info, match.group("body")))
    return found


def pages() -> list[Path]:
    """README.md and every page of docs/ but the generated CLI reference."""
    return [
        ROOT / "README.md",
        *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "cli.md"),
    ]


def commands(body: str) -> list[str]:
    """Shell lines joined across ``\\`` continuations; blank, comment and
    ``# no-run:`` lines dropped."""
    joined, current = [], ""
    for line in body.splitlines():
        current += line[:-1] + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        if current.strip() and not current.lstrip().startswith("#") and not NO_RUN.search(current):
            joined.append(current.strip())
        current = ""
    return joined


def transcript(body: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` pairs of a console block."""
    pairs: list[tuple[str, list[str]]] = []
    continuing = False
    for line in body.splitlines():
        if continuing:
            pairs[-1] = (pairs[-1][0] + " " + line.rstrip("\\").strip(), pairs[-1][1])
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            pairs.append((line[2:].rstrip("\\").strip(), []))
            continuing = line.endswith("\\")
        elif pairs:
            pairs[-1][1].append(line)
    return [(command, "\n".join(out).strip("\n") + "\n") for command, out in pairs]


# --- the sandbox --------------------------------------------------------------------


def checkout(target: Path) -> Path:
    """The repository's tracked (and new, not ignored) files, committed in ``target``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        name = raw.decode()
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    subprocess.run([*git, "add", "-A"], cwd=target, check=True)
    subprocess.run([*git, "commit", "-qm", "sandbox"], cwd=target, check=True)
    return target


def git_status(folder: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True, check=True
    ).stdout


_PYTHON_WORKER = r"""
import contextlib, doctest, io, json, sys, traceback
channel = sys.stdout
globs = {"__name__": "__main__"}
for message in sys.stdin:
    request = json.loads(message)
    report = io.StringIO()
    ok = True
    if request["doctest"]:
        test = doctest.DocTestParser().get_doctest(
            request["source"], globs, request["name"], request["name"], 0)
        runner = doctest.DocTestRunner(optionflags=request["flags"])
        runner.run(test, out=report.write, clear_globs=False)
        globs.update(test.globs)  # DocTest ran on a copy; later blocks see its names
        ok = runner.failures == 0
    else:
        with contextlib.redirect_stdout(report), contextlib.redirect_stderr(report):
            try:
                exec(compile(request["source"], request["name"], "exec"), globs)
            except BaseException:
                ok = False
                traceback.print_exc(file=report)
    channel.write(json.dumps({"ok": ok, "report": report.getvalue()}) + "\n")
    channel.flush()
"""


def run_in_own_group(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = EXAMPLE_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """Run ``argv`` in a process group of its own. Past ``timeout`` the whole
    group is killed, since a server started by an example would outlive bash,
    and the result says so (exit status -9)."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n(killed after {timeout:g} s: examples must not start long-running servers)"
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@dataclass
class Sandbox:
    """One page's examples: shared working folder, environment and Python session."""

    base: Path
    repo: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    cwd: Path = field(init=False)
    last_status: int = 0
    python: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.repo = checkout(self.base / "repo")
        (self.base / "tmp").mkdir()
        install_uv_stand_in(self.repo / ".tools" / "uv" / "bin" / "uv")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTEST"))}
        env.pop("IMAGEWORKS_REGISTRY_DIR", None)
        env["PATH"] = fresh_path(env.get("PATH", ""))
        env["TMPDIR"] = str(self.base / "tmp")
        self.env, self.cwd = env, self.repo

    def localise(self, text: str) -> str:
        """Doc paths under ``/tmp/`` to the sandbox's own."""
        return re.sub(r"(?<![\w/.])/tmp/", lambda m: f"{self.base}/tmp/", text)

    def shell(self, script: str) -> subprocess.CompletedProcess:
        """Run a bash script with the carried state; carry its exports and cd on."""
        state = self.base / "state"
        wrapped = (
            f"(exit {self.last_status})\n{script}\n__status=$?\n"
            f'pwd > "{state}.cwd"; env -0 > "{state}.env"; exit $__status\n'
        )
        proc = run_in_own_group(["bash", "-c", wrapped], cwd=self.cwd, env=self.env)
        if Path(f"{state}.env").exists():
            pairs = Path(f"{state}.env").read_bytes().split(b"\0")
            self.env = dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
            self.cwd = Path(Path(f"{state}.cwd").read_text().strip())
        self.last_status = proc.returncode
        return proc

    def run_python(self, source: str, name: str, *, as_doctest: bool) -> tuple[bool, str]:
        if self.python is None:
            self.python = subprocess.Popen(
                [sys.executable, "-c", _PYTHON_WORKER],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        request = {"source": source, "name": name, "doctest": as_doctest, "flags": FLAGS}
        assert self.python.stdin and self.python.stdout
        self.python.stdin.write(json.dumps(request) + "\n")
        self.python.stdin.flush()
        answer = self.python.stdout.readline()
        if not answer:
            return False, "the Python session ended"
        reply = json.loads(answer)
        return reply["ok"], reply["report"]

    def close(self) -> None:
        if self.python is not None:
            self.python.stdin.close()
            self.python.wait(timeout=60)


# What ``./uvw`` installed into .tools/uv in the Quickstart, standing in for
# uv: ``uv run [OPTIONS] CMD ...`` runs CMD with this project's environment
# first on PATH (its packages are installed already); ``uv sync`` has nothing to do.
_UV_STAND_IN = """#!/bin/sh
case "$1" in
  sync) exit 0 ;;
  run) shift ;;
  *) echo "uv stand-in (doc examples): only 'uv run' and 'uv sync'" >&2; exit 2 ;;
esac
while [ $# -gt 0 ]; do
  case "$1" in
    --extra|--with|--group|--project|--python|--directory) shift 2 ;;
    --*) shift ;;
    *) break ;;
  esac
done
PATH="{venv}:$PATH" exec "$@"
"""


def install_uv_stand_in(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_UV_STAND_IN.replace("{venv}", str(VENV_BIN)))
    path.chmod(0o755)


def fresh_path(path: str) -> str:
    """``PATH`` as a new shell has it: without this project's environment and
    without any uv (the Quickstart's ``./uvw`` brings its own)."""
    kept = []
    for folder in path.split(os.pathsep):
        if not folder or Path(folder).resolve() == VENV_BIN.resolve():
            continue
        if (Path(folder) / "uv").exists() or (Path(folder) / "imageworks-loader").exists():
            continue
        kept.append(folder)
    return os.pathsep.join(kept)


def run_block(box: Sandbox, block: Block) -> list[str]:
    """Run one example; returns what went wrong (empty when all is well)."""
    problems = []
    body = box.localise(block.body)
    if block.lang in SHELL_LANGS:
        for command in commands(body):
            proc = box.shell(command)
            if proc.returncode != 0:
                output = proc.stdout + proc.stderr
                problems.append(f"{block.where}: `{command}` exited {proc.returncode}:\n{output}")
                break
    elif block.lang == "console":
        checker = doctest.OutputChecker()
        for command, want in transcript(body):
            proc = box.shell(command + " 2>&1")
            if not checker.check_output(want, proc.stdout, FLAGS):
                shown = f"printed:\n{proc.stdout}\nbut the docs show:\n{want}"
                problems.append(f"{block.where}: `{command}` {shown}")
    elif block.lang == "python":
        ok, report = box.run_python(body, block.where, as_doctest=">>> " in body)
        if not ok:
            problems.append(f"{block.where}: {report}")
    return problems
