"""The listener/speaker service: any registered listener or speaker behind a small, safe FastAPI app.

Endpoints (request/response shapes compatible with the reference research service):

- ``GET /health`` -> status, version, hosted roles and model names, concurrency figures.
- ``POST /score`` -> one ``{"candidate_paths": [...], "question": "...", "topk": 1}`` item, answered with
  ``{"yes_probabilities": [...], "scores": [...], "predicted_index": i, "topk_indices": [...], "took": s}``.
- ``POST /batch_score`` -> ``{"batch": [item, ...]}`` answered with ``{"results": [...], "took": s}``.
- ``POST /describe`` / ``POST /batch_describe`` -> an image (``image_path`` or ``image_b64``) answered with
  the speaker's raw ``text`` and its parsed ``thinking`` / ``coarse`` / ``detailed`` / ``description``.

Candidates are image files under the configured ``allowed_roots`` or inline base64 images
(``candidate_images_b64``); optional ``candidate_ids`` and ``candidate_attributes`` become the
``ImageRef`` concept ids and ground-truth attributes, which is what lets the rule listener work remotely.

Safe by default: binds 127.0.0.1, refuses paths that resolve outside the allowed roots (403), caps the
request body (413, by Content-Length and by the bytes actually received), the batch length and the
candidates per item (422 naming the field), optionally requires a bearer token (401), limits concurrent
model calls with a semaphore whose acquire timeout answers 503 + ``Retry-After``, and runs model calls in
a worker thread so the event loop keeps answering ``/health`` while a model works.

Run it with ``lewis-serve --listener rule --port 9000`` (see ``lewis-serve --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import io
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol, runtime_checkable

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lewis_env.data.images import BadImageError, load_pil
from lewis_env.data.types import ImageRef
from lewis_env.listeners.base import Listener, make_listener

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_BATCH = 256
DEFAULT_MAX_CANDIDATES = 64
DEFAULT_SPEAKER_INSTRUCTION = (
    "Describe the object in the image so that someone could pick it out among similar objects of the "
    "same kind. Answer as <thinking>...</thinking><coarse>...</coarse><detailed>...</detailed>."
)
#: Paths answered without a bearer token (load balancers and the client probe them).
OPEN_PATHS: frozenset[str] = frozenset({"/health"})


# --------------------------------------------------------------------------------------------------
# Speakers
# --------------------------------------------------------------------------------------------------
@runtime_checkable
class Speaker(Protocol):
    """Anything that describes images: one text per PIL image, in order."""

    def describe_batch(self, images: Sequence[Image.Image]) -> list[str]:
        """Describe each image (the raw completion, tags and all)."""
        ...


class AgentSpeaker:
    """Adapts a registered speaker-role ``Agent`` (``act_batch`` on observations) to ``describe_batch``."""

    def __init__(
        self, agent: Any, instruction: str = DEFAULT_SPEAKER_INSTRUCTION, image_size: int = 224
    ) -> None:
        if not hasattr(agent, "act_batch"):
            raise TypeError(f"speaker agent must have act_batch, got {type(agent).__name__}")
        self.agent = agent
        self.instruction = instruction
        self.image_size = int(image_size)
        self.name = str(getattr(agent, "name", type(agent).__name__))
        # A stand-in env: agents learn their role from ``env.unwrapped.role`` when bound.
        stub = SimpleNamespace(role="speaker", action_mode="text", dataset=None)
        stub.unwrapped = stub
        if hasattr(agent, "bind"):
            agent.bind(stub)

    def describe_batch(self, images: Sequence[Image.Image]) -> list[str]:
        """Turn each image into a speaker observation and return the agent's text actions."""
        import numpy as np

        obs = []
        for im in images:
            im = im.convert("RGB")
            if im.size != (self.image_size, self.image_size):
                im = im.resize((self.image_size, self.image_size), Image.BILINEAR)
            obs.append({"image": np.asarray(im, dtype=np.uint8), "instruction": self.instruction})
        return [str(a) for a in self.agent.act_batch(obs)]


def as_speaker(speaker: Any) -> Speaker | None:
    """A speaker object from a ``describe_batch`` object, a speaker-role Agent, or an agent registry name."""
    if speaker is None:
        return None
    if isinstance(speaker, str):
        from agents.registry import make

        speaker = make(speaker)
    if hasattr(speaker, "describe_batch"):
        return speaker
    if hasattr(speaker, "act_batch"):
        return AgentSpeaker(speaker)
    raise TypeError(
        f"speaker must have describe_batch or be an Agent with act_batch, got {type(speaker).__name__}"
    )


_TAG_RE = {
    tag: re.compile(rf"<{tag}>(.*?)(?:</{tag}>|$)", re.DOTALL | re.IGNORECASE)
    for tag in ("thinking", "coarse", "detailed")
}


def parse_speaker_output(text: str) -> dict[str, str | None]:
    """Split a tagged speaker completion into thinking / coarse / detailed and the description to send on."""
    parts: dict[str, str | None] = {}
    for tag, rx in _TAG_RE.items():
        m = rx.search(text)
        parts[tag] = m.group(1).strip() if m else None
    if parts["coarse"] or parts["detailed"]:
        description = " ".join(p for p in (parts["coarse"], parts["detailed"]) if p)
    else:  # untagged: the raw text without any thinking block
        description = re.sub(
            r"<thinking>.*?(</thinking>|$)", "", text, flags=re.DOTALL | re.IGNORECASE
        ).strip()
    return {**parts, "description": description}


# --------------------------------------------------------------------------------------------------
# Request / response models
# --------------------------------------------------------------------------------------------------
class ScoreItem(BaseModel):
    """One (description, K candidates) question for the listener."""

    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(None, description="The description the listener reads (reference name).")
    description: str | None = Field(None, description="Alias of `question`.")
    candidate_paths: list[str] | None = Field(None, description="Image files under the allowed roots.")
    candidate_images_b64: list[str] | None = Field(None, description="Inline images, base64-encoded files.")
    candidate_ids: list[str] | None = Field(None, description="Concept id per candidate (optional).")
    candidate_attributes: list[dict[str, str]] | None = Field(
        None, description="Ground-truth attributes per candidate (the rule listener needs them)."
    )
    topk: int = Field(1, ge=1, description="How many best candidate indices to return in `topk_indices`.")

    @model_validator(mode="after")
    def _check(self) -> ScoreItem:
        if self.question is None and self.description is None:
            raise ValueError("question (or its alias description) is required")
        if self.question is not None and self.description is not None and self.question != self.description:
            raise ValueError("question and description differ; send one of them")
        paths, inline = self.candidate_paths, self.candidate_images_b64
        if paths and inline:
            raise ValueError("give candidate_paths or candidate_images_b64, not both")
        if not paths and not inline:
            raise ValueError("candidate_paths (or candidate_images_b64) must hold at least one candidate")
        n = len(paths or inline or [])
        for name in ("candidate_ids", "candidate_attributes"):
            val = getattr(self, name)
            if val is not None and len(val) != n:
                raise ValueError(f"{name} has {len(val)} entries but there are {n} candidates")
        return self

    @property
    def text(self) -> str:
        return self.question if self.question is not None else str(self.description)

    @property
    def num_candidates(self) -> int:
        return len(self.candidate_paths or self.candidate_images_b64 or [])


class BatchScoreRequest(BaseModel):
    """Many listener questions in one request (the reference ``/batch_score`` body)."""

    model_config = ConfigDict(extra="forbid")
    batch: list[ScoreItem]


class ScoreResult(BaseModel):
    """The listener's answer to one item: the pick, the per-candidate scores and the top-k indices."""

    predicted_index: int
    scores: list[float]
    yes_probabilities: list[float]
    topk_indices: list[int]


class ScoreResponse(ScoreResult):
    took: float


class BatchScoreResponse(BaseModel):
    results: list[ScoreResult]
    took: float


class DescribeItem(BaseModel):
    """One image for the speaker: a path under the allowed roots or an inline base64 file."""

    model_config = ConfigDict(extra="forbid")
    image_path: str | None = None
    image_b64: str | None = None

    @model_validator(mode="after")
    def _check(self) -> DescribeItem:
        if (self.image_path is None) == (self.image_b64 is None):
            raise ValueError("give exactly one of image_path or image_b64")
        return self


class BatchDescribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch: list[DescribeItem]


class DescribeResult(BaseModel):
    text: str
    description: str
    thinking: str | None
    coarse: str | None
    detailed: str | None


class DescribeResponse(DescribeResult):
    took: float


class BatchDescribeResponse(BaseModel):
    results: list[DescribeResult]
    took: float


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
class ServiceError(Exception):
    """An error answered with ``status`` and a message that names what was wrong."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _loc_str(loc: Sequence[Any]) -> str:
    """``("body", "batch", 0, "question")`` -> ``"batch[0].question"``."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def _validation_response(errors: Sequence[dict[str, Any]]) -> JSONResponse:
    """422 with FastAPI's ``detail`` list plus a one-line ``error`` naming each bad field."""
    clean = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
    summary = "; ".join(f"{_loc_str(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in clean)
    return JSONResponse(status_code=422, content={"detail": clean, "error": summary})


def _too_many(loc: tuple[Any, ...], limit: int, got: int, what: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("body", *loc), "type": "too_long", "msg": f"at most {limit} {what} allowed, got {got}"}]
    )


# --------------------------------------------------------------------------------------------------
# Body size and token guard (pure ASGI so it runs before FastAPI reads the body)
# --------------------------------------------------------------------------------------------------
class RequestGuardMiddleware:
    """Refuses unauthenticated requests (401) and bodies over ``max_request_bytes`` (413) before parsing."""

    def __init__(self, app: Any, max_request_bytes: int, token: str | None = None) -> None:
        self.app, self.max_bytes, self.token = app, int(max_request_bytes), token

    async def _reply(
        self,
        scope: Any,
        receive: Any,
        send: Any,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        await JSONResponse({"detail": message}, status_code=status, headers=headers)(scope, receive, send)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self.token is not None and scope.get("path") not in OPEN_PATHS:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(
                given.strip().encode(), self.token.encode()
            ):
                why = "missing bearer token" if not auth else "invalid bearer token"
                await self._reply(
                    scope,
                    receive,
                    send,
                    401,
                    f"{why}: send 'Authorization: Bearer <token>'",
                    {"WWW-Authenticate": "Bearer"},
                )
                return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                await self._reply(scope, receive, send, 400, f"bad Content-Length header: {declared!r}")
                return
            if n > self.max_bytes:
                await self._reply(
                    scope,
                    receive,
                    send,
                    413,
                    f"request body of {n} bytes exceeds the limit of {self.max_bytes} bytes",
                )
                return
        # Read the body ourselves, counting bytes actually received (chunked uploads carry no length).
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._reply(
                    scope, receive, send, 413, f"request body exceeds the limit of {self.max_bytes} bytes"
                )
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# --------------------------------------------------------------------------------------------------
# Image access
# --------------------------------------------------------------------------------------------------
def default_allowed_roots() -> list[Path]:
    """``$LEWIS_BENCH_CACHE`` or ``~/.cache/lewis_bench``: where synthetic worlds live."""
    return [Path(os.environ.get("LEWIS_BENCH_CACHE") or Path.home() / ".cache" / "lewis_bench")]


class ImageStore:
    """Resolves candidate paths inside the allowed roots and materialises inline images as files."""

    def __init__(self, allowed_roots: Sequence[str | Path], max_inline_files: int = 4096) -> None:
        self.roots = [Path(r).expanduser().resolve() for r in allowed_roots]
        self.inline_dir = Path(tempfile.mkdtemp(prefix="lewis_serve_inline_"))
        self.max_inline_files = int(max_inline_files)
        self._inline: OrderedDict[str, Path] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(self, path: str, where: str) -> Path:
        """``path`` (relative ones joined to the first root) once its real target is known to lie under an
        allowed root and to be a file: 403 naming it otherwise, 404 if missing."""
        p = Path(path).expanduser()
        if not p.is_absolute():
            if not self.roots:
                raise ServiceError(403, f"path {path!r} ({where}) refused: no allowed roots are configured")
            p = self.roots[0] / p
        real = p.resolve()  # follows symlinks and removes '..', so escapes show up here
        if not any(real == r or real.is_relative_to(r) for r in self.roots):
            roots = ", ".join(str(r) for r in self.roots) or "(none)"
            raise ServiceError(403, f"path {path!r} ({where}) is outside the allowed roots: {roots}")
        if not real.is_file():
            raise ServiceError(404, f"image {path!r} ({where}) does not exist")
        # Hand the listener the path as the client named it (its file name is part of ImageRef.image_id,
        # which listeners may hash), now that we know where it really leads.
        return p

    def inline(self, data_b64: str, where: str) -> Path:
        """Decode a base64 image, check it decodes, store it content-addressed (safe for the load cache)."""
        if "," in data_b64[:64] and data_b64.startswith("data:"):
            data_b64 = data_b64.split(",", 1)[1]  # tolerate data URLs
        try:
            raw = base64.b64decode(data_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ServiceError(422, f"{where} is not valid base64: {exc}") from None
        digest = hashlib.sha256(raw).hexdigest()[:32]
        with self._lock:
            known = self._inline.get(digest)
            if known is not None and known.exists():
                self._inline.move_to_end(digest)
                return known
        try:
            with Image.open(io.BytesIO(raw)) as im:
                im.load()
                im = im.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise ServiceError(422, f"{where} is not a readable image: {exc}") from None
        self.inline_dir.mkdir(parents=True, exist_ok=True)
        path = self.inline_dir / f"{digest}.png"
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        im.save(tmp, format="PNG")
        os.replace(tmp, path)
        with self._lock:
            self._inline[digest] = path
            while len(self._inline) > self.max_inline_files:
                _, old = self._inline.popitem(last=False)
                old.unlink(missing_ok=True)
        return path

    def close(self) -> None:
        """Delete the inline images (the store stays usable: the folder is made again on demand)."""
        with self._lock:
            self._inline.clear()
        shutil.rmtree(self.inline_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------------
def _env_number(name: str, default: float, cast: type = float) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return cast(default)
    try:
        return cast(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a {cast.__name__}") from None


def _model_name(obj: Any) -> str | None:
    """The model path/hub id behind a listener or agent, for /health (None when it has none)."""
    for attr in ("model_name", "model_path", "model_id", "model"):
        val = getattr(obj, attr, None)
        if isinstance(val, (str, os.PathLike)):
            return str(val)
        name = getattr(val, "name_or_path", None)  # a transformers model object
        if isinstance(name, str) and name:
            return name
    inner = getattr(obj, "agent", None)  # listeners wrapping an agent (QwenListener -> QwenVLAgent)
    return _model_name(inner) if inner is not None and inner is not obj else None


def _probabilities(scores: list[float]) -> list[float]:
    """Scores that are already probabilities stay as they are; other scores go through a softmax."""
    if all(0.0 <= s <= 1.0 for s in scores):
        return list(scores)
    m = max(scores)
    ex = [math.exp(s - m) for s in scores]
    z = sum(ex)
    return [e / z for e in ex]


class _Service:
    """The state behind one app: hosted models, limits, the concurrency gate and latency figures."""

    def __init__(
        self,
        listener: Listener | None,
        speaker: Speaker | None,
        store: ImageStore,
        max_batch: int,
        max_candidates: int,
        concurrency: int,
        acquire_timeout: float,
        batch_size: int,
    ) -> None:
        self.listener, self.speaker, self.store = listener, speaker, store
        self.max_batch, self.max_candidates = int(max_batch), int(max_candidates)
        self.concurrency, self.acquire_timeout = int(concurrency), float(acquire_timeout)
        self.batch_size = int(batch_size)
        self.semaphore = asyncio.Semaphore(self.concurrency)
        self.in_flight = 0
        self.waiting = 0
        self.served = 0
        self.rejected_busy = 0
        self.mean_call_s = 0.0
        self.started = time.time()

    # -- gate -----------------------------------------------------------------------------------
    def retry_after(self) -> int:
        """Seconds a refused client should wait: about one typical model call (at least 1)."""
        return max(1, math.ceil(self.mean_call_s or 1.0))

    async def run_model(self, fn: Any, *args: Any) -> Any:
        """Run a blocking model call in a worker thread once the concurrency gate lets us in (503 if not)."""
        self.waiting += 1
        try:
            if self.semaphore.locked():
                await asyncio.wait_for(self.semaphore.acquire(), timeout=self.acquire_timeout)
            else:  # free slot: take it now (wait_for with timeout 0 would cancel even an instant acquire)
                await self.semaphore.acquire()
        except (asyncio.TimeoutError, TimeoutError):
            self.rejected_busy += 1
            raise ServiceError(
                503,
                f"service busy: {self.in_flight} model call(s) running, none freed within "
                f"{self.acquire_timeout:g} s; retry later",
                {"Retry-After": str(self.retry_after())},
            ) from None
        finally:
            self.waiting -= 1
        self.in_flight += 1
        t0 = time.perf_counter()
        try:
            return await run_in_threadpool(fn, *args)
        except (ServiceError, BadImageError, RequestValidationError):
            raise
        except Exception as exc:  # the model failed: answer 500 naming the cause (clients may retry)
            log.exception("model call failed")
            raise ServiceError(500, f"model call failed: {type(exc).__name__}: {exc}") from exc
        finally:
            dt = time.perf_counter() - t0
            self.mean_call_s = dt if self.served == 0 else 0.8 * self.mean_call_s + 0.2 * dt
            self.served += 1
            self.in_flight -= 1
            self.semaphore.release()

    # -- listener -------------------------------------------------------------------------------
    def check_items(self, items: Sequence[ScoreItem], batched: bool) -> None:
        if len(items) > self.max_batch:
            raise _too_many(("batch",), self.max_batch, len(items), "items")
        for i, item in enumerate(items):
            if item.num_candidates > self.max_candidates:
                field = "candidate_paths" if item.candidate_paths else "candidate_images_b64"
                loc = ("batch", i, field) if batched else (field,)
                raise _too_many(loc, self.max_candidates, item.num_candidates, "candidates per item")

    def to_refs(self, item: ScoreItem, where: str) -> list[ImageRef]:
        refs = []
        for j in range(item.num_candidates):
            if item.candidate_paths:
                path = self.store.resolve(item.candidate_paths[j], f"{where}candidate_paths[{j}]")
            else:
                path = self.store.inline(item.candidate_images_b64[j], f"{where}candidate_images_b64[{j}]")
            cid = item.candidate_ids[j] if item.candidate_ids else f"candidate_{j}"
            attrs = item.candidate_attributes[j] if item.candidate_attributes else {}
            refs.append(ImageRef(concept_id=cid, path=str(path), role="query", attributes=dict(attrs)))
        return refs

    def score_sync(
        self, descriptions: list[str], cands: list[list[ImageRef]], topks: list[int]
    ) -> list[ScoreResult]:
        """Blocking: the listener over the items in inner batches of ``batch_size``."""
        assert self.listener is not None
        out: list[ScoreResult] = []
        bs = max(1, self.batch_size)
        for s in range(0, len(descriptions), bs):
            choices = self.listener.choose_batch(descriptions[s : s + bs], cands[s : s + bs])
            if len(choices) != len(descriptions[s : s + bs]):
                raise RuntimeError(
                    f"listener returned {len(choices)} choices for {len(descriptions[s : s + bs])} items"
                )
            for (idx, scores), topk, c in zip(choices, topks[s : s + bs], cands[s : s + bs]):
                scores = [float(x) for x in scores]
                if len(scores) != len(c) or not 0 <= int(idx) < len(c):
                    raise RuntimeError(
                        f"listener answered index {idx} with {len(scores)} scores for {len(c)} candidates"
                    )
                order = sorted(range(len(scores)), key=lambda k: (-scores[k], k))
                out.append(
                    ScoreResult(
                        predicted_index=int(idx),
                        scores=scores,
                        yes_probabilities=_probabilities(scores),
                        topk_indices=order[:topk],
                    )
                )
        return out

    async def score(self, items: list[ScoreItem], batched: bool) -> list[ScoreResult]:
        if self.listener is None:
            raise ServiceError(404, "this service hosts no listener; start lewis-serve with --listener NAME")
        self.check_items(items, batched)
        if not items:
            return []
        # Path checks and base64 decoding touch the disk: off the event loop, before taking a model slot.
        cands = await run_in_threadpool(
            lambda: [self.to_refs(it, f"batch[{i}]." if batched else "") for i, it in enumerate(items)]
        )
        return await self.run_model(
            self.score_sync, [it.text for it in items], cands, [it.topk for it in items]
        )

    # -- speaker --------------------------------------------------------------------------------
    def describe_sync(self, paths: list[Path]) -> list[DescribeResult]:
        assert self.speaker is not None
        images = [load_pil(p) for p in paths]
        texts: list[str] = []
        bs = max(1, self.batch_size)
        for s in range(0, len(images), bs):
            got = self.speaker.describe_batch(images[s : s + bs])
            if len(got) != len(images[s : s + bs]):
                raise RuntimeError(f"speaker returned {len(got)} texts for {len(images[s : s + bs])} images")
            texts.extend(str(t) for t in got)
        return [DescribeResult(text=t, **parse_speaker_output(t)) for t in texts]

    async def describe(self, items: list[DescribeItem], batched: bool) -> list[DescribeResult]:
        if self.speaker is None:
            raise ServiceError(404, "this service hosts no speaker; start lewis-serve with --speaker NAME")
        if len(items) > self.max_batch:
            raise _too_many(("batch",), self.max_batch, len(items), "items")
        if not items:
            return []
        paths = await run_in_threadpool(self.image_paths, items, batched)
        return await self.run_model(self.describe_sync, paths)

    def image_paths(self, items: Sequence[DescribeItem], batched: bool) -> list[Path]:
        """Checked paths (or stored inline images) for the speaker's items."""
        paths = []
        for i, it in enumerate(items):
            where = f"batch[{i}]." if batched else ""
            paths.append(
                self.store.resolve(it.image_path, f"{where}image_path")
                if it.image_path is not None
                else self.store.inline(str(it.image_b64), f"{where}image_b64")
            )
        return paths


def create_app(
    listener: Listener | str | None = None,
    speaker: Any = None,
    allowed_roots: Sequence[str | Path] | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    token: str | None = None,
    concurrency: int | None = None,
    acquire_timeout: float | None = None,
    batch_size: int | None = None,
    listener_kwargs: dict[str, Any] | None = None,
) -> FastAPI:
    """Build the FastAPI app hosting a listener and/or a speaker (see the module docstring for the API).

    ``listener``: a Listener object or a ``make_listener`` name. ``speaker``: a ``describe_batch`` object,
    a speaker-role Agent or an agent registry name. ``allowed_roots``: folders candidate paths must lie in
    (default: the lewis-bench cache dir; ``[]`` allows inline images only). ``concurrency`` /
    ``acquire_timeout`` / ``batch_size`` default to ``$INFERENCE_CONCURRENCY`` (1),
    ``$INFERENCE_ACQUIRE_TIMEOUT`` (300 s) and ``$LISTENER_BATCH_SIZE`` (8).
    """
    if isinstance(listener, str):
        listener = make_listener(listener, **(listener_kwargs or {}))
    elif listener is not None and not (hasattr(listener, "choose") and hasattr(listener, "choose_batch")):
        raise TypeError(f"listener must have choose/choose_batch, got {type(listener).__name__}")
    spk = as_speaker(speaker)
    if listener is None and spk is None:
        raise ValueError("create_app needs a listener, a speaker, or both")
    concurrency = _env_number("INFERENCE_CONCURRENCY", 1, int) if concurrency is None else int(concurrency)
    acquire_timeout = (
        _env_number("INFERENCE_ACQUIRE_TIMEOUT", 300.0) if acquire_timeout is None else float(acquire_timeout)
    )
    batch_size = _env_number("LISTENER_BATCH_SIZE", 8, int) if batch_size is None else int(batch_size)
    for name, val in (
        ("concurrency", concurrency),
        ("max_batch", max_batch),
        ("max_candidates", max_candidates),
        ("max_request_bytes", max_request_bytes),
        ("batch_size", batch_size),
    ):
        if val < 1:
            raise ValueError(f"{name} must be >= 1, got {val}")
    if acquire_timeout < 0:
        raise ValueError(f"acquire_timeout must be >= 0, got {acquire_timeout}")
    roots = default_allowed_roots() if allowed_roots is None else list(allowed_roots)
    store = ImageStore(roots)
    svc = _Service(listener, spk, store, max_batch, max_candidates, concurrency, acquire_timeout, batch_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.semaphore = asyncio.Semaphore(svc.concurrency)  # bound to the serving loop
        try:
            yield
        finally:
            store.close()

    from lewis_env import __version__

    app = FastAPI(title="lewis-bench listener/speaker service", version=__version__, lifespan=lifespan)
    app.state.service = svc
    app.add_middleware(RequestGuardMiddleware, max_request_bytes=max_request_bytes, token=token)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc.errors())

    @app.exception_handler(ServiceError)
    async def _on_service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(BadImageError)
    async def _on_bad_image(request: Request, exc: BadImageError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _on_model_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("model call failed")
        return JSONResponse({"detail": f"model call failed: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness plus what is hosted here (never waits for the model)."""
        roles = [r for r, obj in (("listener", svc.listener), ("speaker", svc.speaker)) if obj is not None]
        return {
            "status": "ok",
            "version": __version__,
            "roles": roles,
            "listener": None
            if svc.listener is None
            else {
                "name": str(getattr(svc.listener, "name", type(svc.listener).__name__)),
                "model": _model_name(svc.listener),
            },
            "speaker": None
            if svc.speaker is None
            else {
                "name": str(getattr(svc.speaker, "name", type(svc.speaker).__name__)),
                "model": _model_name(getattr(svc.speaker, "agent", svc.speaker)),
            },
            "concurrency": svc.concurrency,
            "in_flight": svc.in_flight,
            "waiting": svc.waiting,
            "served": svc.served,
            "rejected_busy": svc.rejected_busy,
            "limits": {
                "max_request_bytes": max_request_bytes,
                "max_batch": svc.max_batch,
                "max_candidates": svc.max_candidates,
                "batch_size": svc.batch_size,
                "acquire_timeout": svc.acquire_timeout,
            },
            "uptime_s": round(time.time() - svc.started, 3),
        }

    @app.post("/score", response_model=ScoreResponse)
    async def score(item: ScoreItem) -> ScoreResponse:
        """Score one (description, candidates) item."""
        t0 = time.perf_counter()
        (res,) = await svc.score([item], batched=False)
        return ScoreResponse(**res.model_dump(), took=time.perf_counter() - t0)

    @app.post("/batch_score", response_model=BatchScoreResponse)
    async def batch_score(req: BatchScoreRequest) -> BatchScoreResponse:
        """Score many items in one request (one gate acquisition, inner batches of ``batch_size``)."""
        t0 = time.perf_counter()
        results = await svc.score(req.batch, batched=True)
        return BatchScoreResponse(results=results, took=time.perf_counter() - t0)

    @app.post("/describe", response_model=DescribeResponse)
    async def describe(item: DescribeItem) -> DescribeResponse:
        """Describe one image with the hosted speaker."""
        t0 = time.perf_counter()
        (res,) = await svc.describe([item], batched=False)
        return DescribeResponse(**res.model_dump(), took=time.perf_counter() - t0)

    @app.post("/batch_describe", response_model=BatchDescribeResponse)
    async def batch_describe(req: BatchDescribeRequest) -> BatchDescribeResponse:
        """Describe many images in one request."""
        t0 = time.perf_counter()
        results = await svc.describe(req.batch, batched=True)
        return BatchDescribeResponse(results=results, took=time.perf_counter() - t0)

    return app


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------
def _parse_kv(pairs: Sequence[str], flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict, values parsed as JSON when they parse (numbers, booleans), else strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{flag} expects KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    """The ``lewis-serve`` argument parser (defaults from the environment like the reference service)."""
    p = argparse.ArgumentParser(
        prog="lewis-serve", description="Serve a lewis-bench listener and/or speaker over HTTP."
    )
    p.add_argument(
        "--listener", default=None, help="listener: a registry name (rule, qwen, http) or module:factory"
    )
    p.add_argument(
        "--model", default=None, help="model path or hub id, passed to the listener/speaker as model="
    )
    p.add_argument(
        "--listener-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra listener keyword argument (repeatable)",
    )
    p.add_argument(
        "--speaker", default=None, help="agent registry name of a speaker-role agent (e.g. qwen-vl)"
    )
    p.add_argument(
        "--speaker-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra speaker agent keyword argument (repeatable)",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help="bind address (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument(
        "--allowed-root",
        action="append",
        default=None,
        metavar="DIR",
        help="folder candidate image paths must lie in (repeatable; default: the lewis-bench cache dir)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("LEWIS_SERVE_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' (default $LEWIS_SERVE_TOKEN)",
    )
    p.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH)
    p.add_argument("--max-candidates", type=int, default=DEFAULT_MAX_CANDIDATES)
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="concurrent model calls (default $INFERENCE_CONCURRENCY or 1)",
    )
    p.add_argument(
        "--acquire-timeout",
        type=float,
        default=None,
        help="seconds a request waits for a model slot before 503 ($INFERENCE_ACQUIRE_TIMEOUT or 300)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="items per model call (default $LISTENER_BATCH_SIZE or 8)",
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """``lewis-serve``: build the app from CLI flags and run it under uvicorn."""
    import uvicorn

    args = build_parser().parse_args(argv)
    if args.listener is None and args.speaker is None:
        raise SystemExit("lewis-serve: give --listener NAME and/or --speaker NAME")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    listener = None
    if args.listener is not None:
        kw = _parse_kv(args.listener_arg, "--listener-arg")
        if args.model is not None:
            kw.setdefault("model", args.model)
        try:
            listener = make_listener(args.listener, **kw)  # a registry name or module:factory
        except KeyError as exc:
            raise SystemExit(f"lewis-serve: {exc.args[0]}") from None
    speaker = None
    if args.speaker is not None:
        from agents.registry import make

        kw = _parse_kv(args.speaker_arg, "--speaker-arg")
        if args.model is not None:
            kw.setdefault("model", args.model)
        try:
            speaker = make(args.speaker, **kw)
        except KeyError as exc:
            raise SystemExit(f"lewis-serve: {exc.args[0]}") from None
    if not _is_loopback(args.host) and not args.token:
        log.warning(
            "serving on %s without --token: anyone who can reach this port can use the model", args.host
        )
    app = create_app(
        listener=listener,
        speaker=speaker,
        allowed_roots=args.allowed_root,
        max_request_bytes=args.max_request_bytes,
        max_batch=args.max_batch,
        max_candidates=args.max_candidates,
        token=args.token,
        concurrency=args.concurrency,
        acquire_timeout=args.acquire_timeout,
        batch_size=args.batch_size,
    )
    log.info(
        "allowed roots: %s",
        ", ".join(str(r) for r in app.state.service.store.roots) or "(inline images only)",
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
