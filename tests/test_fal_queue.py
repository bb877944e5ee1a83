"""fal's queue routes at the HTTP level: URLs, states, the status stream, results, 404s, bursts, 429,
expiry and API keys.

Most tests run against ``python app.py`` over https (tests/fal_server.py). Those that need a queue
whose workers do not run (to hold jobs in the queue deterministically) mount the same routes on the
same SQLite store in-process, with the workers not started.
"""
import base64
import concurrent.futures
import io
import json
import time

import httpx
import numpy as np
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

import effects
import studio.fal
from fal_server import FalServer, data_uri, gradient
from studio import api
from studio.fal import auth, db, storage
from studio.fal.routes import routes as queue_routes  # (studio.fal.routes is also a function)
from studio.fal.queue import MAX_ATTEMPTS, Queue
from studio.fal.store import SQLiteJobStore

PP = "/fal/queue/fal-ai/post-processing"
AURA = "/fal/queue/fal-ai/aura-sr"
#: Slow enough to hold the upscale slot for seconds: thousands of tiny-model tiles.
SLOW_UPSCALE = {"overlapping_tiles": True, "seed": 0}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # One fetching worker per app beyond the slot, so a few jobs are enough to fill the workers.
    server = FalServer(tmp_path_factory.mktemp("fal-queue"), env={"STUDIO_FETCH_WORKERS": "1"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server):
    with server.http(key=None) as client:
        yield client


def wait_done(http, status_url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http.get(status_url, params={"logs": "1"}).json()
        if body["status"] == "COMPLETED":
            return body
        time.sleep(0.05)
    raise AssertionError(f"not completed within {timeout} s: {body}")


def pixels(http, url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(http.get(url).content)))


def test_submit_answers_absolute_urls_to_this_server_honouring_forwarded_headers(http, server):
    submitted = http.post(PP, json={"image_url": data_uri(gradient())}).json()
    rid = submitted["request_id"]
    base = f"{server.url}{PP}/requests/{rid}"
    assert submitted == {"request_id": rid, "gateway_request_id": rid, "response_url": base,
                         "status_url": f"{base}/status", "cancel_url": f"{base}/cancel",
                         "queue_position": submitted["queue_position"]}
    wait_done(http, submitted["status_url"])
    assert http.get(submitted["response_url"]).json()["images"][0]["url"].startswith(
        f"{server.url}/fal/files/")

    proxied = http.post(PP, json={"image_url": data_uri(gradient())},
                        headers={"X-Forwarded-Proto": "https, http",
                                 "X-Forwarded-Host": "studio.example"}).json()
    assert proxied["status_url"] == \
        f"https://studio.example{PP}/requests/{proxied['request_id']}/status"
    wait_done(http, f"{server.url}{PP}/requests/{proxied['request_id']}/status")
    record = http.get(f"{PP}/requests/{proxied['request_id']}").json()["images"][0]
    assert record["url"].startswith("https://studio.example/fal/files/")  # files under that base too


def test_states_are_in_queue_in_progress_completed_with_positions_and_early_result_400(http):
    """Four slow upscales: two take the upscale workers (one computes, one waits for the slot), the
    other two wait in the queue at positions 0 and 1. Cancelled, all four end COMPLETED."""
    ids = [http.post(AURA, json={"image_url": data_uri(gradient(512)), **SLOW_UPSCALE}).json()["request_id"]
           for _ in range(4)]
    deadline = time.monotonic() + 60
    while http.get(f"{AURA}/requests/{ids[1]}/status").json()["status"] == "IN_QUEUE":
        assert time.monotonic() < deadline, "no worker took the second job"
        time.sleep(0.05)  # the workers take jobs asynchronously
    statuses = [http.get(f"{AURA}/requests/{rid}/status") for rid in ids]
    try:
        assert [s.status_code for s in statuses] == [202] * 4
        bodies = [s.json() for s in statuses]
        assert [b["status"] for b in bodies] == ["IN_PROGRESS", "IN_PROGRESS", "IN_QUEUE", "IN_QUEUE"]
        assert [b.get("queue_position") for b in bodies] == [None, None, 0, 1]
        assert all(b["logs"] is None for b in bodies)  # not asked for
        with_logs = http.get(f"{AURA}/requests/{ids[0]}/status", params={"logs": "true"}).json()
        assert with_logs["logs"][0]["message"] == "fal-ai/aura-sr: starting"
        assert set(with_logs["logs"][0]) == {"message", "level", "source", "timestamp"}
        early = http.get(f"{AURA}/requests/{ids[3]}")
        assert (early.status_code, early.json()) == (400, {"detail": "Request is still in progress"})
    finally:
        for rid in reversed(ids):
            cancel = http.put(f"{AURA}/requests/{rid}/cancel")
            assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    for rid in ids:
        done = wait_done(http, f"{AURA}/requests/{rid}/status")
        assert (done["status"], done["error"], done["error_type"]) == \
            ("COMPLETED", "Invalid status code: 400", "request_cancelled")
        assert http.get(f"{AURA}/requests/{rid}/status").status_code == 200


def test_status_stream_sends_each_change_with_only_new_log_lines_then_closes(http):
    params = {"enable_grain": True, "grain_intensity": 0.2, "enable_sharpen": True,
              "enable_glow": True, "seed": 3}
    rid = http.post(PP, json={"image_url": data_uri(gradient()), **params}).json()["request_id"]
    events = []
    with http.stream("GET", f"{PP}/requests/{rid}/status/stream", params={"logs": "1"}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: "):]))
    assert events[-1]["status"] == "COMPLETED" and events[-1]["metrics"]["inference_time"] > 0
    assert {e["status"] for e in events} <= {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
    streamed = [line for e in events for line in e["logs"]]
    polled = http.get(f"{PP}/requests/{rid}/status", params={"logs": "1"}).json()["logs"]
    assert streamed == polled  # every line exactly once, in order
    assert [line["message"] for line in polled if line["message"].startswith("effect ")] == \
        ["effect 1/3: grain", "effect 2/3: glow", "effect 3/3: sharpen"]

    failed = http.post(PP, json={"image_url": data_uri(gradient()), "grain_intensity": 9}).json()
    with http.stream("GET", f"{PP}/requests/{failed['request_id']}/status/stream") as stream:
        last = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")][-1]
    assert (last["status"], last["error_type"], last["logs"]) == ("COMPLETED", "validation_error", None)
    result = http.get(failed["response_url"])
    assert result.status_code == 422 and result.json()["detail"][0]["loc"] == ["body", "grain_intensity"]


def test_run_answers_the_jobs_own_status_and_request_id(http):
    ok = http.post("/fal/run/fal-ai/post-processing", json={"image_url": data_uri(gradient())})
    assert ok.status_code == 200 and ok.headers["x-fal-request-id"]
    status = http.get(f"{PP}/requests/{ok.headers['x-fal-request-id']}/status").json()
    assert status["status"] == "COMPLETED"  # a run is a job like any other
    bad = http.post("/fal/run/fal-ai/aura-sr", json={"image_url": data_uri(gradient()),
                                                     "checkpoint": "v9"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "checkpoint"]
    broken = http.post(PP, json={"image_url": "data:image/png;base64,"
                                 + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()}).json()
    done = wait_done(http, broken["status_url"])
    assert (done["error"], done["error_type"]) == ("Invalid status code: 400", "client_error")
    assert http.get(broken["response_url"]).json()["detail"][0]["loc"] == ["body", "image_url"]
    not_json = http.post("/fal/run/fal-ai/aura-sr", content=b"{oops",
                         headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and "not valid JSON" in not_json.text


def test_unknown_apps_requests_and_paths_are_404_naming_what_exists(http):
    rid = http.post(PP, json={"image_url": data_uri(gradient())}).json()["request_id"]
    for method, path in (("POST", "/fal/run/fal-ai/flux"), ("POST", "/fal/queue/fal-ai/flux/dev"),
                         ("POST", "/fal/run/fal-ai/post-processing/extra/path"),
                         ("GET", f"/fal/queue/fal-ai/flux/requests/{rid}/status")):
        response = http.request(method, path, json={})
        assert response.status_code == 404, path
        assert "fal-ai/post-processing and fal-ai/aura-sr" in response.json()["detail"], path
    for method, path in (("GET", f"{PP}/requests/no-such-id/status"), ("GET", f"{PP}/requests/no-such-id"),
                         ("PUT", f"{PP}/requests/no-such-id/cancel"),
                         ("GET", f"{AURA}/requests/{rid}/status")):  # another app's request
        response = http.request(method, path)
        assert response.status_code == 404, path
        assert "not found" in response.json()["detail"], path


def test_fifty_jobs_submitted_at_once_all_complete_with_their_own_results(http):
    def submit(n: int) -> tuple[int, str]:
        body = {"image_url": data_uri(gradient()), "enable_color_correction": True,
                "brightness": n * 2 - 50, "seed": n}
        response = http.post(PP, json=body)
        assert response.status_code == 200, response.text
        return n, response.json()["request_id"]

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        jobs = list(pool.map(submit, range(50)))
    for n, rid in jobs:
        wait_done(http, f"{PP}/requests/{rid}/status", timeout=300)
        result = http.get(f"{PP}/requests/{rid}")
        assert result.status_code == 200
        reference = effects.process(gradient(), {"enable_color_correction": True,
                                                 "brightness": n * 2 - 50, "seed": n})
        np.testing.assert_array_equal(pixels(http, result.json()["images"][0]["url"]),
                                      np.asarray(reference))


def test_api_routes_still_answer_data_uris(http):
    response = http.post("/api/post-processing", json={"image_url": data_uri(gradient()),
                                                       "enable_grain": True, "seed": 2})
    assert response.status_code == 200
    url = response.json()["images"][0]["url"]
    assert url.startswith("data:image/png;base64,")
    png = base64.b64decode(url.partition(",")[2])
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), np.asarray(
        effects.process(gradient(), {"enable_grain": True, "seed": 2})))


# -- in-process, workers not started --------------------------------------------------------------

@pytest.fixture
def idle(tmp_path, monkeypatch):
    """(TestClient, Queue): the fal and /api routes on a fresh data dir whose queue has no workers,
    so every accepted job stays queued."""
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    queue = Queue(SQLiteJobStore())
    monkeypatch.setattr(studio.fal, "_queue", queue)
    app = Starlette(routes=[*queue_routes(lambda: queue), *api.routes(), *storage.routes()],
                    middleware=[Middleware(auth.RequireKey)])
    with TestClient(app) as client:
        yield client, queue


def test_beyond_queue_max_submissions_and_api_calls_get_429_with_retry_after(idle, monkeypatch):
    client, _ = idle
    monkeypatch.setenv("STUDIO_QUEUE_MAX", "2")
    body = {"image_url": data_uri(gradient())}
    positions = [client.post(PP, json=body).json()["queue_position"] for _ in range(2)]
    assert positions == [0, 1]
    for path in (PP, "/fal/run/fal-ai/post-processing", "/api/post-processing", AURA):
        refused = client.post(path, json=body)
        assert refused.status_code == 429, path
        assert int(refused.headers["retry-after"]) > 0 and "queue is full" in refused.json()["detail"]


def test_public_url_setting_overrides_the_request_host(idle, monkeypatch):
    client, _ = idle
    monkeypatch.setenv("STUDIO_PUBLIC_URL", "https://studio.example/base/")
    submitted = client.post(PP, json={"image_url": data_uri(gradient())}).json()
    assert submitted["status_url"] == \
        f"https://studio.example/base{PP}/requests/{submitted['request_id']}/status"


def test_finished_jobs_and_their_files_expire_after_the_ttl(idle, monkeypatch):
    client, queue = idle
    monkeypatch.setenv("STUDIO_RESULT_TTL", "1")
    rid = client.post(PP, json={"image_url": data_uri(gradient())}).json()["request_id"]
    job = queue.store.claim("fal-ai/post-processing", queue.owner)
    url = storage.save_file("http://testserver", b"\x89PNG\r\n\x1a\nfake", "image/png", "r.png")
    queue.store.finish(job.id, status_code=200, result={"images": [{"url": url}]}, error=None,
                       error_type=None, inference_time=0.1)
    assert client.get(f"{PP}/requests/{rid}").status_code == 200
    assert client.get(url).status_code == 200
    inputs = db.data_dir() / "fal-inputs"
    assert list(inputs.iterdir()) == []  # the stored input went when the job finished
    (inputs / "0f-orphan.json.partial").write_bytes(b"{")  # as a crash mid-submit leaves it
    time.sleep(1.1)
    queue.expire()
    assert list(inputs.iterdir()) == []
    assert client.get(f"{PP}/requests/{rid}").status_code == 404
    assert client.get(url).status_code == 404


def test_keys_guard_fal_and_api_routes_but_not_preflights_or_files(idle, monkeypatch):
    client, _ = idle
    monkeypatch.setenv("STUDIO_API_KEYS", " first , second ")
    body = {"image_url": data_uri(gradient())}
    assert client.post(PP, json=body, headers={"Authorization": "Key second"}).status_code == 200
    assert client.post(PP, json=body, headers={"Authorization": "key first"}).status_code == 200
    for header in ("Key third", "Bearer second", "second", "Key ", "Key first,second"):
        refused = client.post(PP, json=body, headers={"Authorization": header})
        assert refused.status_code == 401, header
        assert refused.json()["detail"].startswith("Unauthorized: the Authorization header is not")
    assert client.post("/api/aura-sr", json=body).status_code == 401
    assert client.options(PP).status_code != 401
    url = storage.save_file("http://testserver", b"\x89PNG\r\n\x1a\nfake", "image/png", "r.png")
    assert client.get(url).status_code == 200  # a capability URL: no key
    assert httpx.URL(url).path.startswith(storage.FILES_PREFIX)


def test_recovery_requeues_interrupted_jobs_and_fails_one_interrupted_too_often(idle):
    """Each claim + recover is one server death mid-job. The inline (/api) job of the dead server is
    dropped (nobody waits for it); the durable one is queued again, and after MAX_ATTEMPTS deaths it
    is failed with a 500 instead of taking the server down once more."""
    client, queue = idle
    store = queue.store
    rid = client.post(PP, json={"image_url": data_uri(gradient())}).json()["request_id"]
    inline = store.submit("fal-ai/post-processing", None, base_url="", webhook=None,
                          owner="an earlier process", max_waiting=10)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert store.claim("fal-ai/post-processing", queue.owner).attempts == attempt
        assert store.get(rid).state == "running"
        assert store.recover() == 1
        assert store.get(rid).state == "queued"
    assert store.get(inline.id) is None
    queue._run(store.claim("fal-ai/post-processing", queue.owner))
    status = client.get(f"{PP}/requests/{rid}/status").json()
    assert (status["status"], status["error"], status["error_type"]) == \
        ("COMPLETED", "Invalid status code: 500", "server_error")
    result = client.get(f"{PP}/requests/{rid}")
    assert result.status_code == 500 and f"interrupted {MAX_ATTEMPTS} times" in result.json()["detail"]


def test_tls_needs_both_certificate_and_key(monkeypatch, tmp_path):
    import app
    from common.env import ConfigError
    monkeypatch.delenv("STUDIO_SSL_KEYFILE", raising=False)
    monkeypatch.delenv("STUDIO_SSL_CERTFILE", raising=False)
    assert app.tls_options() == {}
    monkeypatch.setenv("STUDIO_SSL_CERTFILE", str(tmp_path / "server.pem"))
    with pytest.raises(ConfigError, match="STUDIO_SSL_CERTFILE and STUDIO_SSL_KEYFILE"):
        app.tls_options()
    monkeypatch.setenv("STUDIO_SSL_KEYFILE", str(tmp_path / "key.pem"))
    # verify off only for Gradio's start-up request to itself (a private CA is not in its store)
    assert app.tls_options() == {"ssl_certfile": str(tmp_path / "server.pem"),
                                 "ssl_keyfile": str(tmp_path / "key.pem"), "ssl_verify": False}
