"""Load test: concurrent full-resolution requests and live previews against one studio server.

``--clients`` (default 8) clients run for ``--seconds`` (default 30): ``--full`` of them (default 4)
send full-resolution requests for a 1 MP photo with the ``cinematic`` preset, alternating between the
Gradio endpoint ``/process`` (gradio_client) and ``POST /api/post-processing`` (JSON, ``data:`` URI);
the others act like a browser dragging a slider: one session each, the photo uploaded and turned into
a preview proxy once, then one live-preview event after another through Gradio's queue, exactly as
the page sends them (``/gradio_api/queue/join`` + the SSE stream). Every client starts its next request
when the previous one has answered (closed loop), so the full-resolution requests are always
``--full`` in flight; requests started before the end are waited for and counted.

Prints per kind: requests, throughput, p50/p95/max latency and errors; and the server's peak RSS
(sampled every 100 ms, with its child processes). Target on a 2-core machine: zero errors and p95
preview latency under 1 s while 4 full-resolution requests run.

``--burst N`` drives fal's queue instead: N jobs submitted at once to ``POST /fal/queue/...`` (every
fifth an ``aura-sr`` 4x upscale of a 64x64 crop, the others ``post-processing`` of the 1 MP photo with
the preset), while the ``--clients - --full`` preview clients go on until the last job is done. Prints
jobs/s, p50/p95 time in the queue (accepted → taken by a worker), in work (taken → done, fetching
and waiting for the CPU slot included) and in the slot (decode → done), read from the server's job
store and job logs, and the previews' latency.
AuraSR runs the tiny test model (tests/tiny_aurasr.py): the figures measure the queue, not the GAN.

Usage: ``python benchmarks/load_test.py [--clients 8] [--full 4] [--seconds 30] [--burst 100]
[--url URL --pid PID --data-dir DIR]``. Without ``--url`` the script starts ``python app.py`` on a free
port (its own ``STUDIO_DATA_DIR``) and stops it afterwards.
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures
import datetime
import io
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psutil
from gradio_client import Client, handle_file
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the tests' tiny AuraSR (tests/studio_server.py)
PRESET = json.loads((ROOT / "presets" / "cinematic.json").read_text())


# --- the server ---------------------------------------------------------------------------------------

def start_server(temp: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from studio_server import write_tiny_aurasr_cache
    write_tiny_aurasr_cache(temp / "hub")
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(temp / "gradio"),
           "STUDIO_DATA_DIR": str(temp / "data"), "HF_HUB_CACHE": str(temp / "hub"),
           "HF_HUB_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=open(temp / "server.log", "wb"))
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited; see {temp / 'server.log'}")
        try:
            if httpx.get(url + "config", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.kill()
    raise SystemExit("the server did not start within 120 s")


class RssSampler(threading.Thread):
    """Peak resident memory of a process and its children, sampled every 100 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()

    def run(self):
        while not self.stop.wait(0.1):
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                return


# --- the clients ------------------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def record(self, kind: str, seconds: float, error: str | None = None):
        with self.lock:
            self.latencies.setdefault(kind, [])
            self.errors.setdefault(kind, [])
            if error is None:
                self.latencies[kind].append(seconds)
            else:
                self.errors[kind].append(error)


class Until:
    """When the clients stop: at ``at`` (monotonic seconds); the burst moves it to "now" when done."""

    def __init__(self, at: float):
        self.at = at

    def over(self) -> bool:
        return time.monotonic() >= self.at


def timed(results: Results, kind: str, call) -> None:
    start = time.perf_counter()
    try:
        call()
    except Exception as exc:  # a load test counts every failure, whatever its type
        results.record(kind, 0.0, f"{type(exc).__name__}: {str(exc)[:160]}")
    else:
        results.record(kind, time.perf_counter() - start)


def full_gradio(url: str, photo: Path, downloads: Path, results: Results, until: Until) -> None:
    client = Client(url, verbose=False, download_files=str(downloads))
    try:
        while True:
            timed(results, "full (gradio /process)",
                  lambda: client.predict(image_url=handle_file(photo), **PRESET, seed=1, api_name="/process"))
            if until.over():
                break
    finally:
        client.close()


def full_json(url: str, photo: Path, results: Results, until: Until) -> None:
    body = {"image_url": "data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode(),
            **PRESET, "seed": 1}

    def call():
        r = httpx.post(url + "api/post-processing", json=body, timeout=300)
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:120]}")

    while True:
        timed(results, "full (JSON /api/post-processing)", call)
        if until.over():
            break


class PageSession:
    """One browser tab: Gradio's own queue protocol (sse_v3), private events included."""

    def __init__(self, url: str, config: dict):
        self.url, self.http = url, httpx.Client(timeout=120)
        self.session = uuid.uuid4().hex[:11]
        self.components = {c["id"]: c for c in config["components"]}
        self.fns = {d["api_name"]: d for d in config["dependencies"]}

    def call(self, api_name: str, values: dict[str, object]) -> list:
        """Run the event ``api_name`` with every input at its initial value except ``values``
        (by elem_id); return its output data."""
        dep = self.fns[api_name]
        data = []
        for cid in dep["inputs"]:
            props = self.components[cid].get("props", {})
            data.append(values.get(props.get("elem_id"), props.get("value")))
        joined = self.http.post(self.url + "gradio_api/queue/join", json={
            "data": data, "fn_index": dep["id"], "session_hash": self.session,
            "trigger_id": None, "event_data": None})
        joined.raise_for_status()
        event_id = joined.json()["event_id"]
        with self.http.stream("GET", self.url + "gradio_api/queue/data",
                              params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                    if not message.get("success"):
                        raise RuntimeError(str(message.get("output", {}).get("error"))[:160])
                    return message["output"]["data"]
        raise RuntimeError("the event stream ended without a result")

    def upload(self, path: Path) -> dict:
        with path.open("rb") as f:
            r = self.http.post(self.url + "gradio_api/upload", files={"files": (path.name, f, "image/png")})
        r.raise_for_status()
        return {"path": r.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def _expect_image(outputs: list) -> None:
    if not (isinstance(outputs[0], dict) and outputs[0].get("path")):
        raise RuntimeError(f"the preview event returned no image: {str(outputs[0])[:80]}")


def previews(url: str, config: dict, photo: Path, results: Results, until: Until, index: int) -> None:
    page = PageSession(url, config)
    source = page.upload(photo)
    page.call("make_proxy", {"source": source})
    settings = {**PRESET}
    tick = 0
    while True:
        tick += 1
        settings["contrast"] = (index * 7 + tick * 3) % 81 - 40  # a slider being dragged
        timed(results, "preview (page, live)", lambda: _expect_image(page.call("render_preview", settings)))
        if until.over():
            break


# --- the queue burst ------------------------------------------------------------------------------

def burst(url: str, photo: Path, count: int) -> list[str]:
    """Submit ``count`` mixed jobs at once (one thread each); return their request ids."""
    big = "data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode()
    buffer = io.BytesIO()
    Image.open(photo).convert("RGB").crop((500, 300, 564, 364)).save(buffer, "PNG")
    small = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

    def submit(n: int) -> str:
        app, body = (("fal-ai/aura-sr", {"image_url": small, "seed": n}) if n % 5 == 4 else
                     ("fal-ai/post-processing", {"image_url": big, **PRESET, "seed": n}))
        response = httpx.post(f"{url}fal/queue/{app}", json=body, timeout=120)
        response.raise_for_status()
        return response.json()["request_id"]

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(submit, range(count)))


def finished_jobs(data_dir: Path, ids: list[str], timeout: float) -> list[dict]:
    """The job store's rows of ``ids`` once all are done (read from the server's SQLite file), each
    with ``slot``: seconds from its first line logged inside the CPU slot ("decode ...") to its last."""
    conn = sqlite3.connect(f"file:{data_dir / 'studio.sqlite3'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    marks = ",".join("?" * len(ids))
    deadline = time.monotonic() + timeout
    try:
        while True:
            rows = conn.execute(f"SELECT * FROM fal_jobs WHERE id IN ({marks}) AND state = 'done'",
                                ids).fetchall()
            if len(rows) == len(ids) or time.monotonic() > deadline:
                return [{**row, "slot": _slot_seconds(conn, row["id"])} for row in rows]
            time.sleep(0.5)
    finally:
        conn.close()


def _slot_seconds(conn: sqlite3.Connection, job_id: str) -> float:
    stamps = [datetime.datetime.fromisoformat(r[0]) for r in conn.execute(
        "SELECT timestamp FROM fal_logs WHERE job_id = ? AND (message LIKE 'decode %' OR n = "
        "(SELECT MAX(n) FROM fal_logs WHERE job_id = ?)) ORDER BY n", (job_id, job_id))]
    return (stamps[-1] - stamps[0]).total_seconds()


def print_burst(rows: list[dict], count: int) -> None:
    span = max(r["finished"] for r in rows) - min(r["created"] for r in rows)
    failed = [r for r in rows if r["status_code"] != 200]
    print(f"queue burst: {count} jobs submitted at once, {len(rows)} done in {span:.1f} s = "
          f"{len(rows) / span:.2f} jobs/s, {len(failed)} not 200 "
          f"{sorted({r['status_code'] for r in failed}) if failed else ''}")
    print(f"{'app':24} {'jobs':>4} {'queue p50':>10} {'queue p95':>10} {'work p50':>9} {'work p95':>9} "
          f"{'slot p50':>9} {'slot p95':>9}")
    for app in sorted({r["app_id"] for r in rows}):
        mine = [r for r in rows if r["app_id"] == app]
        columns = ([r["started"] - r["created"] for r in mine], [r["finished"] - r["started"] for r in mine],
                   [r["slot"] for r in mine])
        print(f"{app:24} {len(mine):4d} " + " ".join(
            f"{statistics.median(c):9.2f}s {percentile(c, 95):8.2f}s" for c in columns))


# --- main ---------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--full", type=int, default=4, help="how many of the clients send full-res requests")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--url", help="an already running server (default: start app.py)")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for its RSS")
    parser.add_argument("--burst", type=int, default=0,
                        help="submit this many mixed jobs at once to fal's queue (previews run meanwhile)")
    parser.add_argument("--data-dir", type=Path, help="with --url and --burst: the server's STUDIO_DATA_DIR")
    args = parser.parse_args()

    temp = Path(tempfile.mkdtemp(prefix="studio-load-"))
    photo = temp / "photo-1mp.png"
    Image.open(ROOT / "examples" / "chelsea.png").convert("RGB").resize((1226, 816), Image.LANCZOS).save(photo)
    server = None
    if args.url:
        url, pid = args.url.rstrip("/") + "/", args.pid
    else:
        server, url = start_server(temp)
        pid = server.pid
    sampler = RssSampler(pid) if pid else None
    try:
        config = httpx.get(url + "config", timeout=30).json()
        # One of each first, untimed: first-call costs (imports, caches) are not what is measured.
        warm = Results()
        for kind in (full_json, full_gradio):
            kind(url, photo, *((temp / "warm",) if kind is full_gradio else ()), warm, Until(0))
        previews(url, config, photo, warm, Until(0), 0)
        if any(warm.errors.values()) or len(sum(warm.latencies.values(), [])) < 3:
            raise SystemExit(f"warm-up failed: {warm.errors}")
        if sampler:
            sampler.start()
        results = Results()
        until = Until(time.monotonic() + (1e9 if args.burst else args.seconds))
        threads = []
        for i in range(args.clients):
            if i < args.full and args.burst:
                continue  # the burst is the full-resolution load
            if i < args.full:
                target = (full_gradio, (url, photo, temp / f"dl{i}", results, until)) if i % 2 == 0 \
                    else (full_json, (url, photo, results, until))
            else:
                target = (previews, (url, config, photo, results, until, i))
            threads.append(threading.Thread(target=target[0], args=target[1], daemon=True))
        started = time.monotonic()
        for t in threads:
            t.start()
        if args.burst:
            ids = burst(url, photo, args.burst)
            rows = finished_jobs(args.data_dir or temp / "data", ids, timeout=1800)
            until.at = time.monotonic()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        if sampler:
            sampler.stop.set()
        if server:
            server.terminate()
            server.wait(30)

    if args.burst:
        print_burst(rows, args.burst)
    full = 0 if args.burst else args.full
    print(f"{args.clients - args.full + full} clients ({full} full-resolution, {args.clients - args.full} "
          f"live preview), {elapsed:.1f} s, photo 1226×816 (1.0 MP), preset cinematic, {os.cpu_count()} CPUs")
    print(f"{'kind':36} {'requests':>8} {'req/s':>7} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'errors':>6}")
    for kind in sorted(results.latencies):
        lat, errors = results.latencies[kind], results.errors[kind]
        if lat:
            print(f"{kind:36} {len(lat):8d} {len(lat) / elapsed:7.2f} {statistics.median(lat):7.3f} "
                  f"{percentile(lat, 95):7.3f} {max(lat):7.3f} {len(errors):6d}")
        else:
            print(f"{kind:36} {0:8d} {'-':>7} {'-':>7} {'-':>7} {'-':>7} {len(errors):6d}")
        for error in errors[:3]:
            print(f"    error: {error}")
    print(f"server peak RSS: {sampler.peak / 2**20:.0f} MiB" if sampler else "server peak RSS: n/a (no --pid)")


if __name__ == "__main__":
    main()
