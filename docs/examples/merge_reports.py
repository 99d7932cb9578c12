"""Merge the refresh reports of a fleet of GPU hosts into one fleet report.

    python merge_reports.py reports/*.json > fleet-report.json

Each host runs `imageworks-loader refresh` on its own weights and uploads its
report (docs/scheduled-refresh.md). Reports are keyed by host and run (the
report's `run`, else its `started_at`): per host the latest run counts, and
each report it replaces (an older run, or the same run given twice) is listed
under `replaced` and named on stderr. Per model, the fleet report lists what
each host found. It exits 2 when a lock was violated on any host, when a
locked model was verified on no host, or when hosts disagree about a model's
aggregate hash; 1 when a host's run failed otherwise; else 0. Standard
library only, so it runs anywhere.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPORT_SCHEMA = "imageworks-loader/refresh-report/1"


def run_key(report: dict) -> tuple[str, str]:
    """A report's host and run: two runs of one host are two reports; the same
    run given twice is one."""
    return report["host"], str(report.get("run") or report["started_at"])


def merge(reports: list[dict], names: list[str] | None = None) -> dict:
    """The fleet report. Per host, the latest run's models count; an older run
    of the same host, or the same run given twice, is replaced, and the
    ``replaced`` list (and a line on stderr) says so."""
    names = names or [f"report {i + 1}" for i in range(len(reports))]
    runs: dict[tuple[str, str], tuple[str, dict]] = {}
    replaced: list[dict] = []
    for name, report in zip(names, reports, strict=True):
        if report.get("schema") != REPORT_SCHEMA:
            raise SystemExit(f"merge_reports: {name}: not a {REPORT_SCHEMA}")
        key = run_key(report)
        if key in runs:
            replaced.append(
                {
                    "host": key[0],
                    "run": key[1],
                    "report": runs[key][0],
                    "by": name,
                    "why": "the same run given twice",
                }
            )
        runs[key] = (name, report)
    latest: dict[str, tuple[str, dict]] = {}
    for (host, _run), (name, report) in sorted(runs.items()):
        if host in latest:
            older = latest[host][0]
            replaced.append(
                {
                    "host": host,
                    "run": run_key(latest[host][1])[1],
                    "report": older,
                    "by": name,
                    "why": "a later run of the same host",
                }
            )
        latest[host] = (name, report)
    hosts, models = [], {}
    for host in sorted(latest):
        report = latest[host][1]
        hosts.append(
            {
                **{k: report[k] for k in ("host", "registry", "finished_at", "exit_code")},
                "run": run_key(report)[1],
            }
        )
        for model in report["models"]:
            row = models.setdefault(
                model["name"], {"name": model["name"], "locked": False, "hosts": {}}
            )
            row["locked"] = row["locked"] or model["lock"]["locked"]
            if model["on_host"]:
                row["hosts"][report["host"]] = {
                    "aggregate_sha256": model["aggregate_sha256"],
                    "lock": model["lock"]["status"],
                    "failed": model["failed"],
                }
    worst = max((h["exit_code"] for h in hosts), default=0)
    for row in models.values():
        seen = row["hosts"].values()
        aggregates = sorted({h["aggregate_sha256"] for h in seen if h["aggregate_sha256"]})
        row["aggregates"] = aggregates
        row["verified_on"] = sorted(
            h for h, r in row["hosts"].items() if r["lock"] in ("ok", "unlocked")
        )
        problems = []
        if any(r["lock"] == "violated" for r in seen):
            problems.append("lock violated")
        if row["locked"] and not row["verified_on"]:
            problems.append("locked but verified on no host")
        if len(aggregates) > 1:
            problems.append("hosts disagree about the aggregate")
        row["problems"] = problems
        if problems:
            worst = 2
    return {
        "schema": "imageworks-loader/fleet-report/1",
        "exit_code": worst,
        "hosts": hosts,
        "replaced": replaced,
        "models": [models[name] for name in sorted(models)],
    }


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: merge_reports.py REPORT.json ...", file=sys.stderr)
        return 1
    fleet = merge([json.loads(Path(p).read_text(encoding="utf-8")) for p in paths], paths)
    print(json.dumps(fleet, indent=2))
    for item in fleet["replaced"]:
        print(
            f"merge_reports: {item['report']} (host {item['host']}, run {item['run']}) "
            f"replaced by {item['by']}: {item['why']}",
            file=sys.stderr,
        )
    for model in fleet["models"]:
        for problem in model["problems"]:
            print(f"merge_reports: {model['name']}: {problem}", file=sys.stderr)
    return fleet["exit_code"]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
