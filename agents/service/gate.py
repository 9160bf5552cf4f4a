"""The concurrency gate: at most ``concurrency`` model calls at once, a bounded queue, 503 + Retry-After."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from agents.service.errors import ServiceError
from lewis_env.data.images import BadImageError
from lewis_env.listeners.rule import NoAttributesError

log = logging.getLogger(__name__)


class Gate:
    """Runs blocking model calls in a worker thread once a slot is free; refuses with 503 when it is not.

    A request waits at most ``acquire_timeout`` seconds for a slot, and at most ``max_queue`` requests wait
    at once (more are refused at once): both answer 503 with ``Retry-After`` of about one model call.
    """

    def __init__(self, concurrency: int, acquire_timeout: float, max_queue: int) -> None:
        self.concurrency, self.acquire_timeout = int(concurrency), float(acquire_timeout)
        self.max_queue = int(max_queue)
        self.semaphore = asyncio.Semaphore(self.concurrency)
        self.in_flight = 0
        self.waiting = 0
        self.served = 0
        self.rejected_busy = 0
        self.mean_call_s = 0.0

    def bind_loop(self) -> None:
        """A fresh semaphore for the serving event loop (call from the app's lifespan)."""
        self.semaphore = asyncio.Semaphore(self.concurrency)

    def retry_after(self) -> int:
        """Seconds a refused client should wait: about one typical model call (at least 1)."""
        return max(1, math.ceil(self.mean_call_s or 1.0))

    def _busy(self, why: str) -> ServiceError:
        self.rejected_busy += 1
        return ServiceError(503, f"service busy: {why}; retry later", {"Retry-After": str(self.retry_after())})

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker thread inside the gate; model failures become 500 naming the cause."""
        if self.semaphore.locked() and self.waiting >= self.max_queue:
            raise self._busy(f"{self.in_flight} model call(s) running and {self.waiting} request(s) queued "
                             f"(max_queue={self.max_queue})")
        self.waiting += 1
        try:
            if self.semaphore.locked():
                await asyncio.wait_for(self.semaphore.acquire(), timeout=self.acquire_timeout)
            else:  # free slot: take it now (wait_for with timeout 0 would cancel even an instant acquire)
                await self.semaphore.acquire()
        except (asyncio.TimeoutError, TimeoutError):
            raise self._busy(f"{self.in_flight} model call(s) running, none freed within "
                             f"{self.acquire_timeout:g} s") from None
        finally:
            self.waiting -= 1
        self.in_flight += 1
        t0 = time.perf_counter()
        try:
            return await run_in_threadpool(fn, *args)
        except (ServiceError, BadImageError, RequestValidationError):
            raise
        except NoAttributesError as exc:  # the client sent candidates this listener cannot judge: a 4xx
            raise ServiceError(422, str(exc)) from exc
        except Exception as exc:  # the model failed: answer 500 naming the cause (clients may retry)
            log.exception("model call failed")
            raise ServiceError(500, f"model call failed: {type(exc).__name__}: {exc}") from exc
        finally:
            dt = time.perf_counter() - t0
            self.mean_call_s = dt if self.served == 0 else 0.8 * self.mean_call_s + 0.2 * dt
            self.served += 1
            self.in_flight -= 1
            self.semaphore.release()

    def figures(self) -> dict[str, Any]:
        """Load figures for /health."""
        return {"concurrency": self.concurrency, "in_flight": self.in_flight, "waiting": self.waiting,
                "served": self.served, "rejected_busy": self.rejected_busy}
