"""The single-port vLLM orchestrator.

One vLLM server at a time serves on ``orchestrator.port``; ``activate``
switches it safely (under an inter-process lock, stopping the old server's
whole process tree, waiting for the new one's health), ``deactivate`` stops
it, ``current`` reports it. Long-running callers, such as a chat proxy::

    from loader.orchestrator import activate, current, deactivate

    state = activate("qwen2.5-vl-7b-instruct_(AWQ)")   # the state as a dict
    current()                                          # the same, or None

Modules: ``settings`` (conf/orchestrator), ``state`` (the state file),
``launch`` (the argv), ``process`` (pids, signals, ports, from /proc),
``tree`` (what belongs to one server, and stopping it), ``cgroup`` (a server's
own cgroup, where one can be made), ``signals`` (SIGINT, SIGTERM, SIGHUP
during a switch), ``logwriter`` (the rotating log), ``health`` (bounded
checks), ``server`` (start and wait), ``switch`` (the three operations).
"""

from __future__ import annotations

from loader.orchestrator.settings import Settings
from loader.orchestrator.state import State
from loader.orchestrator.switch import activate, current, deactivate

__all__ = ["Settings", "State", "activate", "current", "deactivate"]
