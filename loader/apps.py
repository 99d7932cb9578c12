"""Every operation as a Hydra app, so Hydra's own features work.

    python -m loader.apps OPERATION [hydra overrides and flags]
    python -m loader.apps list role=caption --cfg job
    python -m loader.apps explain -m 'name=a,b'

Operation arguments are config keys (``name``, ``role``, ``require``). The CLI
hands over to this module when it sees a Hydra flag (``--cfg``, ``-m`` ...).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import conf_dir
from .errors import EXIT_OK, EXIT_USAGE, OverrideError, RegistryError
from .operations import OPERATIONS


def quote_override_value(value: Any) -> str:
    """A value in Hydra's override grammar (names hold parentheses)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(quote_override_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def check_override_grammar(hydra_args: Sequence[str]) -> None:
    """Reject a malformed override in one line, before Hydra prints a page."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from .config import compose_with_hydra, hydra_reason

    words = [w for w in hydra_args if not w.startswith("-") and "=" in w]
    parser = OverridesParser.create()
    plain = []
    for word in words:
        try:
            (override,) = parser.parse_overrides([word])
        except HydraException as exc:
            raise OverrideError(f"config override {word!r}: {hydra_reason(exc)}") from None
        if not override.is_sweep_override() and not override.is_hydra_override():
            plain.append(word)
    compose_with_hydra(plain)  # unknown keys and bad values, also in one line


def _job_overrides() -> list[str]:
    """The overrides Hydra composed this job with (its sweep values included)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):
        return []


def _run_job(operation: str, cfg: Any) -> dict[str, Any]:
    """One job of an app: its result, exit code and error lines, as plain data
    (a launcher's job may run in another process or on another host)."""
    from omegaconf import OmegaConf

    from .operations import Outcome
    from .registry import Registry

    op = OPERATIONS[operation]
    arguments = {
        key: OmegaConf.to_container(cfg[key]) if OmegaConf.is_config(cfg[key]) else cfg[key]
        for key in op.arguments
        if key in cfg
    }
    try:
        registry = Registry(cfg, defer_snapshot_refresh=True)
        registry.cfg.overrides = _job_overrides()  # for explain --config
        result = op.call(registry, arguments)
    except RegistryError as exc:
        return {"exit_code": exc.exit_code, "errors": [f"error: {exc}"]}
    registry.flush_snapshot()
    if isinstance(result, Outcome):
        lines = result.message.splitlines()
        return {"exit_code": result.exit_code, "errors": lines, "result": result.data}
    return {"exit_code": EXIT_OK, "errors": [], "result": result}


def _report_job(operation: str, job: dict[str, Any], *, compact: bool) -> int:
    """Print a job's result on stdout (one compact line per job in a sweep:
    JSON Lines) and its errors on stderr; returns its exit code."""
    from .cli import emit

    for line in job.get("errors", []):
        print(f"imageworks-loader {operation}: {line}", file=sys.stderr)
    if "result" in job:
        emit(operation, job["result"], compact=compact)
    return int(job.get("exit_code", EXIT_USAGE))


RESULT_FILE = "imageworks-loader-result.json"


def _sweep_dir(hydra_args: Sequence[str]) -> tuple[list[str], Path | None]:
    """Sweeps record themselves in a fresh temporary folder, removed afterwards;
    a ``hydra.sweep.dir=`` given by the caller is used and left in place."""
    if not any(a in ("-m", "--multirun") for a in hydra_args):
        return list(hydra_args), None
    if any(a.startswith("hydra.sweep.dir=") for a in hydra_args):
        return list(hydra_args), None
    folder = Path(tempfile.mkdtemp(prefix="imageworks-loader-sweep-"))
    return [*hydra_args, f"hydra.sweep.dir={quote_override_value(str(folder))}"], folder


def run_app(operation: str, hydra_args: Sequence[str]) -> int:
    """Run one operation through ``hydra.main``; returns the worst exit code
    over all jobs (a sweep checks every job before failing).

    A sweep's jobs write their results into their own job folders; they are
    read back here, in job order, so any launcher (basic, joblib, Ray,
    Submitit) reports the same way."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig

    check_override_grammar(hydra_args)
    worst = EXIT_OK

    @hydra.main(config_path=str(conf_dir()), config_name="config", version_base=None)
    def app(cfg: DictConfig) -> None:
        nonlocal worst
        job = _run_job(operation, cfg)
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            folder = Path(hydra_cfg.runtime.output_dir)
            job["num"] = hydra_cfg.job.num
            (folder / RESULT_FILE).write_text(json.dumps(job), encoding="utf-8")
        else:
            worst = max(worst, _report_job(operation, job, compact=False))

    argv, sweep_dir = _sweep_dir(hydra_args)
    saved = sys.argv
    sys.argv = [f"imageworks-loader-{operation}", *argv]
    try:
        app()
        if sweep_dir is not None or any(a in ("-m", "--multirun") for a in argv):
            worst = max(worst, _collect_sweep(operation, sweep_dir or _given_sweep_dir(argv)))
    finally:
        sys.argv = saved
        _stop_launcher_workers()
        if sweep_dir is not None:
            shutil.rmtree(sweep_dir, ignore_errors=True)
    return worst


def _stop_launcher_workers() -> None:
    """Stop what a launcher left running. The CLI leaves through ``os._exit``,
    which skips their atexit hooks: joblib's idle loky workers would hold the
    caller's stdout open for minutes, and a local Ray instance's agents would
    be orphaned."""
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(loky, "_executor", None)
    if executor is not None:  # joblib's executor also removes its temp folder
        stop = getattr(executor, "terminate", None) or executor.shutdown
        stop()
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _given_sweep_dir(argv: Sequence[str]) -> Path:
    value = next(a for a in argv if a.startswith("hydra.sweep.dir=")).split("=", 1)[1]
    return Path(value.strip("'\""))


def _collect_sweep(operation: str, folder: Path) -> int:
    jobs = []
    for path in folder.glob(f"*/{RESULT_FILE}"):
        jobs.append(json.loads(path.read_text(encoding="utf-8")))
    if not jobs:
        return EXIT_OK  # --cfg/--info with -m: Hydra printed, no job ran
    worst = EXIT_OK
    for job in sorted(jobs, key=lambda j: j.get("num", 0)):
        worst = max(worst, _report_job(operation, job, compact=True))
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in OPERATIONS:
        names = ", ".join(OPERATIONS)
        print(
            f"usage: python -m loader.apps OPERATION [overrides]; one of: {names}", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        return run_app(args[0], args[1:])
    except RegistryError as exc:
        print(f"imageworks-loader {args[0]}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
