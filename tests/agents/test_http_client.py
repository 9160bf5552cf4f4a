"""The HTTP listener client against the real service on loopback: chunking, retries, restarts, giving up."""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import pytest

from agents.service import create_app
from lewis_env.data.types import ImageRef
from lewis_env.listeners import make_listener
from lewis_env.listeners.http import HTTPListener, ListenerServiceError
from tests.agents.serve_helpers import (
    FlakyListener,
    LiveServer,
    PixelListener,
    SlowListener,
    WordListener,
    color_refs,
    free_port,
    write_color_images,
)

ORDER = ["red", "green", "blue", "yellow"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("client_root")


@pytest.fixture(scope="module")
def images(root: Path) -> dict[str, Path]:
    return write_color_images(root / "imgs")


@pytest.fixture(scope="module")
def server(root: Path):
    listener = WordListener()
    with LiveServer(create_app(listener=listener, allowed_roots=[root], batch_size=64)) as srv:
        srv.listener = listener
        yield srv


def test_registered_as_http_and_env_defaults(monkeypatch):
    monkeypatch.setenv("LISTENER_URL", "http://10.1.2.3:9100/batch_score")  # the reference's form
    monkeypatch.setenv("LISTENER_TIMEOUT", "7.5")
    monkeypatch.setenv("LISTENER_CHUNK_SIZE", "4")
    monkeypatch.setenv("LISTENER_MAX_RETRIES", "5")
    monkeypatch.setenv("LISTENER_BACKOFF_FACTOR", "0.25")
    client = make_listener("http")
    assert isinstance(client, HTTPListener)
    assert (client.url, client.timeout, client.chunk_size, client.max_retries, client.backoff) == (
        "http://10.1.2.3:9100",
        7.5,
        4,
        5,
        0.25,
    )
    assert HTTPListener(url="http://h:1/", chunk_size=2).url == "http://h:1"  # explicit args win
    monkeypatch.setenv("LISTENER_CHUNK_SIZE", "four")
    with pytest.raises(ValueError, match="LISTENER_CHUNK_SIZE"):
        HTTPListener()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"url": "ftp://x"}, "http://"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"backoff": -1}, "backoff"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HTTPListener(**kwargs)


def test_choose_and_choose_batch_in_chunks(server, images):
    client = HTTPListener(url=server.url, chunk_size=2, max_retries=0)
    assert client.health()["roles"] == ["listener"]
    idx, scores = client.choose("a green mug", color_refs(images, ORDER))
    assert idx == 1 and scores == [1.0, 2.0, 1.0, 1.0]
    server.listener.calls.clear()
    targets = ["yellow", "red", "blue", "green", "red"]
    choices = client.choose_batch([f"{t} mug" for t in targets], [color_refs(images, ORDER)] * 5)
    assert [ORDER[i] for i, _ in choices] == targets
    assert [len(c) for c in server.listener.calls] == [2, 2, 1]  # one request per chunk of 2
    assert server.listener.calls[0][0][0] == {"color": "red", "category": "mug"}  # attributes travel
    assert client.choose_batch([], []) == []


def test_attributes_can_be_withheld(server, images):
    client = HTTPListener(url=server.url, send_attributes=False, max_retries=0)
    server.listener.calls.clear()
    idx, scores = client.choose("blue", color_refs(images, ORDER))
    assert scores == [0.0] * 4 and idx == 0  # nothing to match without ground truth
    assert server.listener.calls[0][0] == [{}] * 4


def test_inline_images_reach_a_service_without_file_access(images):
    with LiveServer(create_app(listener=PixelListener(), allowed_roots=[])) as srv:
        with pytest.raises(ListenerServiceError, match="403") as err:
            HTTPListener(url=srv.url, max_retries=3, backoff=5).choose("red", color_refs(images, ORDER))
        assert err.value.status == 403 and str(images["red"]) in str(
            err.value
        )  # 4xx: no retries, no 15 s wait
        client = HTTPListener(url=srv.url, inline_images=True, max_retries=0)
        assert client.choose("blue", color_refs(images, ORDER))[0] == 2


def test_bad_batch_arguments(server, images):
    client = HTTPListener(url=server.url, max_retries=0)
    with pytest.raises(ValueError, match="2 descriptions but 1"):
        client.choose_batch(["a", "b"], [color_refs(images, ORDER)])
    with pytest.raises(ValueError, match="candidate list 0 is empty"):
        client.choose_batch(["a"], [[]])
    with pytest.raises(TypeError, match="single str"):
        client.choose_batch("a", [color_refs(images, ORDER)])


def test_service_validation_error_surfaces_with_the_field(images):
    with LiveServer(
        create_app(listener=WordListener(), allowed_roots=[images["red"].parent], max_candidates=2)
    ) as srv:
        with pytest.raises(ListenerServiceError, match=r"HTTP 422.*batch\[0\]\.candidate_paths"):
            HTTPListener(url=srv.url, max_retries=2).choose("red", color_refs(images, ORDER))


def test_token_is_sent(images):
    with LiveServer(
        create_app(listener=WordListener(), allowed_roots=[images["red"].parent], token="abc")
    ) as srv:
        with pytest.raises(ListenerServiceError, match="401"):
            HTTPListener(url=srv.url, max_retries=0).choose("red", color_refs(images, ORDER))
        assert (
            HTTPListener(url=srv.url, token="abc", max_retries=0).choose("red", color_refs(images, ORDER))[0]
            == 0
        )


def test_retries_a_crashing_listener_then_succeeds(images):
    flaky = FlakyListener(failures=2)
    with LiveServer(create_app(listener=flaky, allowed_roots=[images["red"].parent])) as srv:
        client = HTTPListener(url=srv.url, max_retries=3, backoff=0.01)
        assert client.choose("yellow", color_refs(images, ORDER))[0] == 3
        assert flaky.attempts == 3


def test_retries_503_honouring_retry_after(images):
    slow = SlowListener(delay=1.0)
    app = create_app(listener=slow, allowed_roots=[images["red"].parent], concurrency=1, acquire_timeout=0.05)
    with LiveServer(app) as srv:
        busy_client = HTTPListener(url=srv.url, max_retries=0)
        t = threading.Thread(target=busy_client.choose, args=("red", color_refs(images, ORDER)))
        t.start()
        while busy_client.health()["in_flight"] == 0:
            time.sleep(0.02)
        client = HTTPListener(url=srv.url, max_retries=3, backoff=0.01)  # backoff alone would retry too early
        t0 = time.monotonic()
        assert client.choose("green", color_refs(images, ORDER))[0] == 1
        assert time.monotonic() - t0 >= 0.9  # slept Retry-After (>= 1 s), not 0.01 s
        t.join()
        assert client.health()["rejected_busy"] >= 1
    with LiveServer(app) as srv:  # and with no retries left the 503 is the named cause
        t = threading.Thread(
            target=HTTPListener(url=srv.url, max_retries=0).choose, args=("red", color_refs(images, ORDER))
        )
        t.start()
        while HTTPListener(url=srv.url).health()["in_flight"] == 0:
            time.sleep(0.02)
        with pytest.raises(ListenerServiceError, match="after 1 attempt.*HTTP 503.*busy"):
            HTTPListener(url=srv.url, max_retries=0).choose("red", color_refs(images, ORDER))
        t.join()


def test_read_timeout_names_the_cause(images):
    with LiveServer(
        create_app(listener=SlowListener(delay=1.0), allowed_roots=[images["red"].parent])
    ) as srv:
        client = HTTPListener(url=srv.url, timeout=0.2, max_retries=0)
        with pytest.raises(ListenerServiceError, match="ReadTimeout"):
            client.choose("red", color_refs(images, ORDER))


def test_gives_up_after_n_retries_naming_url_and_cause():
    port = free_port()  # nobody listens here
    client = HTTPListener(url=f"http://127.0.0.1:{port}", max_retries=2, backoff=0.05)
    t0 = time.monotonic()
    with pytest.raises(ListenerServiceError) as err:
        client.choose("red", [ImageRef("a", "/x.png"), ImageRef("b", "/y.png")])
    elapsed = time.monotonic() - t0
    msg = str(err.value)
    assert (
        f"http://127.0.0.1:{port}/batch_score" in msg
        and "after 3 attempt(s)" in msg
        and "ConnectError" in msg
    )
    assert err.value.url == f"http://127.0.0.1:{port}/batch_score"
    assert 0.15 <= elapsed < 5  # backoff 0.05 + 0.10 between the three attempts


def test_survives_a_service_restart(images):
    """Service down, client retrying, service back on the same port: the call succeeds."""
    listener = WordListener()
    app = create_app(listener=listener, allowed_roots=[images["red"].parent])
    srv = LiveServer(app).start()
    client = HTTPListener(url=srv.url, max_retries=6, backoff=0.2)
    assert client.choose("red", color_refs(images, ORDER))[0] == 0  # pooled connection now open
    srv.stop()

    restarter = threading.Timer(1.0, srv.start)
    restarter.start()
    try:
        t0 = time.monotonic()
        assert client.choose("blue", color_refs(images, ORDER))[0] == 2
        assert time.monotonic() - t0 >= 0.9  # it really waited for the restart
    finally:
        restarter.join()
        srv.stop()


def test_picklable_for_subprocess_envs(server, images):
    client = HTTPListener(url=server.url, max_retries=0)
    client.choose("red", color_refs(images, ORDER))
    clone = pickle.loads(pickle.dumps(client))
    assert clone.url == client.url and clone._client is None
    assert clone.choose("green", color_refs(images, ORDER))[0] == 1


def test_remote_answers_equal_local_answers(server, images):
    """Over random episodes the client returns exactly what the same listener returns in-process."""
    import random

    rng = random.Random(0)
    descs, cands = [], []
    for _ in range(23):
        order = rng.sample(ORDER, k=rng.randint(2, 4))
        descs.append(
            " ".join(rng.sample(["red", "green", "blue", "yellow", "mug", "the", "cup"], k=rng.randint(0, 3)))
        )
        cands.append(color_refs(images, order))
    remote = HTTPListener(url=server.url, chunk_size=5, max_retries=0).choose_batch(descs, cands)
    assert remote == WordListener().choose_batch(descs, cands)


def test_rule_listener_on_a_synthetic_world_remote_equals_local():
    """Default allowed roots ($LEWIS_BENCH_CACHE) admit a synthetic world; the rule listener served remotely
    gives exactly the local choices and scores, hash tie-breaks included (ids and file names travel)."""
    from lewis_env.data.synthetic import make_synthetic
    from lewis_env.listeners.rule import RuleListener

    ds = make_synthetic(num_concepts=16, images_per_concept=3, num_reference=1, image_size=32)
    descs, cands = [], []
    for cat, ids in sorted(ds.categories().items()):
        group = [ds.concept(i).query[0] for i in ids]
        for target in ids:
            attrs = ds.concept(target).attributes
            descs += [f"my {cat} is {attrs['color']} and {attrs['pattern']}", ""]  # informative and empty
            cands += [group, group]
    local = RuleListener().choose_batch(descs, cands)
    with LiveServer(create_app(listener="rule", allowed_roots=None)) as srv:
        remote = HTTPListener(url=srv.url, chunk_size=8, max_retries=0).choose_batch(descs, cands)
    assert remote == local and len(remote) == 32
    assert any(max(s) > 0 for _, s in remote)  # attributes reached the remote rule listener
    with LiveServer(create_app(listener="rule", allowed_roots=None)) as srv, pytest.raises(Exception) as exc:
        # without attributes the rule listener has nothing to match: it refuses rather than flip a coin
        HTTPListener(url=srv.url, send_attributes=False, max_retries=0).choose_batch(descs[:1], cands[:1])
    assert "ground-truth attributes" in str(exc.value)
    assert getattr(exc.value, "status", None) == 422  # the client's mistake: a 4xx, not retried as a 500
