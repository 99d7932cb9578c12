"""Fixtures for the importer tests: the Ollama stand-in as a real process,
an Ollama models folder, and model folders of each format."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import CURATED, sha, write

SERVER = Path(__file__).resolve().parent / "servers" / "ollama_api.py"

# Shaped like Ollama's /api/tags and /api/show answers for these tags.
QWEN3 = {
    "name": "qwen3:8b",
    "size": 5225388164,
    "digest": "500a1f067a9f782620b40bee6f7b0c89e17ae61f686b92c24933e4ca4b2b8b41",
    "modified_at": "2025-10-30T22:31:34.990500+00:00",
    "details": {
        "format": "gguf",
        "family": "qwen3",
        "families": ["qwen3"],
        "parameter_size": "8.2B",
        "quantization_level": "Q4_K_M",
    },
    "capabilities": ["completion", "tools", "thinking"],
    "model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960},
    "template": "{{- if .Messages }}{{ range .Messages }}{{ .Content }}{{ end }}{{ end }}",
}
QWEN_VL = {
    "name": "qwen2.5vl:7b",
    "size": 5969245856,
    "digest": "5ced39dfa4bac325dc183dd1e4febaa1c46b3ea28bce48896c8e69c1e79611cc",
    "modified_at": "2025-10-29T10:00:00+00:00",
    "details": {
        "format": "gguf",
        "family": "qwen25vl",
        "families": ["qwen25vl"],
        "parameter_size": "8.3B",
        "quantization_level": "Q4_K_M",
    },
    "capabilities": ["completion", "vision"],
    "model_info": {"general.architecture": "qwen25vl", "qwen25vl.context_length": 128000},
    "template": "{{ .Prompt }}",
}
PHI4 = {
    "name": "phi4:14b",
    "size": 9053116391,
    "digest": "ac896e5b8b34a1f4efa7b14d7520725140d5512484457fab45d2a4ea14c69dba",
    "modified_at": "2025-09-01T08:00:00+00:00",
    "details": {
        "format": "gguf",
        "family": "phi3",
        "families": ["phi3"],
        "parameter_size": "14.7B",
        "quantization_level": "Q4_K_M",
    },
    "capabilities": ["completion"],
    "model_info": {"general.architecture": "phi3", "phi3.context_length": 16384},
    "template": "{{ .Prompt }}",
}
EMBED = {
    "name": "nomic-embed-text:latest",
    "size": 274302450,
    "digest": "0a109f422b47e3a30ba2b10eca18548e944e8a23073ee3f3e947efcf3c45e59f",
    "modified_at": "2025-08-01T08:00:00+00:00",
    "details": {
        "format": "gguf",
        "family": "nomic-bert",
        "families": ["nomic-bert"],
        "parameter_size": "137M",
        "quantization_level": "F16",
    },
    "capabilities": ["embedding"],
    "model_info": {"general.architecture": "nomic-bert", "nomic-bert.context_length": 2048},
    "template": "",
}


def empty_registry_folder(parent: Path) -> Path:
    """A registry folder whose only layer is an empty curated file."""
    return write(parent / "registry" / CURATED, b"[]\n").parent


def run_loader(registry: Path, *words: str, env: dict[str, str] | None = None):
    """``python -m loader WORDS registry.dir=REGISTRY`` as a real process;
    ``env`` is its whole environment (default: this one)."""
    return subprocess.run(
        [sys.executable, "-m", "loader", *words, f"registry.dir={registry}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def model(base: dict, **changes) -> dict:
    return {**copy.deepcopy(base), **changes}


class OllamaStandIn:
    """The stand-in server process; ``serve`` changes what it lists."""

    def __init__(self, folder: Path, mode: str = "normal") -> None:
        self.models_file = folder / "ollama-models.json"
        self.serve([])
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(SERVER),
                "--models",
                str(self.models_file),
                "--port",
                "0",
                "--mode",
                mode,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        assert line.startswith("PORT "), f"stand-in did not start: {line!r}"
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def serve(self, models: list[dict]) -> None:
        self.models_file.write_text(json.dumps({"models": models}), encoding="utf-8")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def ollama_models_folder(root: Path, tag: str, blobs: list[bytes]) -> dict[str, str]:
    """manifests/registry.ollama.ai/library/<name>/<tag> plus its blobs; returns
    each blob's path (relative to root) -> sha256."""
    name, _, version = tag.partition(":")
    digests = [sha(b) for b in blobs]
    for data, digest in zip(blobs, digests, strict=True):
        write(root / "blobs" / f"sha256-{digest}", data)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": f"sha256:{digests[0]}",
            "size": len(blobs[0]),
        },
        "layers": [
            {
                "mediaType": "application/vnd.ollama.image.model",
                "digest": f"sha256:{d}",
                "size": len(b),
            }
            for b, d in zip(blobs[1:], digests[1:], strict=True)
        ],
    }
    path = root / "manifests" / "registry.ollama.ai" / "library" / name / (version or "latest")
    write(path, json.dumps(manifest).encode())
    return {f"blobs/sha256-{d}": d for d in digests}


# --- model folders ------------------------------------------------------------

TEXT_CONFIG = {"hidden_size": 3584, "num_hidden_layers": 28, "max_position_embeddings": 32768}
TEMPLATE = "{% for message in messages %}{{ message.content }}{% endfor %}"

# kind: (folder below the root, config.json or None, other files). The configs
# have the shapes real checkpoints ship (architectures, quantization_config …).
MODEL_FOLDERS: dict[str, tuple[str, dict | None, dict[str, bytes]]] = {
    "safetensors": (
        "meta-llama/Llama-3.1-8B-Instruct",
        {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "torch_dtype": "bfloat16",
            "max_position_embeddings": 131072,
            "hidden_size": 4096,
        },
        {
            "tokenizer_config.json": json.dumps({"chat_template": TEMPLATE}).encode(),
            "model-00001-of-00002.safetensors": b"\0" * 300,
            "model-00002-of-00002.safetensors": b"\1" * 200,
            "model.safetensors.index.json": b'{"weight_map": {}}',
        },
    ),
    "awq": (
        "Qwen/Qwen2.5-VL-7B-Instruct-AWQ",
        {
            "architectures": ["Qwen2_5_VLForConditionalGeneration"],
            "model_type": "qwen2_5_vl",
            "torch_dtype": "float16",
            "max_position_embeddings": 128000,
            "quantization_config": {
                "bits": 4,
                "group_size": 128,
                "quant_method": "awq",
                "version": "gemm",
                "zero_point": True,
            },
            "vision_config": {"depth": 32, "hidden_size": 1280, "patch_size": 14},
        },
        {
            "chat_template.json": json.dumps({"chat_template": TEMPLATE}).encode(),
            "model-00001-of-00002.safetensors": b"a" * 400,
            "model-00002-of-00002.safetensors": b"b" * 100,
            "preprocessor_config.json": b'{"image_processor_type": "Qwen2VLImageProcessor"}',
        },
    ),
    "gptq": (
        "TheBloke/Mistral-7B-Instruct-v0.2-GPTQ",
        {
            "architectures": ["MistralForCausalLM"],
            "model_type": "mistral",
            "torch_dtype": "float16",
            "max_position_embeddings": 32768,
            "quantization_config": {
                "bits": 4,
                "group_size": 128,
                "desc_act": True,
                "quant_method": "gptq",
                "damp_percent": 0.1,
            },
        },
        {"model.safetensors": b"g" * 256},
    ),
    "fp8": (
        "Qwen/Qwen3-VL-8B-Instruct-FP8",
        {
            "architectures": ["Qwen3VLForConditionalGeneration"],
            "model_type": "qwen3_vl",
            "text_config": {
                **TEXT_CONFIG,
                "torch_dtype": "bfloat16",
                "max_position_embeddings": 262144,
            },
            "quantization_config": {
                "activation_scheme": "dynamic",
                "fmt": "e4m3",
                "quant_method": "fp8",
                "weight_block_size": [128, 128],
            },
        },
        {"chat_template.jinja": TEMPLATE.encode(), "model.safetensors": b"f" * 128},
    ),
    "bnb": (
        "unsloth/llama-3-8b-Instruct-bnb-4bit",
        {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "torch_dtype": "bfloat16",
            "quantization_config": {
                "_load_in_4bit": True,
                "bnb_4bit_quant_type": "nf4",
                "load_in_4bit": True,
                "quant_method": "bitsandbytes",
            },
        },
        {"model.safetensors": b"q" * 64},
    ),
    "gguf": (
        "Qwen/Qwen3-8B-GGUF",
        None,
        {"Qwen3-8B-Q4_K_M.gguf": b"GGUF" + b"\0" * 60, "README.md": b"# Qwen3-8B GGUF\n"},
    ),
    "llava": (
        "llava-hf/llava-1.5-7b-hf",
        {
            "architectures": ["LlavaForConditionalGeneration"],
            "model_type": "llava",
            "torch_dtype": "float16",
            "text_config": {"model_type": "llama"},
        },
        {"model.safetensors": b"l" * 32},
    ),
}


def model_folder(root: Path, kind: str) -> Path:
    """A small model folder of one format (see ``MODEL_FOLDERS``)."""
    relative, config, files = MODEL_FOLDERS[kind]
    folder = root / relative
    if config is not None:
        write(folder / "config.json", json.dumps(config, indent=2).encode())
    for name, data in files.items():
        write(folder / name, data)
    return folder


FORMATS = {
    # kind: (download_format, quantization, name, vision, chat template source)
    "safetensors": ("safetensors", "bf16", "llama-3.1-8b-instruct_(BF16)", False, "extracted"),
    "awq": ("awq", "awq", "qwen2.5-vl-7b-instruct_(AWQ)", True, "external"),
    "gptq": ("gptq", "gptq", "mistral-7b-instruct-v0.2_(GPTQ)", False, None),
    "fp8": ("fp8", "fp8", "qwen3-vl-8b-instruct_(FP8)", True, "external"),
    "bnb": ("bnb", "bnb", "llama-3-8b-instruct_(BNB)", False, None),
    "gguf": ("gguf", "q4_k_m", "qwen3-8b_(Q4_K_M)", False, None),
    "llava": ("safetensors", "fp16", "llava-1.5-7b-hf_(FP16)", True, None),
}
