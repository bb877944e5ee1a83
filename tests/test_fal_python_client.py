"""The real Python client, ``fal-client`` 1.0.3, against ``python app.py`` over https.

The client is configured by environment alone, as the README says ("hosts" mode: ``FAL_RUN_HOST``,
``FAL_QUEUE_RUN_HOST``, ``SSL_CERT_FILE`` pointing at a throw-away CA, ``FAL_KEY``), in a fresh
interpreter per script (it reads the hosts at import). The server runs with ``STUDIO_API_KEYS``.
Result images are fetched from the URLs the server handed out and compared with the effects and
the upscaler run in this process on the same input.
"""
import io

import httpx
import numpy as np
import pytest
from PIL import Image

import effects
import upscaler
from fal_server import KEY, FalServer, data_uri, gradient, python_client
from studio_server import tiny_aurasr_hub

PARAMS = {"enable_grain": True, "grain_intensity": 0.3, "enable_vignette": True,
          "vignette_strength": 0.6, "seed": 11}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = FalServer(tmp_path_factory.mktemp("fal-python"),
                       env={"STUDIO_API_KEYS": f"other-key,{KEY}"}).start()
    yield server
    server.stop()


def fetched(server: FalServer, url: str) -> np.ndarray:
    """The pixels of a result file, fetched without a key (its URL is the capability)."""
    assert url.startswith(server.url + "/fal/files/")
    response = httpx.get(url, verify=str(server.ca))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def expected(params: dict) -> np.ndarray:
    return np.asarray(effects.process(gradient(), params))


def test_run_answers_fal_output_with_a_file_url_of_the_processed_image(server):
    out = python_client(server, f"""
        return fal_client.run("fal-ai/post-processing", arguments={{"image_url": image_uri, **{PARAMS!r}}})
    """, image=data_uri(gradient()))
    [record] = out["images"]
    assert {k: record[k] for k in ("content_type", "width", "height")} == \
        {"content_type": "image/png", "width": 64, "height": 64}
    assert record["file_name"].endswith(".png") and record["file_size"] > 0
    np.testing.assert_array_equal(fetched(server, record["url"]), expected(PARAMS))


def test_subscribe_reports_queue_updates_with_stage_logs(server):
    out = python_client(server, f"""
        updates = []
        def on_update(status):
            updates.append({{"type": type(status).__name__,
                             "logs": [line["message"] for line in (getattr(status, "logs", None) or [])]}})
        result = fal_client.subscribe("fal-ai/post-processing",
                                      arguments={{"image_url": image_uri, **{PARAMS!r}}},
                                      with_logs=True, on_queue_update=on_update)
        return {{"result": result, "updates": updates}}
    """, image=data_uri(gradient()))
    types = [u["type"] for u in out["updates"]]
    assert types[-1] == "Completed" and set(types) <= {"Queued", "InProgress", "Completed"}
    logs = out["updates"][-1]["logs"]
    assert logs[0] == "fal-ai/post-processing: starting"
    assert any(line.startswith("fetch image_url: ") for line in logs)
    assert any(line.startswith("decode image_url: 64x64 RGB") for line in logs)
    assert [line for line in logs if line.startswith("effect ")] == ["effect 1/2: grain",
                                                                    "effect 2/2: vignette"]
    assert any(line.startswith("encode: 64x64 PNG") for line in logs)
    np.testing.assert_array_equal(fetched(server, out["result"]["images"][0]["url"]), expected(PARAMS))


def test_submit_status_and_result_by_handle_and_by_request_id(server):
    params = {"enable_tint": True, "tint_mode": "sepia", "tint_strength": 0.8}
    out = python_client(server, f"""
        handle = fal_client.submit("fal-ai/post-processing", arguments={{"image_url": image_uri, **{params!r}}})
        result = handle.get()
        status = handle.status(with_logs=True)
        again = fal_client.result("fal-ai/post-processing", handle.request_id)
        by_id = fal_client.status("fal-ai/post-processing", handle.request_id, with_logs=True)
        return {{"id": handle.request_id, "result": result, "again": again,
                 "status": [type(status).__name__, status.metrics, len(status.logs), status.error],
                 "by_id": [type(by_id).__name__, len(by_id.logs)]}}
    """, image=data_uri(gradient()))
    assert out["result"] == out["again"]
    kind, metrics, lines, error = out["status"]
    assert kind == "Completed" and error is None and lines >= 5
    assert 0 < metrics["inference_time"] < 60
    assert out["by_id"] == ["Completed", lines]
    np.testing.assert_array_equal(fetched(server, out["result"]["images"][0]["url"]), expected(params))


def test_cancel_a_running_and_a_queued_upscale(server):
    """A 512x512 overlapped upscale takes thousands of tiny-model tiles: cancelled while running, it
    stops at a tile; the one queued behind it never starts. Both end COMPLETED with an error, their
    results are 400, and a second cancel is ALREADY_COMPLETED."""
    out = python_client(server, """
        import time
        args = {"image_url": image_uri, "overlapping_tiles": True, "seed": 1}
        running = fal_client.submit("fal-ai/aura-sr", arguments=args)
        queued = fal_client.submit("fal-ai/aura-sr", arguments=args)
        while not any("AuraSR tile" in line["message"]
                      for line in (running.status(with_logs=True).logs or [])):
            time.sleep(0.05)
        queued.cancel()
        running.cancel()
        out = {}
        for name, handle in (("running", running), ("queued", queued)):
            while not isinstance(status := handle.status(with_logs=True), fal_client.Completed):
                time.sleep(0.05)
            try:
                handle.get()
                code = 200
            except fal_client.FalClientHTTPError as exc:
                code = exc.status_code
            try:
                handle.cancel()
                again = "accepted"
            except fal_client.FalClientHTTPError as exc:
                again = [exc.status_code, exc.response.json()]
            out[name] = {"error": status.error, "error_type": status.error_type, "result": code,
                         "again": again, "logs": [line["message"] for line in status.logs]}
        return out
    """, image=data_uri(gradient(512)))
    assert "error" not in out, out
    for name in ("running", "queued"):
        job = out[name]
        assert (job["error"], job["error_type"], job["result"]) == \
            ("Invalid status code: 400", "request_cancelled", 400), name
        assert job["again"] == [400, {"status": "ALREADY_COMPLETED"}], name
    tiles = [line for line in out["running"]["logs"] if line.startswith("AuraSR tile")]
    total = int(tiles[-1].rpartition("/")[2])
    assert 0 < len(tiles) < total  # stopped part-way
    assert not any(line.startswith("AuraSR tile") for line in out["queued"]["logs"])


def test_validation_error_is_a_field_named_422_through_run_and_through_subscribe(server):
    out = python_client(server, """
        out = {}
        for name, call in (("run", fal_client.run), ("subscribe", fal_client.subscribe)):
            try:
                call("fal-ai/post-processing", arguments={"image_url": image_uri, "enable_grain": True,
                                                          "grain_intensity": 9})
            except fal_client.FalClientHTTPError as exc:
                out[name] = [exc.status_code, exc.message]
        return out
    """, image=data_uri(gradient()))
    for name in ("run", "subscribe"):
        status, detail = out[name]
        assert status == 422, name
        assert detail[0]["loc"] == ["body", "grain_intensity"], name
        assert detail[0]["msg"].startswith("grain_intensity: 9 "), name


def test_aura_sr_upscales_4x_like_the_upscaler_itself(server):
    small = gradient(16)
    out = python_client(server, """
        return fal_client.subscribe("fal-ai/aura-sr", arguments={"image_url": image_uri, "seed": 5,
                                                              "checkpoint": "v2"}, with_logs=True)
    """, image=data_uri(small))
    assert (out["image"]["width"], out["image"]["height"]) == (64, 64)
    assert set(out["timings"]) == {"load", "preprocess", "inference", "postprocess"}
    with tiny_aurasr_hub(server.folder / "hub"):
        reference = np.asarray(upscaler.upscale(small, seed=5, checkpoint="v2")[0], dtype=int)
    got = fetched(server, out["image"]["url"]).astype(int)
    assert np.abs(got - reference).max() <= 1  # same model and seed; float rounding across processes


def test_wrong_or_missing_key_is_401_but_result_files_need_none(server):
    out = python_client(server, """
        try:
            fal_client.run("fal-ai/post-processing", arguments={"image_url": image_uri})
        except fal_client.FalClientHTTPError as exc:
            return [exc.status_code, exc.message]
    """, key="wrong-key", image=data_uri(gradient()))
    assert out[0] == 401 and "not a valid key" in out[1]
    with server.http(key=None) as anonymous:
        for method, path in (("POST", "/fal/queue/fal-ai/post-processing"),
                             ("GET", "/fal/queue/fal-ai/post-processing/requests/x/status"),
                             ("POST", "/api/post-processing")):
            response = anonymous.request(method, path, json={})
            assert response.status_code == 401, path
            assert "Authorization header is missing" in response.json()["detail"]
            assert response.headers["www-authenticate"] == "Key"
    with server.http() as keyed:
        record = keyed.post("/fal/run/fal-ai/post-processing",
                            json={"image_url": data_uri(gradient())}).json()["images"][0]
    np.testing.assert_array_equal(fetched(server, record["url"]), np.asarray(gradient()))
    assert KEY not in server.log()  # keys are never logged
