"""Hostile input and faults against the service and its client (issue #10 items 1, 7 and 10)."""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from agents.service import create_app
from lewis_env.listeners.http import DEFAULT_RETRY_BUDGET_S, HTTPListener, ListenerServiceError
from tests.agents.serve_helpers import (
    LiveServer,
    PixelListener,
    SlowListener,
    WordListener,
    color_refs,
    write_color_images,
)

ORDER = ["red", "green", "blue", "yellow"]


def _png_b64(size: tuple[int, int], mode: str = "RGB", color: int | tuple = 0) -> str:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def bomb_b64() -> str:
    """A 10000x10000 PNG of 12 KB: 100 megapixels (300 MB as RGB) once decoded."""
    return _png_b64((10000, 10000), mode="1")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_color_images(tmp_path_factory.mktemp("limits") / "imgs")


def _score(url: str, **item) -> httpx.Response:
    return httpx.post(url + "/score", json={"question": "red", **item}, timeout=30)


# -- item 1: pixel caps, decoding inside the gate, bounded disk --------------------------------------
def test_image_over_the_pixel_cap_is_422_naming_the_limit_and_never_reaches_the_model(images, bomb_b64):
    listener = WordListener()
    with LiveServer(create_app(listener=listener, allowed_roots=[], max_image_pixels=1_000_000)) as srv:
        r = _score(srv.url, candidate_images_b64=[_png_b64((16, 16)), bomb_b64])
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert "candidate_images_b64[1]" in detail and "10000x10000" in detail and "max_image_pixels" in detail
        assert listener.calls == []


def test_request_over_the_total_pixel_cap_is_413_naming_the_limit(images):
    listener = WordListener()
    app = create_app(listener=listener, allowed_roots=[], max_image_pixels=10_000, max_request_pixels=25_000)
    with LiveServer(app) as srv:
        three = [_png_b64((100, 100), color=(i, 0, 0)) for i in range(3)]  # 30000 px in all
        r = _score(srv.url, candidate_images_b64=three)
        assert r.status_code == 413 and "max_request_pixels" in r.json()["detail"] and "25000" in r.json()["detail"]
        assert _score(srv.url, candidate_images_b64=three[:2]).status_code == 200


def test_a_decompression_bomb_past_pils_own_limit_is_a_named_422(bomb_b64):
    big = _png_b64((15000, 15000), mode="1")  # 225 MP: PIL raises DecompressionBombError on open
    with LiveServer(create_app(listener=WordListener(), allowed_roots=[])) as srv:
        r = _score(srv.url, candidate_images_b64=[big])
        assert r.status_code == 422 and "max_image_pixels" in r.json()["detail"], r.text


def test_images_are_decoded_only_inside_the_gate(images, bomb_b64):
    """While the only model slot is busy, an oversized inline image waits (then 503), it is not decoded."""
    slow = SlowListener(delay=1.5)
    app = create_app(listener=slow, allowed_roots=[images["red"].parent], concurrency=1, acquire_timeout=0.2,
                     max_image_pixels=1_000_000)
    with LiveServer(app) as srv:
        t = threading.Thread(target=_score, args=(srv.url,), kwargs={"candidate_paths": [str(images["red"])]})
        t.start()
        while httpx.get(srv.url + "/health").json()["in_flight"] == 0:
            time.sleep(0.02)
        r = _score(srv.url, candidate_images_b64=[bomb_b64])
        assert r.status_code == 503 and "Retry-After" in r.headers  # refused by the gate, before any decoding
        t.join()
        assert _score(srv.url, candidate_images_b64=[bomb_b64]).status_code == 422  # its turn: checked


def test_inline_images_stay_within_the_disk_budget(images):
    import numpy as np

    app = create_app(listener=WordListener(), allowed_roots=[], max_inline_bytes=8_000)
    store = app.state.service.store
    rng = np.random.default_rng(0)
    with LiveServer(app) as srv:
        for _ in range(12):  # ~3 KB noise PNGs, all different
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, format="PNG")
            b64 = base64.b64encode(buf.getvalue()).decode()
            assert _score(srv.url, candidate_images_b64=[b64]).status_code == 200
        on_disk = sum(p.stat().st_size for p in store.inline_dir.iterdir())
        assert on_disk <= 8_000 and store.inline_bytes == on_disk
        assert len(list(store.inline_dir.iterdir())) < 12  # older ones were evicted


# -- item 7: client mistakes are 4xx, never retried; errors never show server paths ----------------
@pytest.mark.parametrize("path, status, words", [
    ("imgs/a\x00.png", 422, "NUL byte"),
    ("x" * 100_000, 422, "100000 characters"),
    ("a" * 300 + "/b.png", 422, "cannot be used"),  # a path component longer than NAME_MAX
])
def test_malformed_paths_are_4xx_naming_the_field(images, path, status, words):
    with LiveServer(create_app(listener=WordListener(), allowed_roots=[images["red"].parent.parent])) as srv:
        r = _score(srv.url, candidate_paths=[str(images["red"]), path])
        assert r.status_code == status and words in r.json()["detail"], r.text
        assert "candidate_paths[1]" in r.json()["detail"]


def test_client_mistakes_are_not_retried_and_server_errors_name_no_absolute_path(images, bomb_b64, caplog,
                                                                                 tmp_path):
    root = images["red"].parent
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, format="PNG")
    (root / "corrupt.png").write_bytes(buf.getvalue()[:60])  # a valid header, then truncated
    listener = PixelListener()  # decodes the candidates: the decoder's error names the server's path
    with LiveServer(create_app(listener=listener, allowed_roots=[root], max_image_pixels=1_000_000)) as srv:
        client = HTTPListener(url=srv.url, backoff=0.01, retry_budget=30)
        from lewis_env.data.types import ImageRef

        bad = [ImageRef("x", str(root / "corrupt.png")), *color_refs(images, ORDER[:1])]
        with caplog.at_level(logging.WARNING, logger="lewis_env.listeners.http"):
            t0 = time.monotonic()
            with pytest.raises(ListenerServiceError, match="HTTP 422") as err:
                client.choose("red", bad)
            assert time.monotonic() - t0 < 5
        assert not [r for r in caplog.records if "retrying" in r.getMessage()]  # sent exactly once
        assert err.value.status == 422 and str(root) not in str(err.value)
        assert "<root>/corrupt.png" in str(err.value)  # relative to the allowed root
        inline = HTTPListener(url=srv.url, inline_images=True, backoff=0.01, retry_budget=30)
        bomb_file = tmp_path / "bomb.png"
        bomb_file.write_bytes(base64.b64decode(bomb_b64))
        with pytest.raises(ListenerServiceError, match="HTTP 422.*max_image_pixels"):
            inline.choose("red", [ImageRef("b", str(bomb_file))])
        assert len(listener.calls) == 1  # only the truncated file reached the model, once


def test_health_without_the_token_shows_liveness_only(images):
    with LiveServer(create_app(listener=WordListener(), allowed_roots=[images["red"].parent], token="s3")) as srv:
        open_ = httpx.get(srv.url + "/health").json()
        assert set(open_) == {"status", "version", "roles"}
        full = httpx.get(srv.url + "/health", headers={"Authorization": "Bearer s3"}).json()
        assert full["listener"]["name"] == "word-test" and "limits" in full and "in_flight" in full
        assert httpx.get(srv.url + "/health", headers={"Authorization": "Bearer nope"}).json() == open_


# -- item 10: a retry budget that outlasts a restart; finished chunks are kept ------------------
def test_default_retry_budget_is_a_documented_setting(monkeypatch):
    assert HTTPListener().retry_budget == DEFAULT_RETRY_BUDGET_S >= 120  # a 2B listener restarts in well under
    monkeypatch.setenv("LISTENER_RETRY_BUDGET", "42")
    assert HTTPListener().retry_budget == 42.0 and HTTPListener(retry_budget=5).retry_budget == 5.0
    with pytest.raises(ValueError, match="retry_budget"):
        HTTPListener(retry_budget=-1)


def test_default_client_outlasts_a_service_down_for_seconds(images):
    """No max_retries: the budget alone decides, and a service back after 3 s is reached."""
    srv = LiveServer(create_app(listener=WordListener(), allowed_roots=[images["red"].parent])).start()
    client = HTTPListener(url=srv.url, backoff=0.2)
    assert client.choose("red", color_refs(images, ORDER))[0] == 0
    srv.stop()
    restarter = threading.Timer(3.0, srv.start)
    restarter.start()
    try:
        assert client.choose("blue", color_refs(images, ORDER))[0] == 2
    finally:
        restarter.join()
        srv.stop()


def test_choose_batch_keeps_finished_chunks_when_it_gives_up(images):
    listener = WordListener()
    srv = LiveServer(create_app(listener=listener, allowed_roots=[images["red"].parent])).start()
    client = HTTPListener(url=srv.url, chunk_size=2, backoff=0.05, retry_budget=0.3)
    descs = ["red", "green", "blue", "yellow", "red", "blue"]
    cands = [color_refs(images, ORDER)] * len(descs)

    real = client._request
    sent: list[int] = []
    died = []

    def request(method, path, payload=None):  # the service dies after answering the first two chunks
        sent.append(len(payload["batch"]) if payload else 0)
        if len(sent) == 3 and not died:
            died.append(True)
            srv.stop()
        return real(method, path, payload)

    client._request = request
    with pytest.raises(ListenerServiceError, match="4 of 6 items were answered and are kept") as err:
        client.choose_batch(descs, cands)
    assert [p[0] if p else None for p in err.value.partial] == [0, 1, 2, 3, None, None]
    srv.start()
    try:
        sent.clear()
        answers = client.choose_batch(descs, cands)
        assert [a[0] for a in answers] == [0, 1, 2, 3, 0, 2]
        assert sent == [2]  # only the chunk that was missing went out again
        sent.clear()
        client.choose_batch(descs, cands)
        assert sent == [2, 2, 2]  # kept answers are used once, not cached forever
    finally:
        srv.stop()
