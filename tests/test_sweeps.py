"""Hydra sweeps under each launcher: JSON Lines out, exit codes from the jobs, no folders left."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import CLI
from pipeline_support import SHARDS, make_site


@pytest.fixture
def site(tmp_path):
    site = make_site(tmp_path, ("alpha", "beta_(Q4_K_M)"))
    site.env["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"  # tests run under `uv run`
    return site


def sweep(site, *args, timeout=240):
    return subprocess.run(
        [str(CLI), *args, f"registry.dir={site.registry}"],
        capture_output=True,
        text=True,
        env=site.env,
        cwd=site.registry.parent,
        timeout=timeout,
    )


def lines(stdout: str) -> list:
    return [json.loads(line) for line in stdout.splitlines()]  # JSON Lines: one per job


def assert_no_sweep_folders(tmp_path):
    # TMPDIR is tmp_path: no dated sweep folder, no joblib folder, no outputs/ left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry", "weights"]


LAUNCHERS = {
    "basic": (),
    "joblib": ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"),
}


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_sweep_with_one_failing_job(site, tmp_path, launcher):
    names = "name='alpha','nope','beta_(Q4_K_M)'"
    result = sweep(site, "verify", "-m", names, *LAUNCHERS[launcher])
    assert result.returncode == 1, result.stderr
    rows = lines(result.stdout)
    assert [r["name"] for r in rows] == ["alpha", "beta_(Q4_K_M)"]  # in job order
    assert all(r["status"] == "unlocked" and r["files"] == len(SHARDS) for r in rows)
    errors = result.stderr.strip().splitlines()
    assert errors == [f"imageworks-loader verify: error: unknown model 'nope' in {site.registry}"]
    # every job's write landed, whichever process ran it
    assert {e["name"] for e in site.discovered()} == {"alpha", "beta_(Q4_K_M)"}
    assert_no_sweep_folders(tmp_path)


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_an_integrity_failure_in_a_job_is_the_sweeps_exit_code(site, tmp_path, launcher):
    locked = sweep(site, "lock", "alpha", "--set-expected")
    assert locked.returncode == 0, locked.stderr
    (site.models["alpha"] / SHARDS[1]).write_bytes(b"tampered")
    result = sweep(site, "verify", "-m", "name='alpha','beta_(Q4_K_M)'", *LAUNCHERS[launcher])
    assert result.returncode == 2, result.stderr
    assert [r["name"] for r in lines(result.stdout)] == ["beta_(Q4_K_M)"]
    assert "version lock violated" in result.stderr
    assert_no_sweep_folders(tmp_path)


def test_a_list_sweep_prints_one_compact_line_per_job(site, tmp_path):
    result = sweep(site, "list", "-m", "backends.vllm.port=1,2")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert [len(rows) for rows in lines(result.stdout)] == [2, 2]
    assert_no_sweep_folders(tmp_path)


@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None,
    reason="the optional 'ray' extra is not installed (uv sync --extra ray)",
)
def test_a_sweep_on_a_local_ray_instance(site, tmp_path):
    # Ray's session folder holds unix sockets, whose paths must stay under 108 bytes
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    try:
        result = sweep(
            site,
            "verify",
            "-m",
            "name='alpha','nope'",
            "hydra/launcher=ray",
            "+hydra.launcher.ray.init.num_cpus=1",
            "+hydra.launcher.ray.init.include_dashboard=false",
            f"+hydra.launcher.ray.init._temp_dir={ray_tmp}",
            timeout=400,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert result.returncode == 1, result.stderr + result.stdout
    assert [r["name"] for r in lines(result.stdout)] == ["alpha"], result.stderr
    assert "unknown model 'nope'" in result.stderr
    assert_no_sweep_folders(tmp_path)
