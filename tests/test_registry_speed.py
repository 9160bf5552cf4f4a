"""Registry lookups stay cheap: installed entry points are scanned once per sys.path, not on every get()."""

from __future__ import annotations

import lewis_env.registry as registry_mod
from lewis_env.tasks import get_task


def test_entry_points_are_scanned_once_per_sys_path(monkeypatch):
    """A bootstrap loop calls get_task thousands of times; each call used to re-read every dist's metadata."""
    calls = []
    real = registry_mod.entry_points

    def counting(**kw):
        calls.append(kw)
        return real(**kw)

    monkeypatch.setattr(registry_mod, "entry_points", counting)
    monkeypatch.setattr(registry_mod, "_EP_CACHE", {})
    for _ in range(500):
        get_task("listener")
    assert len(calls) <= 1
    monkeypatch.syspath_prepend("/nonexistent-lewis-test-path")  # a new path is scanned again
    get_task("listener")
    assert len(calls) <= 2 and calls
