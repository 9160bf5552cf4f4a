"""Resume semantics: ``auto`` = latest checkpoint (or fresh), a path = that checkpoint, ``false`` = fresh run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_CKPT = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """``checkpoint-<step>`` folders in ``output_dir``, oldest step first."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _CKPT.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step, or None."""
    ckpts = list_checkpoints(output_dir)
    return ckpts[-1] if ckpts else None


def checkpoint_step(checkpoint: str | Path) -> int:
    """Global step of a checkpoint (its trainer_state.json, else the folder name)."""
    path = Path(checkpoint)
    state = path / "trainer_state.json"
    if state.is_file():
        return int(json.loads(state.read_text()).get("global_step", 0))
    m = _CKPT.match(path.name)
    if not m:
        raise ValueError(f"cannot tell the step of checkpoint {path} (no trainer_state.json, not checkpoint-<N>)")
    return int(m.group(1))


def resolve_resume(output_dir: str | Path, resume: Any, overwrite_output_dir: bool = False) -> str | None:
    """The checkpoint path to resume from, or None for a fresh run.

    ``auto``: latest ``checkpoint-*`` in ``output_dir`` (None when there is none). A path: that checkpoint
    (FileNotFoundError when missing). ``false``/None: fresh; a non-empty ``output_dir`` raises
    FileExistsError unless ``overwrite_output_dir``.
    """
    out = Path(output_dir)
    if isinstance(resume, str) and resume.strip().lower() in ("false", "no", "none", ""):
        resume = False
    if resume is True or (isinstance(resume, str) and resume.strip().lower() in ("auto", "true", "latest")):
        latest = latest_checkpoint(out)
        return str(latest) if latest is not None else None
    if resume in (False, None):
        if out.is_dir() and any(out.iterdir()) and not overwrite_output_dir:
            raise FileExistsError(
                f"output dir {out} is not empty; pass resume_from_checkpoint=auto to continue it or "
                f"overwrite_output_dir=true to start over in it"
            )
        return None
    path = Path(str(resume))
    if not path.is_absolute() and not path.exists() and (out / path).exists():
        path = out / path
    if not path.is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint={resume!r}: no such checkpoint folder")
    return str(path)


def truncate_jsonl(path: str | Path, max_step: int) -> int:
    """Drop rows with ``step > max_step`` from a rollouts JSONL (rows of a killed run past its checkpoint).

    Returns the number of rows kept. A missing file is left missing.
    """
    p = Path(path)
    if not p.is_file():
        return 0
    kept = []
    for line in p.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a half-written last line from a killed run
        if int(row.get("step", 0)) <= max_step:
            kept.append(line)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text("".join(f"{line}\n" for line in kept))
    tmp.replace(p)
    return len(kept)
