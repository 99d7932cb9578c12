"""Running an operation as a Hydra app, so Hydra's own features work.

``run_app`` runs one operation under ``hydra.main``: ``--cfg``, ``--info``,
sweeps (``-m``) on any launcher. Operation arguments are config keys
(``name``, ``role``, ``require``). Both ``python -m loader.apps`` and the CLI
(when it sees a Hydra flag: ``--cfg``, ``-m`` ...) run operations through it.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loader.config import conf_dir
from loader.errors import EXIT_OK, EXIT_USAGE, OverrideError
from loader.frontdoors.output import PROG, emit, print_warnings
from loader.logs import front_door_logging, use_config
from loader.operations.invoke import invoke
from loader.operations.table import OPERATIONS
from loader.rows import rows_as_list


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

    from loader.config import compose_with_hydra, hydra_reason

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


# Hydra's own command-line flags: those taking a value, with its choices (None: any).
_VALUE_FLAGS: dict[str, tuple[str, ...] | None] = {
    "--cfg": ("job", "hydra", "all"),
    "-c": ("job", "hydra", "all"),
    "--package": None,
    "-p": None,
    "--config-path": None,
    "-cp": None,
    "--config-name": None,
    "-cn": None,
    "--config-dir": None,
    "-cd": None,
    "--experimental-rerun": None,
}
_INFO_FLAGS = ("--info", "-i")
_INFO_CHOICES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
_PLAIN_FLAGS = (
    "--help",
    "-h",
    "--hydra-help",
    "--version",
    "--resolve",
    "--run",
    "-r",
    "--multirun",
    "-m",
    "--shell-completion",
    "-sc",
)


def arrange_hydra_args(hydra_args: Sequence[str]) -> list[str]:
    """Hydra's flags first, then the overrides, so ``k=1,2 -m`` sweeps as
    ``-m k=1,2`` does (Hydra's argparse refuses an override after a flag that
    follows other overrides). An unknown flag or a bad flag value is a usage
    error in one line (argparse would exit 2, the code kept for integrity)."""
    flags: list[str] = []
    overrides: list[str] = []
    words = list(hydra_args)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-"):
            overrides.append(word)
            continue
        flag, has_value, value = word.partition("=")
        if flag in _PLAIN_FLAGS and not has_value:
            flags.append(word)
        elif flag in _VALUE_FLAGS:
            if not has_value:
                if i >= len(words):
                    raise OverrideError(f"Hydra flag {flag} needs a value")
                value, i = words[i], i + 1
            choices = _VALUE_FLAGS[flag]
            if choices is not None and value not in choices:
                raise OverrideError(
                    f"Hydra flag {flag}: {value!r} is not one of {', '.join(choices)}"
                )
            flags += [flag, value]
        elif flag in _INFO_FLAGS:
            if not has_value and i < len(words) and words[i] in _INFO_CHOICES:
                value, has_value, i = words[i], "=", i + 1
            if has_value and value not in _INFO_CHOICES:
                raise OverrideError(
                    f"Hydra flag {flag}: {value!r} is not one of {', '.join(_INFO_CHOICES)}"
                )
            flags += [flag, value] if has_value else [flag]
        else:
            known = sorted({*_PLAIN_FLAGS, *_VALUE_FLAGS, *_INFO_FLAGS})
            raise OverrideError(f"unknown Hydra flag {word!r} (flags: {' '.join(known)})")
    return flags + overrides


def _job_overrides() -> tuple[str, ...] | None:
    """The overrides Hydra composed this job with (its sweep values included);
    None when Hydra cannot say."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return tuple(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):
        return None


def _run_job(operation: str, cfg: Any, reference: Any = None) -> dict[str, Any]:
    """One job of an app: its result, exit code and error lines, as plain data
    (a launcher's job may run in another process or on another host).
    ``reference``: the default configuration (see ``Registry``)."""
    from omegaconf import OmegaConf

    from loader.registry.core import Registry

    op = OPERATIONS[operation]
    arguments = {
        key: OmegaConf.to_container(cfg[key]) if OmegaConf.is_config(cfg[key]) else cfg[key]
        for key in op.arguments
        if key in cfg
    }
    made: list[Registry] = []

    def registry() -> Registry:
        made.append(Registry(cfg, defer_snapshot_refresh=True, reference_cfg=reference))
        made[0].cfg.overrides = _job_overrides()  # for explain --config
        return made[0]

    # A job may run in a launcher's worker process: it shows its own warnings.
    with front_door_logging():
        use_config(cfg)
        invocation = invoke(operation, arguments, registry)
    if invocation.error is not None:
        return {"exit_code": invocation.exit_code, "errors": [invocation.error_line]}
    made[0].flush_snapshot()
    job: dict[str, Any] = {"exit_code": invocation.exit_code, "errors": invocation.warnings}
    if invocation.text is not None:
        job["text"] = invocation.text
    else:
        job["result"] = invocation.data
    return job


def _report_job(operation: str, job: dict[str, Any], *, compact: bool) -> int:
    """Print a job's result on stdout (one compact line per job in a sweep:
    JSON Lines) and its errors on stderr; returns its exit code."""
    print_warnings(operation, job.get("errors", []))
    if "result" in job:
        emit(operation, job["result"], compact=compact)
    elif "text" in job:
        sys.stdout.write(job["text"])
        sys.stdout.flush()
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

    from loader.config import load_config

    hydra_args = arrange_hydra_args(hydra_args)
    check_override_grammar(hydra_args)
    worst = EXIT_OK
    # Composed here, outside hydra.main: a job whose overrides change the
    # snapshot compares itself with it and leaves the shared snapshot alone.
    reference = load_config(())

    @hydra.main(config_path=str(conf_dir()), config_name="config", version_base=None)
    def app(cfg: DictConfig) -> None:
        nonlocal worst
        job = _run_job(operation, cfg, reference)
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            folder = Path(hydra_cfg.runtime.output_dir)
            job["num"] = hydra_cfg.job.num
            result = json.dumps(job, default=rows_as_list)
            (folder / RESULT_FILE).write_text(result, encoding="utf-8")
        else:
            worst = max(worst, _report_job(operation, job, compact=False))

    argv, sweep_dir = _sweep_dir(hydra_args)
    saved = sys.argv
    sys.argv = [f"{PROG}-{operation}", *argv]
    try:
        try:
            app()
        except SystemExit as exc:
            if exc.code not in (0, None):  # Hydra's argparse or its error report
                raise OverrideError(
                    f"Hydra refused the command line (exit {exc.code}); see above"
                ) from None
            return EXIT_OK  # --help, --hydra-help, --version
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
