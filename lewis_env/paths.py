"""Where lewis-bench keeps things: the cache folder and the config folder (one home for both)."""

from __future__ import annotations

import os
from pathlib import Path

#: The Hydra config folder shipped with the package: in a checkout ``lewis_env/conf`` is a link to the
#: top-level ``conf/``; a built wheel carries a copy of it (package data), so a non-editable install works.
PACKAGED_CONF = Path(__file__).resolve().parent / "conf"


def cache_dir() -> Path:
    """``$LEWIS_BENCH_CACHE`` or ``~/.cache/lewis_bench``: generated worlds, embeddings, the tiny model."""
    return Path(os.environ.get("LEWIS_BENCH_CACHE") or Path.home() / ".cache" / "lewis_bench")


def conf_dir() -> Path:
    """The config folder: ``$LEWIS_BENCH_CONF`` when set, else the ``conf/`` shipped with the package."""
    env = os.environ.get("LEWIS_BENCH_CONF")
    path = Path(env).expanduser() if env else PACKAGED_CONF
    if not path.is_dir():
        hint = ("$LEWIS_BENCH_CONF points at it" if env else
                "the package was installed without its conf/ (reinstall lewis-bench, or set LEWIS_BENCH_CONF)")
        raise FileNotFoundError(f"config folder {path} does not exist ({hint})")
    return path


__all__ = ["PACKAGED_CONF", "cache_dir", "conf_dir"]
