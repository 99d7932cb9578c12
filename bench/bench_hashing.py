"""Benchmark artifact hashing against `openssl dgst -sha256` on the same files.

    uv run python bench/bench_hashing.py [--size-gib 4] [--runs 3] [--dir DIR]

Creates, in a temporary folder on disk, a model of SIZE GiB in 4 shards and a
model made of one SIZE GiB file, plus a tiny registry pointing at both. After
a warm-up read before every timed command (so both sides hash from the page
cache), each run times:

* openssl over the shards vs our first verify (`verify NAME --rehash`);
* openssl over the single file vs our verify of it;
* our verify again with nothing changed vs `imageworks-loader list`.

Our side goes through the real CLI when it has a `verify` command; otherwise it
falls back to a subprocess calling `loader.hashing` directly, clearly labelled.
Peak RSS of each of our processes comes from `os.wait4`. Everything created is
deleted at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

# With vfork/posix_spawn a child's peak RSS starts at *this* process's peak (the
# shared address space counts until exec), which would hide the child's own.
subprocess._USE_VFORK = False  # type: ignore[attr-defined]
subprocess._USE_POSIX_SPAWN = False  # type: ignore[attr-defined]
GIB = 1024**3
BLOCK = 64 * 1024 * 1024
SHARDS = 4

# The fallback: the same engine the CLI uses, run in its own process so its
# start-up, wall time and peak RSS are measured the same way as the CLI's.
API_SCRIPT = """
import json, sys, time
from pathlib import Path
from loader.hashing import HashCache, HashStats, aggregate_sha256, hash_files, resolve_artifact_set
path, cache_file, rehash = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
aset = resolve_artifact_set(name=path, model_path=path, download_path=None,
                            download_files=None, ollama_models_dir=Path("/nonexistent"))
cache = HashCache.load(cache_file)
stats = HashStats()
t = time.perf_counter()
files = hash_files(aset, cache=cache, rehash=rehash, stats=stats)
hash_s = time.perf_counter() - t
cache.save()
print(json.dumps({"aggregate_sha256": aggregate_sha256(files), "hash_s": hash_s,
                  "files_read": stats.files_read, "bytes_read": stats.bytes_read}))
"""


@dataclass
class Result:
    wall_s: float
    maxrss_kib: int
    stdout: str


def run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run a command to completion; wall time and the child's own peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr}")
    return Result(wall, usage.ru_maxrss, stdout)


def write_file(path: Path, size: int, block: bytes) -> None:
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            n = min(left, len(block))
            fh.write(block[:n])
            left -= n


def warm(paths: list[Path]) -> None:
    buf = bytearray(1024 * 1024)
    for path in paths:
        with open(path, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass


def openssl(files: list[Path]) -> tuple[float, str]:
    """openssl's wall time and the aggregate its digests imply (as a correctness check)."""
    cwd = files[0].parent
    res = run(["openssl", "dgst", "-sha256", *[f.name for f in files]], cwd=cwd)
    lines = []
    for line in res.stdout.splitlines():
        m = re.fullmatch(r"SHA2?-?256\((.+)\)= ([0-9a-f]{64})", line.strip())
        if m:
            lines.append(f"{m.group(2)}  {m.group(1)}")
    aggregate = hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
    return res.wall_s, aggregate


def find_cli() -> Path | None:
    for candidate in (PROJECT / ".venv" / "bin" / "imageworks-loader",):
        if candidate.exists():
            return candidate
    found = shutil.which("imageworks-loader")
    return Path(found) if found else None


def cli_has_verify(cli: Path | None) -> bool:
    if cli is None:
        return False
    probe = subprocess.run([str(cli), "verify", "--help"], capture_output=True, timeout=60)
    return probe.returncode == 0


def write_registry(folder: Path, models: dict[str, Path]) -> None:
    folder.mkdir(parents=True)
    entries = [
        {"name": name, "backend": "vllm", "backend_config": {"model_path": str(path)}}
        for name, path in models.items()
    ]
    (folder / "model_registry.curated.json").write_text(json.dumps(entries, indent=2))
    (folder / "model_registry.discovered.json").write_text(json.dumps(entries, indent=2))


def fmt_rss(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-gib", type=float, default=4.0, help="size of each model (default 4)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs; medians are reported")
    ap.add_argument("--dir", type=Path, default=None, help="where to create the temp folder")
    ap.add_argument("--force-api", action="store_true", help="skip the CLI, time the API path")
    ap.add_argument("--json", type=Path, help="write the result rows here (bench/run_all.py)")
    args = ap.parse_args()

    size = int(args.size_gib * GIB)
    base = args.dir or Path("/tmp")
    if str(base.resolve()).startswith("/dev/shm"):
        raise SystemExit("use a folder on disk, not /dev/shm")
    need = 2 * size + 256 * 1024 * 1024
    if shutil.disk_usage(base).free < need:
        raise SystemExit(f"need {need / GIB:.1f} GiB free in {base}")

    cli = find_cli()
    use_cli = not args.force_api and cli_has_verify(cli)
    tmp = Path(tempfile.mkdtemp(prefix="iwl-bench-hashing-", dir=base))
    try:
        return bench(tmp, size, args.runs, cli if use_cli else None, cli, args.json)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench(
    tmp: Path,
    size: int,
    runs: int,
    cli: Path | None,
    list_cli: Path | None,
    json_out: Path | None = None,
) -> int:
    shards_dir, single_dir = tmp / "model-shards", tmp / "model-single"
    shards_dir.mkdir()
    single_dir.mkdir()
    print(f"writing {2 * size / GIB:.1f} GiB under {tmp} ...", flush=True)
    block = os.urandom(BLOCK)
    shard_files = [
        shards_dir / f"model-{i + 1:05d}-of-{SHARDS:05d}.safetensors" for i in range(SHARDS)
    ]
    for f in shard_files:
        write_file(f, size // SHARDS, block)
    single_files = [single_dir / "model.gguf"]
    write_file(single_files[0], size, block)
    del block
    os.sync()

    registry = tmp / "registry"
    write_registry(registry, {"bench-shards": shards_dir, "bench-single": single_dir})
    reg_arg = f"registry.dir={registry}"
    cache_file = registry / ".imageworks-hash-cache.json"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}

    def ours(name: str, folder: Path, rehash: bool) -> Result:
        if cli is not None:
            cmd = [str(cli), "verify", name, *(["--rehash"] if rehash else []), reg_arg]
        else:
            cmd = [sys.executable, "-c", API_SCRIPT, str(folder), str(cache_file), str(int(rehash))]
        return run(cmd, env=env)

    label = (
        f"CLI ({cli} verify)"
        if cli
        else "API fallback (python -c + loader.hashing; no CLI verify yet)"
    )
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, "
        f"{run(['openssl', 'version'], env=env).stdout.strip()}"
    )
    print(f"our path: {label}")

    t: dict[str, list[float]] = {
        k: []
        for k in (
            "openssl_shards",
            "ours_shards",
            "openssl_single",
            "ours_single",
            "reverify",
            "list",
        )
    }
    rss: dict[str, int] = {"shards": 0, "single": 0, "reverify": 0, "list": 0}
    inner: list[float] = []
    for i in range(runs):
        # Re-warm before every timed command: page-cache eviction (e.g. a DAMON
        # pageout scheme) can otherwise hand one side cold data.
        warm(shard_files)
        o_s, agg_s = openssl(shard_files)
        warm(shard_files)
        r_s = ours("bench-shards", shards_dir, rehash=True)
        warm(single_files)
        o_1, agg_1 = openssl(single_files)
        warm(single_files)
        r_1 = ours("bench-single", single_dir, rehash=True)
        again = ours("bench-shards", shards_dir, rehash=False)
        listed = run([str(list_cli), "list", reg_arg], env=env) if list_cli else None

        # Our answers must be openssl's answers.
        for res, agg in ((r_s, agg_s), (r_1, agg_1), (again, agg_s)):
            if agg not in res.stdout:
                raise SystemExit(f"aggregate {agg} (from openssl) not in our output:\n{res.stdout}")
        if cli is None:
            inner.append(json.loads(r_s.stdout)["hash_s"])
            if json.loads(again.stdout)["files_read"] != 0:
                raise SystemExit("re-verify with nothing changed re-read files")

        t["openssl_shards"].append(o_s)
        t["ours_shards"].append(r_s.wall_s)
        t["openssl_single"].append(o_1)
        t["ours_single"].append(r_1.wall_s)
        t["reverify"].append(again.wall_s)
        rss["shards"] = max(rss["shards"], r_s.maxrss_kib)
        rss["single"] = max(rss["single"], r_1.maxrss_kib)
        rss["reverify"] = max(rss["reverify"], again.maxrss_kib)
        if listed:
            t["list"].append(listed.wall_s)
            rss["list"] = max(rss["list"], listed.maxrss_kib)
        print(
            f"run {i + 1}/{runs}: shards openssl {o_s:.2f}s ours {r_s.wall_s:.2f}s | "
            f"single openssl {o_1:.2f}s ours {r_1.wall_s:.2f}s | reverify {again.wall_s:.2f}s"
            + (f" list {listed.wall_s:.2f}s" if listed else ""),
            flush=True,
        )

    med = {k: statistics.median(v) for k, v in t.items() if v}
    gib = size / GIB
    print()
    print(f"medians over {runs} runs ({label}):")
    print(
        f"  {SHARDS} shards, {gib:g} GiB: openssl {med['openssl_shards']:.2f}s  "
        f"ours {med['ours_shards']:.2f}s  ratio {med['ours_shards'] / med['openssl_shards']:.2f}x"
        f"  (target <= 0.60x)"
    )
    if inner:
        print(
            f"    of which hashing inside the process: {statistics.median(inner):.2f}s "
            f"({statistics.median(inner) / med['openssl_shards']:.2f}x openssl)"
        )
    print(
        f"  1 file, {gib:g} GiB:   openssl {med['openssl_single']:.2f}s  "
        f"ours {med['ours_single']:.2f}s  ratio {med['ours_single'] / med['openssl_single']:.2f}x"
        f"  (target <= 1.10x)"
    )
    if "list" in med:
        print(
            f"  re-verify, nothing changed: {med['reverify']:.2f}s  list {med['list']:.2f}s  "
            f"ratio {med['reverify'] / med['list']:.2f}x  (target <= 1.30x)"
        )
    else:
        print(f"  re-verify, nothing changed: {med['reverify']:.2f}s  (no CLI list to compare)")
    print(
        f"  peak RSS: shards {fmt_rss(rss['shards'])}, single {gib:g} GiB file "
        f"{fmt_rss(rss['single'])}, re-verify {fmt_rss(rss['reverify'])}"
        + (f", list {fmt_rss(rss['list'])}" if rss["list"] else "")
    )
    if json_out is not None:

        def ratios(ours_key: str, base_key: str) -> list[float]:
            return [a / b for a, b in zip(t[ours_key], t[base_key], strict=True)]

        rows = [
            {"path": f"first verify, one {gib:g} GiB file", "floor": "openssl dgst -sha256",
             "values": ratios("ours_single", "openssl_single"), "target": "<= 1.0x",
             "limit": 1.0},
            {"path": f"first verify, {SHARDS} shards of {gib / SHARDS:g} GiB",
             "floor": "openssl dgst -sha256", "values": ratios("ours_shards", "openssl_shards"),
             "target": "<= 0.6x", "limit": 0.6},
        ]  # fmt: skip
        if t["list"]:
            rows.append(
                {"path": "verify again, nothing changed", "floor": "list, same registry",
                 "values": ratios("reverify", "list"), "target": "<= 1.3x", "limit": 1.3}
            )  # fmt: skip
        json_out.write_text(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
