"""A listener that lives in another process: the client of ``agents.serve``'s ``/batch_score`` endpoint.

A speaker env (or the GRPO reward) scores a whole group with one ``choose_batch`` call; this client splits
it into requests of ``chunk_size`` items, retries connection errors, timeouts, 5xx and 503 with exponential
backoff (honouring ``Retry-After``), reconnects on every retry so a restarted service is picked up, and
after the last retry raises ``ListenerServiceError`` naming the URL and the cause.

Defaults come from the reference research code's environment variables: ``LISTENER_URL``,
``LISTENER_TIMEOUT``, ``LISTENER_CHUNK_SIZE``, ``LISTENER_MAX_RETRIES``, ``LISTENER_BACKOFF_FACTOR``
(and ``LISTENER_TOKEN`` for the bearer token).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

from lewis_env.data.types import ImageRef
from lewis_env.listeners.base import Choice

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:9000"
#: Never sleep longer than this between retries, whatever ``Retry-After`` or the backoff says.
MAX_RETRY_SLEEP_S = 30.0
_ENDPOINT_SUFFIXES = ("/batch_score", "/score")


class ListenerServiceError(RuntimeError):
    """The listener service could not answer: unreachable, overloaded after all retries, or it refused."""

    def __init__(self, message: str, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url, self.status = url, status


def _env(name: str, default: Any, cast: type) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a {cast.__name__}") from None


def _base_url(url: str) -> str:
    """The service root from ``http://host:port``, ``.../batch_score`` (reference form) or ``.../score``."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"listener url must start with http:// or https://, got {url!r}")
    for suffix in _ENDPOINT_SUFFIXES:
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def _retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds when the server sent a number (HTTP dates are ignored)."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _error_text(response: httpx.Response) -> str:
    """The server's own error message (``error`` or ``detail``), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        for key in ("error", "detail"):
            if key in body:
                return str(body[key])[:500]
    return str(body)[:300]


class HTTPListener:
    """Listener protocol over HTTP: ``choose_batch`` posts chunks to ``<url>/batch_score`` with retries."""

    name = "http"

    def __init__(
        self,
        url: str | None = None,
        timeout: float | None = None,
        chunk_size: int | None = None,
        max_retries: int | None = None,
        backoff: float | None = None,
        token: str | None = None,
        send_attributes: bool = True,
        inline_images: bool = False,
        trust_env: bool = False,
    ) -> None:
        self.url = _base_url(url if url is not None else _env("LISTENER_URL", DEFAULT_URL, str))
        self.timeout = float(timeout if timeout is not None else _env("LISTENER_TIMEOUT", 60.0, float))
        self.chunk_size = int(chunk_size if chunk_size is not None else _env("LISTENER_CHUNK_SIZE", 16, int))
        self.max_retries = int(
            max_retries if max_retries is not None else _env("LISTENER_MAX_RETRIES", 3, int)
        )
        self.backoff = float(backoff if backoff is not None else _env("LISTENER_BACKOFF_FACTOR", 1.0, float))
        self.token = token if token is not None else (os.environ.get("LISTENER_TOKEN") or None)
        self.send_attributes = bool(send_attributes)
        self.inline_images = bool(inline_images)
        self.trust_env = bool(trust_env)
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff < 0:
            raise ValueError(f"backoff must be >= 0, got {self.backoff}")
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    # -- connection ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _get_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                # trust_env=False by default: HTTP(S)_PROXY must not intercept a listener on our own network.
                self._client = httpx.Client(
                    timeout=self.timeout, headers=self._headers(), trust_env=self.trust_env
                )
            return self._client

    def _drop_client(self) -> None:
        """Forget the pooled connection so the next attempt dials again (a restarted service is picked up)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def close(self) -> None:
        """Close the pooled connection."""
        self._drop_client()

    def __enter__(self) -> HTTPListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:  # picklable for async vector envs: no live client or lock
        state = dict(self.__dict__)
        state["_client"], state["_lock"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HTTPListener(url={self.url!r}, chunk_size={self.chunk_size}, max_retries={self.max_retries})"

    # -- requests ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, payload: Any = None) -> Any:
        """One logical call: retry transport errors, timeouts, 5xx, 429; then raise ListenerServiceError."""
        url = self.url + path
        attempts = self.max_retries + 1
        cause = "no attempt made"
        for attempt in range(attempts):
            wait: float | None = None
            status: int | None = None
            try:
                response = self._get_client().request(method, url, json=payload)
            except httpx.TransportError as exc:  # refused, reset, timed out, protocol error
                self._drop_client()
                cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                status = response.status_code
                if status < 400:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise ListenerServiceError(
                            f"listener service at {url} sent invalid JSON: {exc}", url, status
                        ) from exc
                message = _error_text(response)
                if status not in (429,) and status < 500:  # our request is wrong: retrying cannot help
                    raise ListenerServiceError(
                        f"listener service at {url} refused the request (HTTP {status}): {message}",
                        url,
                        status,
                    )
                cause = f"HTTP {status}: {message}"
                wait = _retry_after_s(response)
                self._drop_client()
            if attempt == attempts - 1:
                break
            sleep = self.backoff * (2**attempt) if wait is None else wait
            sleep = min(sleep, MAX_RETRY_SLEEP_S)
            log.warning(
                "listener service %s attempt %d/%d failed (%s); retrying in %.2f s",
                url,
                attempt + 1,
                attempts,
                cause,
                sleep,
            )
            time.sleep(sleep)
        raise ListenerServiceError(
            f"listener service at {url} failed after {attempts} attempt(s): {cause}", url, status
        )

    def health(self) -> dict[str, Any]:
        """The service's ``/health`` answer (hosted roles, model names, load)."""
        return self._request("GET", "/health")

    def _item(self, description: str, candidates: Sequence[ImageRef]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "question": str(description),
            "topk": 1,
            "candidate_ids": [c.concept_id for c in candidates],
        }
        if self.inline_images:
            encoded = []
            for c in candidates:
                with open(c.path, "rb") as fh:
                    encoded.append(base64.b64encode(fh.read()).decode("ascii"))
            item["candidate_images_b64"] = encoded
        else:
            item["candidate_paths"] = [str(c.path) for c in candidates]
        if self.send_attributes:
            item["candidate_attributes"] = [
                {str(k): str(v) for k, v in c.attributes.items()} for c in candidates
            ]
        return item

    def choose(self, description: str, candidates: Sequence[ImageRef]) -> Choice:
        """Pick the candidate the description refers to (one request)."""
        return self.choose_batch([description], [candidates])[0]

    def choose_batch(
        self, descriptions: Sequence[str], candidates: Sequence[Sequence[ImageRef]]
    ) -> list[Choice]:
        """All pairs in order, sent ``chunk_size`` items per ``/batch_score`` request."""
        if isinstance(descriptions, str):
            raise TypeError("choose_batch takes a list of descriptions, got a single str (use choose)")
        if len(descriptions) != len(candidates):
            raise ValueError(
                f"choose_batch got {len(descriptions)} descriptions but {len(candidates)} candidate lists"
            )
        for i, cands in enumerate(candidates):
            if len(cands) == 0:
                raise ValueError(f"candidate list {i} is empty")
        out: list[Choice] = []
        for s in range(0, len(descriptions), self.chunk_size):
            items = [
                self._item(d, c)
                for d, c in zip(descriptions[s : s + self.chunk_size], candidates[s : s + self.chunk_size])
            ]
            body = self._request("POST", "/batch_score", {"batch": items})
            results = body.get("results") if isinstance(body, dict) else None
            url = self.url + "/batch_score"
            if not isinstance(results, list) or len(results) != len(items):
                got = len(results) if isinstance(results, list) else type(results).__name__
                raise ListenerServiceError(
                    f"listener service at {url} answered {got} results for {len(items)} items", url
                )
            for j, res in enumerate(results):
                n = len(items[j].get("candidate_paths") or items[j].get("candidate_images_b64"))
                scores = res.get("scores", res.get("yes_probabilities"))
                idx = res.get("predicted_index")
                if (
                    not isinstance(idx, int)
                    or not 0 <= idx < n
                    or not isinstance(scores, list)
                    or len(scores) != n
                ):
                    raise ListenerServiceError(
                        f"listener service at {url} sent a malformed result for item {s + j}: "
                        f"{str(res)[:200]}",
                        url,
                    )
                out.append((idx, [float(x) for x in scores]))
        return out
