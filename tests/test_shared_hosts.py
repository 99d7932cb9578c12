"""Hosts sharing a registry folder (issue 18 item 7).

A dead writer's temp file is found by its process id, which only means
something on the host that wrote it. Temp files carry the host name, and a
write cleans up only its own host's dead writers: another host's temp file
with a pid that is dead here must survive. The config cache's temp files are
named and cleaned the same way."""

from __future__ import annotations

import os
import socket

import pytest
from hardening_support import dead_pid

from loader import config
from loader.registry import layers


@pytest.fixture
def host(monkeypatch):
    """Run as host ``alpha``; returns a function to switch host."""

    def become(name: str) -> None:
        monkeypatch.setattr(socket, "gethostname", lambda: name)

    become("alpha")
    return become


def test_temp_files_carry_the_host_name(tmp_path, host):
    target = tmp_path / "model_registry.discovered.json"
    temp = layers.temp_path(target)
    assert temp.name.startswith(".model_registry.discovered.json.alpha.")
    assert temp.name.endswith(f".{os.getpid()}.{__import__('threading').get_ident()}.tmp")


def test_a_write_cleans_only_its_own_hosts_dead_writers(tmp_path, host):
    target = tmp_path / "model_registry.discovered.json"
    target.write_text("[]\n")
    pid = dead_pid()
    # written by beta, whose pid numbers mean nothing on alpha
    beta_dead = tmp_path / f".{target.name}.beta.{pid}.1.tmp"
    alpha_dead = tmp_path / f".{target.name}.alpha.{pid}.1.tmp"
    alpha_live = tmp_path / f".{target.name}.alpha.{os.getpid()}.1.tmp"
    dotted_host = tmp_path / f".{target.name}.gpu-3.lab.example.{pid}.1.tmp"
    for path in (beta_dead, alpha_dead, alpha_live, dotted_host):
        path.write_bytes(b"[half")

    layers.atomic_write_bytes(target, b"[1]\n")

    assert target.read_bytes() == b"[1]\n"
    assert not alpha_dead.exists()
    assert beta_dead.exists() and dotted_host.exists() and alpha_live.exists()


def test_a_host_name_with_dots_is_its_own_host(tmp_path, host):
    host("gpu-3.lab.example")
    target = tmp_path / "model_registry.json"
    pid = dead_pid()
    ours = tmp_path / f".{target.name}.gpu-3.lab.example.{pid}.7.tmp"
    shorter = tmp_path / f".{target.name}.lab.example.{pid}.7.tmp"
    for path in (ours, shorter):
        path.write_bytes(b"x")
    layers.write_if_changed(target, [b"[]\n"])
    assert not ours.exists() and shorter.exists()


def test_the_config_cache_cleans_its_own_hosts_dead_writers(tmp_path, host):
    cache = tmp_path / "cache" / "config-abc.json"
    cache.parent.mkdir()
    pid = dead_pid()
    ours = cache.with_name(f".{cache.name}.alpha.{pid}.1.tmp")
    theirs = cache.with_name(f".{cache.name}.beta.{pid}.1.tmp")
    for path in (ours, theirs):
        path.write_bytes(b"{")
    config.write_cache_file(cache, {"raw": {}})
    assert cache.read_text() == '{"raw": {}}'
    assert not ours.exists() and theirs.exists()
    assert sorted(p.name for p in cache.parent.iterdir()) == sorted([cache.name, theirs.name])
