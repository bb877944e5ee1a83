"""fal storage, the JS client's /fal/proxy and CORS, over plain HTTP against ``python app.py``
(https, ``STUDIO_API_KEYS`` set), plus the real Python client's uploads with its storage constants
pointed here, and the in-process pieces (``resolve``, ``cleanup``, the proxy's target check).
"""
import base64
import datetime
import io
import time

import httpx
import numpy as np
import pytest
from PIL import Image

import effects
from fal_server import KEY, FalServer, data_uri, gradient, python_client
from studio.fal import proxy, storage

ORIGIN = "https://app.example"
MAX_BYTES = 300_000
CORS_HEADERS = "authorization, content-type, accept, x-fal-target-url, x-fal-queue-priority"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = FalServer(tmp_path_factory.mktemp("fal-storage"),
                       env={"STUDIO_API_KEYS": KEY, "STUDIO_CORS_ORIGINS": f"{ORIGIN},https://b.example",
                            "STUDIO_MAX_DOWNLOAD_BYTES": str(MAX_BYTES)}).start()
    yield server
    server.stop()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def anonymous_get(server: FalServer, url: str) -> httpx.Response:
    return httpx.get(url, verify=str(server.ca))


# --- storage routes -----------------------------------------------------------------------------------

def test_initiate_then_put_without_a_key_then_the_file_url_serves_the_bytes(server):
    data = png_bytes(gradient())
    with server.http() as keyed:
        answer = keyed.post("/fal/rest/storage/upload/initiate?storage_type=fal-cdn-v3",
                            json={"content_type": "image/png", "file_name": "my photo.png"})
        other = keyed.post("/fal/rest/storage/upload/initiate", json={"content_type": "image/png"})
    assert answer.status_code == 200
    upload_url, file_url = answer.json()["upload_url"], answer.json()["file_url"]
    assert upload_url.startswith(server.url + "/fal/upload/")
    assert file_url.startswith(server.url + "/fal/files/") and file_url.endswith("/my_photo.png")
    assert len(upload_url.rpartition("/")[2]) >= 43  # 256-bit tokens
    assert upload_url.rpartition("/")[2] not in file_url  # the file URL cannot replace the file
    assert set(other.json().values()).isdisjoint(answer.json().values())
    assert anonymous_get(server, file_url).status_code == 404  # not uploaded yet
    put = httpx.put(upload_url, content=data, headers={"Content-Type": "image/png"},
                    verify=str(server.ca))  # as JS does it: no Authorization
    assert put.status_code == 200
    served = anonymous_get(server, file_url)
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]


def test_unknown_tokens_are_404(server):
    fake = "A" * 43
    assert anonymous_get(server, f"{server.url}/fal/files/{fake}/x.png").status_code == 404
    put = httpx.put(f"{server.url}/fal/upload/{fake}", content=b"x", verify=str(server.ca))
    assert put.status_code == 404 and put.json()["detail"] == "unknown or expired upload URL"


def test_initiate_and_cdn_upload_need_the_key(server):
    with server.http(key=None) as anonymous:
        for path in ("/fal/rest/storage/upload/initiate", "/fal/rest/storage/auth/token",
                     "/fal/cdn/files/upload"):
            assert anonymous.post(path, json={}).status_code == 401, path


def test_token_hands_back_the_callers_key_until_an_aware_expiry(server):
    with server.http() as keyed:
        token = keyed.post("/fal/rest/storage/auth/token?storage_type=fal-cdn-v3", json={}).json()
    assert (token["token"], token["token_type"]) == (KEY, "Key")
    assert token["base_url"] == server.url + "/fal/cdn"
    expires = datetime.datetime.fromisoformat(token["expires_at"])
    assert expires.tzinfo is not None and expires > datetime.datetime.now(datetime.timezone.utc)


def test_cdn_upload_answers_an_access_url(server):
    data = png_bytes(gradient(32))
    with server.http() as keyed:
        answer = keyed.post("/fal/cdn/files/upload", content=data,
                            headers={"Content-Type": "image/png", "X-Fal-File-Name": "../up.png"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["access_url"].startswith(server.url + "/fal/files/")
    assert (body["file_name"], body["content_type"], body["file_size"]) == ("up.png", "image/png", len(data))
    assert anonymous_get(server, body["access_url"]).content == data


def test_a_non_image_upload_is_served_as_an_attachment(server):
    with server.http() as keyed:
        url = keyed.post("/fal/cdn/files/upload", content=b"<script>alert(1)</script>",
                         headers={"Content-Type": "text/html"}).json()["access_url"]
    served = anonymous_get(server, url)
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize("content, headers, status, field", [
    (b"x" * (MAX_BYTES + 1), {"Content-Type": "image/png"}, 413, "file"),
    (b"", {"Content-Type": "image/png"}, 400, "file"),
    (b"x", {"Content-Type": "not a type"}, 422, "content_type"),
])
def test_refused_cdn_uploads_name_what_is_wrong(server, content, headers, status, field):
    with server.http() as keyed:
        answer = keyed.post("/fal/cdn/files/upload", content=content, headers=headers)
    assert answer.status_code == status
    assert answer.json()["detail"].startswith(f"{field}: ")


def test_initiate_refuses_bad_fields_and_multipart(server):
    with server.http() as keyed:
        bad = keyed.post("/fal/rest/storage/upload/initiate", json={"content_type": 5})
        multipart = keyed.post("/fal/rest/storage/upload/initiate-multipart",
                               json={"content_type": "image/png"})
        too_big = keyed.post("/fal/rest/storage/upload/initiate", json={"content_type": "image/png"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("content_type: ")
    assert multipart.status_code == 413 and f"{MAX_BYTES:,} bytes" in multipart.json()["detail"]
    put = httpx.put(too_big.json()["upload_url"], content=b"x" * (MAX_BYTES + 1), verify=str(server.ca))
    assert put.status_code == 413


def test_python_client_uploads_with_its_storage_constants_pointed_here(server):
    """fal_client.upload's default flow (token, then the CDN route) and repository="fal"
    (initiate, then PUT); a run on the uploaded URL reads it in-process (loopback is refused to
    network fetches, so only the in-process path can succeed)."""
    out = python_client(server, f"""
        import base64
        import fal_client.client as c
        c.REST_URL = "{server.url}/fal/rest"
        c.CDN_URL = "{server.url}/fal/cdn"
        data = base64.b64decode(image_uri.partition(",")[2])
        default = fal_client.upload(data, "image/png", "photo.png")
        legacy = fal_client.upload(data, "image/png", repository="fal")
        result = fal_client.run("fal-ai/post-processing",
                                arguments={{"image_url": default, "enable_grain": True, "seed": 3}})
        return {{"default": default, "legacy": legacy, "result": result}}
    """, image=data_uri(gradient()))
    data = png_bytes(gradient())
    for name in ("default", "legacy"):
        assert out[name].startswith(server.url + "/fal/files/"), out
        assert anonymous_get(server, out[name]).content == data
    got = np.asarray(Image.open(io.BytesIO(anonymous_get(server, out["result"]["images"][0]["url"]).content)))
    np.testing.assert_array_equal(got, np.asarray(effects.process(gradient(), {"enable_grain": True,
                                                                               "seed": 3})))


# --- the proxy ----------------------------------------------------------------------------------------

def proxied(server: FalServer, target: str | None, *, method: str = "POST", key: str | None = KEY,
            **options) -> httpx.Response:
    headers = {"x-fal-target-url": target} if target else {}
    with server.http(key=key) as client:
        return client.request(method, "/fal/proxy", headers=headers, **options)


def test_proxy_dispatches_on_the_target_url(server):
    run = proxied(server, "https://fal.run/fal-ai/post-processing",
                  json={"image_url": data_uri(gradient())})
    assert run.status_code == 200 and run.headers["x-fal-request-id"]
    assert run.headers["content-type"] == "application/json"
    submit = proxied(server, "https://queue.fal.run/fal-ai/post-processing",
                     json={"image_url": data_uri(gradient())})
    rid = submit.json()["request_id"]
    status = proxied(server, f"https://queue.fal.run/fal-ai/post-processing/requests/{rid}/status?logs=1",
                     method="GET")
    assert status.status_code in (200, 202) and status.json()["request_id"] == rid
    assert "logs" in status.json()  # the query string travelled with the target
    upload = proxied(server, "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3",
                     json={"content_type": "image/png"})
    assert upload.json()["upload_url"].startswith(server.url + "/fal/upload/")


def test_proxy_checks_the_key_of_the_target_route(server):
    answer = proxied(server, "https://fal.run/fal-ai/post-processing", key="wrong", json={})
    assert answer.status_code == 401


@pytest.mark.parametrize("target, status", [
    (None, 400),
    ("https://evil.example/fal-ai/post-processing", 403),
    ("http://fal.run/fal-ai/post-processing", 403),
    ("https://fal.run:8443/fal-ai/post-processing", 403),
    ("https://user@fal.run/fal-ai/post-processing", 403),
    ("https://fal.run/../api/post-processing", 403),
])
def test_proxy_refuses_other_targets(server, target, status):
    answer = proxied(server, target, json={})
    assert answer.status_code == status
    assert "x-fal-target-url" in answer.json()["detail"]


# --- CORS ---------------------------------------------------------------------------------------------

def preflight(server: FalServer, path: str, origin: str, method: str = "POST") -> httpx.Response:
    with server.http(key=None) as client:
        return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                             "Access-Control-Request-Headers": CORS_HEADERS})


def test_preflight_allows_the_configured_origins_and_the_js_headers(server):
    for path, method in (("/fal/proxy", "POST"), ("/fal/upload/sometoken", "PUT")):
        answer = preflight(server, path, ORIGIN, method)
        assert answer.status_code == 200, path
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
        assert {h.strip() for h in CORS_HEADERS.split(",")} <= allowed
        assert method in answer.headers["access-control-allow-methods"]


def test_other_origins_get_no_cors_even_where_gradio_would_allow_them(server):
    answer = preflight(server, "/fal/proxy", "https://evil.example")
    assert answer.status_code == 400 and "access-control-allow-origin" not in answer.headers
    with server.http() as client:  # Gradio alone would echo any origin for a non-localhost host
        run = client.post("/fal/proxy", json={"image_url": data_uri(gradient())},
                          headers={"Origin": "https://evil.example", "Host": "studio.example",
                                   "x-fal-target-url": "https://fal.run/fal-ai/post-processing"})
    assert run.status_code == 200
    assert "access-control-allow-origin" not in run.headers
    assert "access-control-allow-credentials" not in run.headers


def test_an_allowed_origin_sees_the_request_id(server):
    with server.http() as client:
        run = client.post("/fal/proxy", json={"image_url": data_uri(gradient())},
                          headers={"Origin": "https://b.example",
                                   "x-fal-target-url": "https://fal.run/fal-ai/post-processing"})
    assert run.headers["access-control-allow-origin"] == "https://b.example"
    assert "x-fal-request-id" in run.headers["access-control-expose-headers"].lower()
    assert run.headers["x-fal-request-id"]


def test_jwks_needs_no_key(server):
    answer = anonymous_get(server, server.url + "/fal/.well-known/jwks.json")
    assert answer.status_code == 200
    [key] = answer.json()["keys"]
    assert (key["kty"], key["crv"], len(base64.urlsafe_b64decode(key["x"] + "="))) == ("OKP", "Ed25519", 32)


# --- in-process ---------------------------------------------------------------------------------------

@pytest.fixture
def data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    return tmp_path


def test_resolve_reads_own_file_urls_whatever_the_host(data_dir):
    url = storage.save_file("https://public.example:8443", b"\x89PNG-bytes", "image/png", "a.png")
    token = url.split("/")[-2]
    assert url == f"https://public.example:8443/fal/files/{token}/a.png"
    assert storage.resolve(url) == b"\x89PNG-bytes"
    assert storage.resolve(f"http://127.0.0.1:7860/fal/files/{token}/a.png") == b"\x89PNG-bytes"
    assert storage.resolve(f" https://behind.proxy/studio/fal/files/{token}/other-name.png") == b"\x89PNG-bytes"
    for other in (f"https://x/fal/files/{'B' * 43}/a.png", "https://example.com/a.png",
                  "data:image/png;base64,AAAA", "http://[::1/fal/files/x/y", None, 5):
        assert storage.resolve(other) is None, other


def test_cleanup_deletes_files_older_than_the_ttl(data_dir, monkeypatch):
    monkeypatch.setenv("STUDIO_RESULT_TTL", "100")
    old = storage.save_file("https://h", b"old", "image/png", "old.png")
    assert storage.cleanup(now=time.time() + 50) == 0 and storage.resolve(old) == b"old"
    (data_dir / "files" / "stray.partial").write_bytes(b"left by a crash")
    assert storage.cleanup(now=time.time() + 101) == 1
    assert storage.resolve(old) is None
    assert list((data_dir / "files").iterdir()) == []


@pytest.mark.parametrize("target, local", [
    ("https://fal.run/fal-ai/aura-sr", ("/fal/run/fal-ai/aura-sr", "")),
    ("https://queue.fal.run/fal-ai/post-processing?fal_webhook=http%3A%2F%2Fh%2Fw",
     ("/fal/queue/fal-ai/post-processing", "fal_webhook=http%3A%2F%2Fh%2Fw")),
    ("https://REST.fal.ai:443/storage/upload/initiate?storage_type=gcs",
     ("/fal/rest/storage/upload/initiate", "storage_type=gcs")),
])
def test_target_path_maps_fals_hosts_to_local_routes(target, local):
    assert proxy.target_path(target) == local


def test_any_origin_with_a_star_and_other_paths_left_to_the_app(monkeypatch):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    monkeypatch.setenv("STUDIO_CORS_ORIGINS", "*")
    inner = Starlette(routes=[Route("/fal/x", lambda r: PlainTextResponse(r.headers.get("origin", "-"))),
                              Route("/page", lambda r: PlainTextResponse(r.headers.get("origin", "-")))])
    with TestClient(proxy.wrap(inner)) as client:
        fal = client.get("/fal/x", headers={"Origin": "https://any.example"})
        page = client.get("/page", headers={"Origin": "https://any.example"})
    assert fal.headers["access-control-allow-origin"] == "*"
    assert fal.text == "-"  # the origin is answered here and hidden from the app's own CORS layer
    assert page.text == "https://any.example" and "access-control-allow-origin" not in page.headers
