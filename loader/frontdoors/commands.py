"""The CLI's words for each command: its summary, details and examples.

The arguments themselves are declared with the operations
(``loader.operations.OPERATIONS``); this module holds only what the command
line's help says around them.
"""

from __future__ import annotations

from loader.frontdoors.output import PROG

OVERRIDES_HELP = """\
Overrides (after the command's own arguments, any number):
  KEY=VALUE                  a Hydra override of the composed config, e.g.
                             registry.dir=/srv/configs  backends.vllm.port=8001
                             profile=ci  (see: --cfg job)
  --set NAME.FIELD=VALUE     override one entry's field for this run only
                             (never saved). NAME is matched against the
                             registry's names, longest first, so names with
                             dots and parentheses work; FIELD may be nested
                             (backend_config.port). VALUE is JSON if it
                             parses (9000, true, ["a"]), else text.
                             Quote the whole word for the shell:
                             --set 'qwen2.5-vl-7b-instruct_(AWQ).backend_config.port=9000'

Hydra flags (hand the run to the command's Hydra app):
  --cfg job|hydra|all        print the composed config instead of running
  --resolve                  with --cfg, resolve interpolations
  -m, --multirun             sweep, e.g. -m "name='qwen3_8b_(Q4_K_M)','llama3.1_8b_(Q5_K_M)'"
                             (quote names that hold parentheses, Hydra-style)

Environment: IMAGEWORKS_REGISTRY_DIR sets registry.dir (default: configs).
Exit codes: 0 success; 1 usage error, unknown model, missing capability;
2 integrity failure (version lock violated, blob digest mismatch); 3 internal
error (a bug: one line on stderr; IMAGEWORKS_LOADER_DEBUG=1 adds the traceback)."""

# A command's own --help lists --set and the Hydra flags as options; its
# epilog adds only what argparse cannot show (KEY=VALUE words, exit codes).
COMMAND_EPILOG_TAIL = """\
KEY=VALUE words after the arguments are Hydra overrides of the composed config
(registry.dir=/srv/configs profile=ci; see --cfg job). IMAGEWORKS_REGISTRY_DIR
sets registry.dir (default: configs). Exit codes: 0 success; 1 usage error,
unknown model, missing capability; 2 integrity failure; 3 internal error (a bug)."""

SET_HELP = (
    "override one entry's field for this run only, never saved (repeatable). NAME "
    "is matched against the registry's names, longest first; FIELD may be nested "
    "(backend_config.port); VALUE is JSON if it parses, else text. Quote the word: "
    "--set 'qwen3_8b_(Q4_K_M).backend_config.port=9000'"
)

IMPORT_DETAIL = (
    "Writes only the discovered layer (never the curated file), through the locked save;\n"
    "a second run with nothing changed writes nothing. Prints JSON: added, updated and\n"
    "missing entries, field by field (before/after). --dry-run prints the same and\n"
    "writes nothing. Fields the registry marks dynamic (artifacts, download_*, ...) and\n"
    "importers.refresh_fields are refreshed; other fields are filled only while unset."
)

EDIT_DETAIL = (
    "Values are parsed as --set parses them (JSON if it parses, else text). The\n"
    "field must be one the schema declares and the value must have its type; a\n"
    "dynamic field (registry.dynamic_fields) goes only into the discovered layer.\n"
    "The edit is checked by composing the registry, then written under the\n"
    "registry lock keeping the file's key order and indentation. --dry-run prints\n"
    "the diff and writes nothing. Refused: a symlinked layer file."
)

# Each command's summary (the first line of its help) and details.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": (
        "List models as JSON: name, backend, locked, vision, roles, hash, verify.",
        "Sorted by name; hash is the first 12 hex digits of the aggregate sha256;\n"
        "verify is this host's last verify: ok, violated (until a verify passes) or\n"
        "never. --format table prints a table for a person instead.",
    ),
    "select": (
        "Resolve a model to its endpoint, backend, served id and capabilities.",
        "With --role, the model is the one the role prefers that has the required\n"
        "capabilities (the role's defaults, e.g. vision for caption, plus --require).\n"
        "Exits 1 when the model is unknown or lacks a required capability.",
    ),
    "list-roles": (
        "List each role with its models, in the order select --role prefers them.",
        "One row per (role, model): role, name, priority (role_priority), backend,\n"
        "display_name, capabilities. Deprecated models are left out.",
    ),
    "metrics": (
        "Show hash and lock state: every entry, or one entry with its full aggregate.",
        "For one entry, vision_probe is its last probe-vision result (null if never probed)\n"
        "and performance its rolling summary (record-performance).",
    ),
    "explain": (
        "Show every resolved field of a model and the layer it came from.",
        "Sources: curated, discovered, default (schema), override (--set); "
        "interpolated values also show their raw ${...} text.\n"
        "--field FIELD shows one field (or the fields beneath it, e.g. backend_config).\n"
        "--config KEY (no NAME) shows a config key's value and which file under conf/,\n"
        "command-line override or environment variable set it.",
    ),
    "verify": (
        "Recompute a model's artifact hashes, record them, and enforce its version lock.",
        "Prints the aggregate sha256, last_verified and the lock state as JSON.\n"
        "Exits 2 when a locked model's aggregate differs from the expected one (the\n"
        "expected hash and the last good record are kept) or an Ollama blob does not\n"
        "match its digest; 1 when the model's files cannot be found. Unchanged files\n"
        "(same size, mtime, ctime, inode) are not re-read; --rehash re-reads all.\n"
        "A lock made by the ImageWorks loader's subset formula still holds when the\n"
        "subset matches, with a warning that the weights are not covered.",
    ),
    "lock": (
        "Lock a model's version, so verify fails if its artifacts change.",
        "",
    ),
    "unlock": (
        "Clear a model's lock flag (the expected hash is kept).",
        "",
    ),
    "refresh": (
        "Re-import, hash, verify, probe and regenerate the snapshot; write a report.",
        "Runs the doit task graph (the same as `doit refresh`), redoing only what\n"
        "changed, then writes a JSON report and a Markdown summary where the profile\n"
        "says (profile.report, profile.summary) and prints the report on stdout.\n"
        "Exits 2 when a version lock is violated, 1 when any other task failed.\n"
        "See docs/scheduled-refresh.md.",
    ),
    "activate-model": (
        "Start a vLLM model as the one server on the canonical port (stopping the old one).",
        "Waits until it is healthy, then prints the state file as JSON. Nothing restarts\n"
        "when the model is already active and healthy. --stop (or the name none) stops\n"
        "the server and removes the state; with nothing running it does nothing.\n"
        "Exits 1 when the model is unknown or not vLLM-backed, orchestration is\n"
        "disabled, the port is held by another program, the lock is held too long,\n"
        "or the server fails to start (with the last lines of its log).\n"
        "See docs/orchestrator.md.",
    ),
    "current-model": (
        "Print the running vLLM server's state as JSON, or null when none runs.",
        "A state whose process has exited, or whose pid now belongs to another\n"
        "program, is cleared with a warning and reported as null.",
    ),
    "probe-vision": (
        "Prove that a model really sees images: ask about an image, check, record.",
        "Without IMAGE, the built-in probe sends probe.rounds solid-colour squares in\n"
        "random colours and passes only if every colour is named. With IMAGE (PNG, JPEG,\n"
        "WebP or GIF, told by content), --expect WORD checks the answer; without it any\n"
        "non-empty answer passes, unchecked. Prints the result as JSON and records it\n"
        "in the discovered layer (probes.vision), failed probes too. Exits 1 with one\n"
        "line naming the cause when the model fails, is not vision-capable, or the\n"
        "image is unusable (the last two send and record nothing). Settings: probe.*\n"
        "(timeout_s, connect_timeout_s, retries, max_tokens, rounds).",
    ),
    "snapshot": (
        "Regenerate the merged snapshot model_registry.json if its content changed.",
        "",
    ),
    "migrate": (
        "Split a legacy single-file model_registry.json into the curated and discovered layers.",
        "Static fields go to the curated layer, dynamic ones (registry.dynamic_fields)\n"
        "to the discovered layer, in each entry's key order. Once the layers exist,\n"
        "entries found only in the snapshot (hand-edited) are adopted into the\n"
        "discovered layer. Running it again changes nothing.",
    ),
    "audit": (
        "Check the registry for common mistakes; print findings as JSON Lines.",
        "Each finding has severity (error, warning, info), code, entry, field, layer,\n"
        "message and, when there is one, fix. Exits 1 when any error remains.\n"
        "--fix applies only the fixes that lose nothing (a dynamic field moved from\n"
        'curated to discovered, a placeholder string such as "None" made null, a\n'
        "curated value equal to the discovered one dropped) through the locked save;\n"
        "--dry-run prints their diff instead. Codes: docs/health.md.",
    ),
    "set": (
        "Set fields of a model in a layer file (curated by default), checked before writing.",
        "A NAME not yet in the registry makes a new curated entry; it needs backend=.\n"
        + EDIT_DETAIL,
    ),
    "unset": (
        "Remove fields of a model from a layer file (curated by default).",
        "The other layer's value, or the schema default, then shows.\n" + EDIT_DETAIL,
    ),
    "promote": (
        "Pin discovered values into the curated layer, so rediscovery cannot change them.",
        "With no FIELD: every static field the discovered layer holds and the curated\n"
        "layer does not. Refused: a dynamic field, a field discovered does not hold.\n"
        + EDIT_DETAIL,
    ),
    "demote": (
        "Unpin curated static fields: remove them from the curated layer.",
        "Each value moves to the discovered layer where that holds none, so nothing is\n"
        "lost; with no FIELD, every static field the curated entry holds.\n" + EDIT_DETAIL,
    ),
    "schema": (
        "Print the JSON Schema (2020-12) of a layer file, for editors and validators.",
        "Generated from the entry model; docs/model_registry.layer.schema.json is a copy.\n"
        "See docs/health.md for pointing an editor at it.",
    ),
    "show-backends": (
        "Show each backend in use: its endpoint, how many entries use it, whether it answers.",
        "One row per endpoint (backend and resolved URL). Each is asked once\n"
        "(GET /models under an OpenAI-style /v1 URL, else the URL itself), bounded by\n"
        "backends_check.timeout_s and backends_check.max_bytes. A table for a person;\n"
        "--json for scripts.",
    ),
    "record-performance": (
        "Record one request's timings; keep the rolling summary in the discovered layer.",
        "The summary (performance: rolling_samples, ttft_ms_avg,\n"
        "throughput_toks_per_s_avg, last_sample) covers the last performance.window\n"
        "samples, kept in the registry's state folder; concurrent recorders lose none.\n"
        "metrics NAME shows it.",
    ),
    "import-ollama": (
        "Record the models of a running Ollama server (GET /api/tags, POST /api/show).",
        "The URL defaults to importers.ollama.url, which reads OLLAMA_HOST (a bare\n"
        "host:port is accepted), else http://127.0.0.1:11434. A tag already recorded\n"
        "(backend ollama, same served_model_id) updates every entry that records it; a\n"
        "model gone from Ollama is kept and marked (metadata.ollama_missing_since).\n"
        "New entries get backend_config.host from IMAGEWORKS_OLLAMA_HOST\n"
        "(default host.docker.internal).\n\n" + IMPORT_DETAIL,
    ),
    "import-dir": (
        "Record model folders (a config.json or a .gguf file) as registry entries.",
        "A PATH that is not itself a model folder is searched for model folders\n"
        "(to importers.rediscover.depth levels). A folder an entry already records\n"
        "(same backend, same resolved path) updates that entry.\n\n" + IMPORT_DETAIL,
    ),
    "rediscover": (
        "Record every model folder under paths.models; report entries whose folder has gone.",
        "Searches importers.rediscover.depth levels below paths.models\n"
        "(IMAGEWORKS_MODEL_ROOT). Entries whose folder has gone are reported, not\n"
        "deleted.\n\n" + IMPORT_DETAIL,
    ),
}

EXAMPLES: dict[str, list[str]] = {
    "list": [f"{PROG} list --role caption", f"{PROG} list registry.dir=/srv/configs"],
    "select": [
        f"{PROG} select 'qwen2.5-vl-7b-instruct_(AWQ)' --require-vision",
        f"{PROG} select --role caption",
    ],
    "list-roles": [f"{PROG} list-roles"],
    "metrics": [f"{PROG} metrics", f"{PROG} metrics --name 'qwen3_8b_(Q4_K_M)'"],
    "explain": [
        f"{PROG} explain 'qwen3_8b_(Q4_K_M)' --field backend_config.port",
        f"{PROG} explain --config backends.vllm.port",
    ],
    "verify": [f"{PROG} verify 'florence-2-large_(FP16)'", f"{PROG} verify --all profile=ci"],
    "lock": [f"{PROG} lock 'florence-2-large_(FP16)' --set-expected"],
    "unlock": [f"{PROG} unlock 'florence-2-large_(FP16)'"],
    "snapshot": [f"{PROG} snapshot registry.dir=/srv/configs"],
    "migrate": [f"{PROG} migrate --dry-run", f"{PROG} migrate registry.dir=/srv/old-registry"],
    "probe-vision": [
        f"{PROG} probe-vision 'qwen2.5-vl-7b-instruct_(AWQ)'",
        f"{PROG} probe-vision 'qwen2.5-vl-7b-instruct_(AWQ)' cat.jpg --expect cat",
    ],
    "activate-model": [
        f"{PROG} activate-model 'qwen2.5-vl-7b-instruct_(AWQ)'",
        f"{PROG} activate-model --stop",
    ],
    "current-model": [f"{PROG} current-model"],
    "import-ollama": [
        f"{PROG} import-ollama --dry-run",
        f"{PROG} import-ollama --url http://gpu-box:11434",
    ],
    "import-dir": [
        f"{PROG} import-dir ~/ai-models/weights/Qwen/Qwen2.5-VL-7B-Instruct-AWQ --hash",
        f"{PROG} import-dir ~/ai-models/weights --dry-run",
    ],
    "rediscover": [f"{PROG} rediscover --dry-run", f"{PROG} rediscover paths.models=/srv/weights"],
    "audit": [f"{PROG} audit", f"{PROG} audit --fix --dry-run"],
    "set": [
        f"{PROG} set 'qwen3_8b_(Q4_K_M)' display_name='Qwen3 8B' backend_config.port=11435",
        f"{PROG} set my-model backend=vllm backend_config.model_path=/srv/models/my-model",
    ],
    "unset": [f"{PROG} unset 'qwen3_8b_(Q4_K_M)' display_name"],
    "promote": [
        f"{PROG} promote 'qwen3_8b_(Q4_K_M)'",
        f"{PROG} promote 'qwen3_8b_(Q4_K_M)' served_model_id",
    ],
    "demote": [f"{PROG} demote 'qwen3_8b_(Q4_K_M)' display_name"],
    "schema": [f"{PROG} schema > model_registry.layer.schema.json"],
    "show-backends": [f"{PROG} show-backends", f"{PROG} show-backends --json"],
    "record-performance": [
        f"{PROG} record-performance 'qwen3_8b_(Q4_K_M)' --ttft-ms 180 --tokens 256 "
        "--duration-ms 4200"
    ],
    "refresh": [f"{PROG} refresh", f"{PROG} refresh profile=ci registry.dir=/srv/configs"],
}
