"""Bounded load on ``lewis-serve`` over 127.0.0.1: throughput, latency percentiles, status counts, peak RSS.

Starts the service in its own process (so its memory is measured alone), drives ``/batch_score`` with
real photographs (scikit-image's astronaut, coffee, chelsea, rocket, ...) at a fixed concurrency until
``--requests`` are done or ``--duration`` seconds pass, and prints figures next to a reference taken in
the same run: the server's idle RSS, and the RSS one decoded oversized image would cost.

    python benchmarks/serve_load.py --requests 400 --concurrency 16 --duration 60
    python benchmarks/serve_load.py --payload oversized --requests 40 --concurrency 8   # parallel bombs
    python benchmarks/serve_load.py --payload mixed --listener qwen --listener-arg model=tiny
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from typing_extensions import Self

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "cat", "immunohistochemistry", "hubble_deep_field")


def write_photos(folder: Path, size: int) -> list[Path]:
    """Real photographs from scikit-image, resized to ``size`` px on the long side, as JPEGs."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in PHOTOS:
        fn = getattr(data, name, None)
        if fn is None:
            continue
        arr = np.asarray(fn())
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, -1)
        im = Image.fromarray(arr[..., :3].astype(np.uint8))
        im.thumbnail((size, size))
        path = folder / f"{name}.jpg"
        im.save(path, quality=90)
        out.append(path)
    return out


def oversized_png_b64(side: int) -> str:
    """A ``side``x``side`` RGB PNG (compresses to a few hundred KB; ``3*side**2`` bytes once decoded)."""
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(buf, format="PNG", compress_level=9)
    return base64.b64encode(buf.getvalue()).decode()


class RSSWatch:
    """Samples a process's resident memory every ``period`` s; ``peak`` also reads the kernel's VmHWM."""

    def __init__(self, pid: int, period: float = 0.02) -> None:
        self.pid, self.period, self.peak_sampled = pid, period, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _read(self, key: str) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def rss(self) -> int:
        return self._read("VmRSS")

    def hwm(self) -> int:
        return self._read("VmHWM")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_sampled = max(self.peak_sampled, self.rss())
            time.sleep(self.period)

    def __enter__(self) -> Self:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def start_server(args: argparse.Namespace, root: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", args.server_module, "--listener", args.listener, "--port", str(port),
           "--allowed-root", str(root), "--log-level", "warning", "--concurrency", str(args.server_concurrency),
           "--acquire-timeout", str(args.acquire_timeout)]
    if args.server_module == "agents.service":  # (flags the pre-package agents.serve did not have)
        cmd += ["--max-queue", str(args.max_queue)]
    for kv in args.listener_arg:
        cmd += ["--listener-arg", kv]
    env = {**os.environ, "PYTHONPATH": args.server_pythonpath or str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=args.server_pythonpath or None)
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"lewis-serve exited: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("lewis-serve did not come up within 180 s")
        time.sleep(0.1)


def make_payloads(args: argparse.Namespace, photos: list[Path]) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(0)
    attrs = [{"category": "photo", "name": p.stem} for p in photos]

    def item(paths: list[Path] | None = None, inline: list[str] | None = None) -> dict[str, Any]:
        n = len(paths or inline or [])
        it: dict[str, Any] = {"question": "the cat on the left", "candidate_ids": [f"c{i}" for i in range(n)],
                              "candidate_attributes": [attrs[i % len(attrs)] for i in range(n)]}
        if paths:
            it["candidate_paths"] = [str(p) for p in paths]
        else:
            it["candidate_images_b64"] = inline
        return it

    def pick() -> list[Path]:
        return [photos[i] for i in rng.choice(len(photos), size=args.k, replace=len(photos) < args.k)]

    out = {"paths": {"batch": [item(paths=pick()) for _ in range(args.items)]},
           "inline": {"batch": [item(inline=[base64.b64encode(p.read_bytes()).decode() for p in pick()])
                                for _ in range(args.items)]}}
    if args.payload in ("oversized", "mixed"):
        big = oversized_png_b64(args.oversized_side)
        out["oversized"] = {"batch": [item(inline=[big])]}
    return out


async def drive(args: argparse.Namespace, url: str, payloads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    kinds = ["paths", "inline", "oversized"] if args.payload == "mixed" else [args.payload]
    lat: list[float] = []
    status: Counter[str] = Counter()
    sem = asyncio.Semaphore(args.concurrency)
    issued = 0
    t_end = time.monotonic() + args.duration
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(timeout=args.timeout, limits=limits) as client:
        async def one(i: int) -> None:
            kind = kinds[i % len(kinds)]
            t0 = time.perf_counter()
            try:
                r = await client.post(url + "/batch_score", json=payloads[kind])
                status[f"{kind}:{r.status_code}"] += 1
            except httpx.HTTPError as exc:
                status[f"{kind}:{type(exc).__name__}"] += 1
            finally:
                lat.append(time.perf_counter() - t0)
                sem.release()

        tasks = []
        t_start = time.perf_counter()
        while issued < args.requests and time.monotonic() < t_end:
            await sem.acquire()
            tasks.append(asyncio.create_task(one(issued)))
            issued += 1
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t_start
    return {"latencies": lat, "status": status, "wall": wall, "issued": issued}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200, help="stop after this many requests")
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    ap.add_argument("--duration", type=float, default=60.0, help="stop issuing after this many seconds")
    ap.add_argument("--payload", choices=["paths", "inline", "oversized", "mixed"], default="paths")
    ap.add_argument("--items", type=int, default=4, help="items per /batch_score request")
    ap.add_argument("--k", type=int, default=4, help="candidates per item")
    ap.add_argument("--photo-size", type=int, default=512, help="long side of the photos, px")
    ap.add_argument("--oversized-side", type=int, default=10000, help="side of the oversized PNG, px")
    ap.add_argument("--listener", default="rule", help="listener the server hosts (rule, qwen, module:factory)")
    ap.add_argument("--listener-arg", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--server-concurrency", type=int, default=1)
    ap.add_argument("--max-queue", type=int, default=64)
    ap.add_argument("--acquire-timeout", type=float, default=300.0)
    ap.add_argument("--timeout", type=float, default=300.0, help="client timeout per request, s")
    ap.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    ap.add_argument("--server-module", default="agents.service",
                    help="module run as the server (agents.serve for a checkout from before the package split)")
    ap.add_argument("--server-pythonpath", default=None, help="PYTHONPATH of the server (another checkout)")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.duration <= 0:
        raise SystemExit("need --requests >= 1, --concurrency >= 1 and --duration > 0")

    import socket

    port = args.port
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        root = Path(tmp)
        photos = write_photos(root / "photos", args.photo_size)
        payloads = make_payloads(args, photos)
        cpu0 = os.times()
        proc = start_server(args, root, port)
        url = f"http://127.0.0.1:{port}"
        try:
            watch = RSSWatch(proc.pid)
            idle = watch.rss()
            with watch:
                res = asyncio.run(drive(args, url, payloads))
            peak = max(watch.peak_sampled, watch.hwm())
            health = httpx.get(url + "/health").json()
            with open(f"/proc/{proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            server_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        finally:
            proc.terminate()
            proc.wait(20)
        cpu1 = os.times()
    lat = np.asarray(res["latencies"]) * 1000
    n = len(lat)
    print(f"lewis-serve load: listener={args.listener} payload={args.payload} requests={n} "
          f"concurrency={args.concurrency} items={args.items} k={args.k} photo={args.photo_size}px "
          f"server_concurrency={args.server_concurrency}")
    print(f"  wall {res['wall']:.2f} s   throughput {n / res['wall']:.1f} req/s "
          f"({n * args.items / res['wall']:.1f} items/s)")
    print(f"  latency p50 {np.percentile(lat, 50):.1f} ms   p99 {np.percentile(lat, 99):.1f} ms   "
          f"max {lat.max():.1f} ms")
    print("  status " + ", ".join(f"{k}={v}" for k, v in sorted(res["status"].items())))
    one_decode = 3 * args.oversized_side ** 2
    print(f"  server RSS idle {idle / 2**20:.0f} MiB (reference)   peak {peak / 2**20:.0f} MiB   "
          f"peak/idle {peak / max(idle, 1):.2f}x   peak-idle {(peak - idle) / 2**20:.0f} MiB")
    if args.payload in ("oversized", "mixed"):
        print(f"  one decoded {args.oversized_side}x{args.oversized_side} RGB image would be "
              f"{one_decode / 2**20:.0f} MiB: peak-idle is {(peak - idle) / one_decode:.2f} of one decode")
    print(f"  served {health.get('served')} rejected_busy {health.get('rejected_busy')}   "
          f"CPU: server {server_cpu:.1f} s, client {cpu1.user - cpu0.user + cpu1.system - cpu0.system:.1f} s "
          f"(machine shared)")


if __name__ == "__main__":
    main()
