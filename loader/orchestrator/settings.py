"""The orchestrator's settings, read once from the composed config."""

from __future__ import annotations

from pathlib import Path

from loader.config import Config
from loader.config_schema import OrchestratorConfig
from loader.errors import OrchestrationError


class Settings(OrchestratorConfig):
    """``conf/orchestrator/`` as typed values (declared and checked in
    ``loader/config_schema.py``; every default lives in the YAML)."""

    @classmethod
    def from_config(cls, cfg: Config) -> Settings:
        return cfg.group(cls)

    @property
    def lock_file(self) -> Path:
        # The chat proxy's lock: the state path with its suffix replaced by .lock.
        return self.state_file.with_suffix(".lock")

    @property
    def log_dir(self) -> Path:
        return self.state_file.parent / "logs"

    def require_enabled(self) -> None:
        if not self.enabled:
            raise OrchestrationError(
                "orchestration is disabled (orchestrator.enabled is false); "
                "nothing was started or stopped"
            )
