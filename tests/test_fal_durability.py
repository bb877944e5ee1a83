"""Accepted means durable: ``kill -9`` with jobs queued and running, restart on the same data dir.

The server is killed with SIGKILL while one upscale is part-way through its tiles, another waits for
the upscale slot and more wait in the queue, right after a burst of post-processing submissions.
Started again on the same ``STUDIO_DATA_DIR`` (and port, so earlier file URLs stay valid), it must
finish every job it had accepted, the interrupted one again from the start, with results equal to
the effects run here, and the result of a job finished before the kill must still be served.
"""
import io
import time

import numpy as np
import pytest
from PIL import Image

import effects
from fal_server import FalServer, data_uri, gradient

PP = "/fal/queue/fal-ai/post-processing"
AURA = "/fal/queue/fal-ai/aura-sr"


def status(http, app: str, rid: str) -> dict:
    return http.get(f"{app}/requests/{rid}/status", params={"logs": "1"}).json()


def pixels(http, url: str) -> np.ndarray:
    response = http.get(url)
    assert response.status_code == 200, url
    return np.asarray(Image.open(io.BytesIO(response.content)))


def pp_params(n: int) -> dict:
    return {"enable_grain": True, "grain_intensity": 0.1 + (n % 10) / 20, "enable_blur": True, "seed": n}


@pytest.fixture
def server(tmp_path):
    server = FalServer(tmp_path, env={"STUDIO_FETCH_WORKERS": "1"})  # few jobs fill the workers
    yield server
    server.stop()


def test_jobs_accepted_before_sigkill_all_finish_after_restart(server):
    server.start()
    with server.http() as http:
        before = http.post("/fal/run/fal-ai/post-processing",
                           json={"image_url": data_uri(gradient()), **pp_params(99)})
        assert before.status_code == 200
        earlier_url = before.json()["images"][0]["url"]

        running = http.post(AURA, json={"image_url": data_uri(gradient(96)), "overlapping_tiles": True,
                                        "seed": 1}).json()["request_id"]
        waiting = [http.post(AURA, json={"image_url": data_uri(gradient(32)), "seed": n}).json()["request_id"]
                   for n in range(3)]
        deadline = time.monotonic() + 120
        while not any(line["message"].startswith("AuraSR tile")
                      for line in status(http, AURA, running)["logs"] or []):
            assert time.monotonic() < deadline, "the upscale never started"
            time.sleep(0.05)
        processing = [http.post(PP, json={"image_url": data_uri(gradient(256)), **pp_params(n)}).json()
                      ["request_id"] for n in range(8)]
        states = [status(http, AURA, rid)["status"] for rid in (running, *waiting)]
        server.kill()
    assert states[0] == "IN_PROGRESS" and "IN_QUEUE" in states, states

    server.start()
    with server.http() as http:
        deadline = time.monotonic() + 240
        for app, rid in [(AURA, running), *((AURA, r) for r in waiting), *((PP, r) for r in processing)]:
            while (body := status(http, app, rid))["status"] != "COMPLETED":
                assert time.monotonic() < deadline, f"{rid} did not complete after the restart: {body}"
                time.sleep(0.1)
            assert "error" not in body, body
        messages = [line["message"] for line in status(http, AURA, running)["logs"]]
        assert "fal-ai/aura-sr: starting (attempt 2)" in messages  # run again from the start
        upscaled = http.get(f"{AURA}/requests/{running}").json()["image"]
        assert pixels(http, upscaled["url"]).shape == (384, 384, 3)
        for rid in waiting:
            assert pixels(http, http.get(f"{AURA}/requests/{rid}").json()["image"]["url"]).shape == \
                (128, 128, 3)
        for n, rid in enumerate(processing):
            result = http.get(f"{PP}/requests/{rid}")
            assert result.status_code == 200
            np.testing.assert_array_equal(pixels(http, result.json()["images"][0]["url"]),
                                          np.asarray(effects.process(gradient(256), pp_params(n))))
        np.testing.assert_array_equal(pixels(http, earlier_url),
                                      np.asarray(effects.process(gradient(), pp_params(99))))
    assert "interrupted by the last shutdown will run again" in server.log()
