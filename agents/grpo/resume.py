"""Resume semantics: ``auto`` = latest COMPLETE checkpoint (or fresh), a path = that checkpoint, ``false`` = fresh.

A checkpoint counts only when complete: ``CheckpointMarker`` writes ``lewis_checkpoint_complete.json`` into it
after the Trainer has written every file (model, optimizer, scheduler, RNG, trainer state), atomically and
last. A folder without the marker is a save that was killed half-way: ``auto`` skips it with a warning.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

_CKPT = re.compile(r"^checkpoint-(\d+)$")
COMPLETE_MARKER = "lewis_checkpoint_complete.json"


class IncompleteCheckpointError(ValueError):
    """An explicitly named checkpoint is incomplete."""


class IncompleteCheckpointWarning(UserWarning):
    """A checkpoint folder without its completeness marker was skipped."""


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to ``path`` through a temp file and an atomic rename (readers never see half a file)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    with tmp.open("w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(p)


def mark_complete(checkpoint: str | Path, **extra: Any) -> Path:
    """Write the completeness marker into ``checkpoint`` (call after every file of it is written)."""
    ckpt = Path(checkpoint)
    files = sorted(str(f.relative_to(ckpt)) for f in ckpt.rglob("*") if f.is_file() and f.name != COMPLETE_MARKER)
    write_json_atomic(ckpt / COMPLETE_MARKER, {"files": files, **extra})
    return ckpt / COMPLETE_MARKER


def is_complete(checkpoint: str | Path) -> bool:
    """True when the checkpoint carries its marker and every file the marker lists is present."""
    marker = Path(checkpoint) / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        files = json.loads(marker.read_text()).get("files", [])
    except (json.JSONDecodeError, OSError):
        return False
    return all((Path(checkpoint) / f).is_file() for f in files)


class CheckpointMarker(TrainerCallback):
    """Marks each ``checkpoint-<step>`` complete once the Trainer has saved it (``on_save`` runs after the save)."""

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if ckpt.is_dir():
            mark_complete(ckpt, global_step=int(state.global_step))


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """``checkpoint-<step>`` folders in ``output_dir``, oldest step first."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _CKPT.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path, remove_incomplete: bool = False) -> Path | None:
    """The complete checkpoint with the highest step, or None; newer incomplete ones are skipped with a warning.

    ``remove_incomplete`` deletes those skipped folders (a resumed run will write those steps again).
    """
    for ckpt in reversed(list_checkpoints(output_dir)):
        if is_complete(ckpt):
            return ckpt
        action = "removing it" if remove_incomplete else "skipping it"
        warnings.warn(f"checkpoint {ckpt} is incomplete (no {COMPLETE_MARKER}: its save was interrupted); "
                      f"{action} and resuming from an earlier one", IncompleteCheckpointWarning, stacklevel=2)
        if remove_incomplete:
            shutil.rmtree(ckpt, ignore_errors=True)
    return None


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


def resolve_resume(output_dir: str | Path, resume: Any, overwrite_output_dir: bool = False,
                   remove_incomplete: bool = False) -> str | None:
    """The checkpoint path to resume from, or None for a fresh run.

    ``auto``: latest complete ``checkpoint-*`` in ``output_dir`` (None when there is none; newer incomplete
    ones are warned about and, with ``remove_incomplete``, deleted). A path: that checkpoint
    (FileNotFoundError when missing, ValueError when incomplete). ``false``/None: fresh; a non-empty
    ``output_dir`` raises FileExistsError unless ``overwrite_output_dir``.
    """
    out = Path(output_dir)
    if isinstance(resume, str) and resume.strip().lower() in ("false", "no", "none", ""):
        resume = False
    if resume is True or (isinstance(resume, str) and resume.strip().lower() in ("auto", "true", "latest")):
        latest = latest_checkpoint(out, remove_incomplete=remove_incomplete)
        return str(latest) if latest is not None else None
    if resume in (False, None):
        if out.is_dir() and any(out.iterdir()) and not overwrite_output_dir:
            raise FileExistsError(
                f"output dir {out} is not empty; pass train.resume_from_checkpoint=auto to continue it, "
                f"train.overwrite_output_dir=true to start over in it, or train.output_dir=<another folder>"
            )
        return None
    path = Path(str(resume))
    if not path.is_absolute() and not path.exists() and (out / path).exists():
        path = out / path
    if not path.is_dir():
        raise FileNotFoundError(f"train.resume_from_checkpoint={resume!r}: no such checkpoint folder")
    if not is_complete(path):
        raise IncompleteCheckpointError(f"train.resume_from_checkpoint={resume!r}: the checkpoint is incomplete (no "
                         f"{COMPLETE_MARKER}: its save was interrupted); use an earlier one or auto")
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
