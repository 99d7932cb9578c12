"""Every shell and Python example in README.md and docs/ runs, and shows what
the program prints.

Each page's fenced examples run in order in a sandbox of their own: a fresh
shell with only what the README's Quickstart set up (a committed copy of the
repository as the working folder, and the uv that ``./uvw`` installed; no uv
or virtual environment on ``PATH``), ``/tmp/`` mapped into the sandbox.
Commands are written ``./uvw run …``. Afterwards ``git status`` in the copy
must be clean: examples that write work on a copy of the demo registry.

How to write an example (the full rules: docs/contributing.md and
tests/doc_examples_support.py):

- ```` ```sh ````: commands that must exit 0; output not compared.
- ```` ```console ````: ``$ COMMAND`` lines followed by the output they
  print (stdout and stderr), ``...`` for any text.
- ```` ```python ````: one session per page; ``>>>`` blocks are doctests.
- An example that cannot run here (it needs a live vLLM or Ollama server, a
  GPU, a real model's weights, or runs the whole suite) says why in its
  fence: ```` ```sh no-run: needs a running vLLM server ````; a single shell
  line can end in ``# no-run: REASON``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from doc_examples_support import (
    NO_RUN,
    RUN_LANGS,
    Sandbox,
    blocks,
    git_status,
    pages,
    run_block,
    run_in_own_group,
)


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_the_examples_of_a_page_run_and_print_what_it_shows(page, tmp_path):
    examples = [b for b in blocks(page) if b.lang in RUN_LANGS and b.no_run is None]
    if not examples:
        pytest.skip(f"{page.name} has no runnable examples")
    box = Sandbox(tmp_path)
    problems: list[str] = []
    try:
        for block in examples:
            problems += run_block(box, block)
    finally:
        box.close()
    assert not problems, "\n\n".join(problems)
    assert git_status(box.repo) == "", "the examples changed files in the repository"


def test_every_example_that_does_not_run_says_why():
    unexplained = []
    for page in pages():
        for block in blocks(page):
            if block.no_run == "":
                unexplained.append(block.where)
            lines = block.body.splitlines() if block.lang in RUN_LANGS else []
            for offset, line in enumerate(lines, start=1):
                match = NO_RUN.search(line)
                if match and not match.group(1).strip():
                    unexplained.append(f"{block.where} (+{offset})")
    assert not unexplained, "no-run without a reason at: " + ", ".join(unexplained)


def test_no_transcript_hides_in_a_text_fence():
    hidden = [
        block.where
        for page in pages()
        for block in blocks(page)
        if block.lang in ("text", "") and block.body.lstrip().startswith("$ ")
    ]
    assert not hidden, "use ```console for $ transcripts, so they run: " + ", ".join(hidden)


def _running(pid: str) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"


def test_an_example_that_runs_for_ever_is_killed_with_its_children(tmp_path):
    pid_file = tmp_path / "server.pid"
    script = f"sleep 600 & echo $! > {pid_file}; wait"
    result = run_in_own_group(["bash", "-c", script], cwd=tmp_path, env=dict(os.environ), timeout=3)
    assert result.returncode == -9
    assert "killed after 3 s: examples must not start long-running servers" in result.stderr
    server = pid_file.read_text().strip()
    deadline = time.monotonic() + 10
    while _running(server):
        assert time.monotonic() < deadline, "the example's background process outlived it"
        time.sleep(0.05)


def test_a_page_runs_in_a_fresh_shell_with_only_what_the_quickstart_set_up(tmp_path):
    box = Sandbox(tmp_path)
    try:
        assert box.shell("./uvw run imageworks-loader --version").returncode == 0
        # no uv, no virtual environment on PATH: as after the Quickstart
        assert box.shell("uv run imageworks-loader --version").returncode == 127
        assert box.shell("imageworks-loader --version").returncode == 127
        assert box.shell("command -v doit").returncode != 0
        # a copy made twice does not nest
        for _ in range(2):
            assert (
                box.shell(f"mkdir -p {tmp_path}/x && cp -r configs/. {tmp_path}/x").returncode == 0
            )
        assert not (tmp_path / "x" / "configs").exists()
    finally:
        box.close()
    assert git_status(box.repo) == ""
