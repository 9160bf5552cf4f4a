"""Self-play with the listener hosted in ``lewis-serve`` (``train.selfplay.listener_service``), as the reference
project's listener service was updated while its listener trained.

The speaker env scores through ``listener="http"``; the run publishes the listener's weights to the service
before the first phase and after every phase that changed them (listener phases; every phase with
``shared_model``): it hands the saved folder to ``POST /admin/reload``. A LoRA adapter goes onto the service's
base, so the run first publishes its starting listener as a full model (the base every later adapter was
trained on; the listener's warm start runs later, at its first phase); a resumed LoRA run publishes ``train.model`` plus the checkpoint's adapter.
Start the service with ``--reload-root <train.output_dir>`` (and the base model's folder for LoRA resumes).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from agents.grpo.config import ConfigError
from lewis_env.listeners.http import HTTPListener

START_DIR = "served-listener-start"


class ServedListener:
    """The HTTP listener the speaker env scores through, and the reloads that keep it current."""

    def __init__(self, url: str, token: str, reload_timeout: float, retry_budget: float) -> None:
        self.client = HTTPListener(url, token=token, retry_budget=retry_budget)
        self.reload_timeout = float(reload_timeout)
        self.reloads: list[dict[str, Any]] = []

    @classmethod
    def from_config(cls, sp: Any) -> ServedListener | None:
        """None unless ``train.selfplay.listener_service.url`` is set; the token is read from its env variable."""
        svc = sp.listener_service
        if not svc.url:
            return None
        token = os.environ.get(str(svc.token_env))
        if not token:
            raise ConfigError(f"train.selfplay.listener_service: ${svc.token_env} is empty; reloading the hosted "
                              "listener needs the token lewis-serve was started with")
        return cls(str(svc.url), token, float(svc.reload_timeout), float(svc.retry_budget))

    def publish(self, folder: Path, base: str | None = None) -> dict[str, Any]:
        """Load the saved listener in ``folder`` into the service (an adapter goes onto ``base`` when given,
        else onto the service's current base); returns what the service now serves."""
        t0 = time.perf_counter()
        folder = Path(folder)
        if (folder / "adapter_config.json").is_file():
            got = self.client.reload(adapter=folder, model=base, timeout=self.reload_timeout)
        else:
            got = self.client.reload(model=folder, timeout=self.reload_timeout)
        rec = {"folder": str(folder), "generation": got.generation, "seconds": round(time.perf_counter() - t0, 2)}
        self.reloads.append(rec)
        print(f"[lewis-train] listener service {self.client.url} reloaded {folder} "
              f"(reload {got.generation}, {rec['seconds']} s)", flush=True)
        return rec


def listener_folder(ckpt: Path, shared_model: bool) -> Path:
    """The listener's folder in a pair checkpoint (the speaker's when one model plays both roles)."""
    return ckpt / ("speaker" if shared_model else "listener")


def publish_start(sess: Any, ckpt: Path | None) -> None:
    """Before the first phase: the service serves the listener this run starts from."""
    served = getattr(sess, "served", None)
    if served is None:
        return
    if ckpt is not None:
        folder = listener_folder(ckpt, bool(sess.sp.shared_model))
        if (folder / "adapter_config.json").is_file():
            from agents.qwen.loading import resolve_model_path

            served.publish(folder, base=resolve_model_path(str(sess.train.model)))
            return
        served.publish(folder)
        return
    dest = sess.out / START_DIR  # the starting weights, as a full model
    shutil.rmtree(dest, ignore_errors=True)
    sess.l_model.save_pretrained(str(dest))
    sess.l_proc.save_pretrained(str(dest))
    served.publish(dest)


def publish_phase(sess: Any, role: str, ckpt: Path) -> dict[str, Any] | None:
    """After a phase that changed the listener's weights: the service serves the checkpoint's listener."""
    served = getattr(sess, "served", None)
    if served is None or (role != "listener" and not sess.sp.shared_model):
        return None
    return served.publish(listener_folder(ckpt, bool(sess.sp.shared_model)))
