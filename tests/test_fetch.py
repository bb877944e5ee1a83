"""studio.fetch: URL schemes, SSRF address checks on every hop, timeouts, byte caps, content checks.

A real HTTP server on 127.0.0.1 runs inside the test module. Being loopback, it must be refused by
default and reachable only through the STUDIO_ALLOWED_HOSTS opt-in.
"""
import base64
import http.server
import io
import ipaddress
import socket
import threading
import urllib.parse

import pytest
from PIL import Image

from local_http import serving
from common.errors import InputError
from studio.fetch import MAX_REDIRECTS, fetch_url, refusal_reason


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 30)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()
FLOOD = 64 * 1024 * 1024  # what the flooding routes try to send; far more than any cap used here


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes: /img, /redirect/<n>, /to-ip, /to-file, /slow, /drip, /flood, /flood-chunked,
    /huge-length, /html, /missing. Records Host headers and bytes sent per path on the server."""

    def do_GET(self):
        srv = self.server
        srv.hosts.append(self.headers.get("Host"))
        path = self.path
        try:
            if path == "/img":
                self._send(200, PNG)
            elif path.startswith("/redirect/"):
                n = int(path.rsplit("/", 1)[1])
                self._redirect("/img" if n <= 1 else f"/redirect/{n - 1}")
            elif path == "/to-ip":
                self._redirect(f"http://127.0.0.1:{srv.server_address[1]}/img")
            elif path == "/to-file":
                self._redirect("file:///etc/passwd")
            elif path == "/slow":
                srv.stop.wait(3)
                self._send(200, PNG)
            elif path == "/drip":  # each byte well within a read timeout, the whole far beyond
                self.send_response(200)
                self.send_header("Content-Length", str(len(PNG)))
                self.end_headers()
                for i in range(len(PNG)):
                    if srv.stop.wait(0.05):
                        return
                    self.wfile.write(PNG[i:i + 1])
                    self.wfile.flush()
            elif path == "/flood":  # no Content-Length: the body ends when the connection closes
                self.send_response(200)
                self.end_headers()
                self._flood(path, lambda chunk: chunk)
            elif path == "/flood-chunked":  # a small Content-Length, overridden by chunked encoding
                self.protocol_version = "HTTP/1.1"
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._flood(path, lambda chunk: b"%x\r\n%b\r\n" % (len(chunk), chunk))
            elif path == "/huge-length":
                self.send_response(200)
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                self._flood(path, lambda chunk: chunk)
            elif path == "/html":
                self._send(200, b"<!doctype html><html><body>" + b"x" * 1_000_000 + b"</body></html>")
            else:
                self._send(404, b"not found")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up on purpose: that is what the caps do

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _flood(self, path, frame):
        chunk = PNG + b"\0" * (64 * 1024 - len(PNG))
        sent = 0
        try:
            while sent < FLOOD:
                self.wfile.write(frame(chunk))
                sent += len(chunk)
        finally:
            self.server.sent[path] = sent
            self.server.flood_done.set()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    with serving(_Handler) as srv:
        srv.hosts, srv.sent = [], {}
        srv.stop, srv.flood_done = threading.Event(), threading.Event()
        yield srv
        srv.stop.set()  # releases handlers still stalling, before the server shuts down


@pytest.fixture
def base(server):
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("STUDIO_ALLOWED_HOSTS", "STUDIO_FETCH_TIMEOUT", "STUDIO_MAX_DOWNLOAD_BYTES"):
        monkeypatch.delenv(name, raising=False)


def _refused(url, status, *fragments, field="image_url"):
    with pytest.raises(InputError) as info:
        fetch_url(url, field=field)
    err = info.value
    assert err.status == status, str(err)
    assert err.field == field
    assert str(err).startswith(f"{field}: ")
    for fragment in fragments:
        assert fragment in str(err)
    return err


# --- the local server: refused by default, allowed by the opt-in ----------------------------------

def test_local_server_refused_by_default(base):
    _refused(f"{base}/img", 403, "address 127.0.0.1 is loopback", "STUDIO_ALLOWED_HOSTS")


@pytest.mark.parametrize("allowed", ["127.0.0.1", "127.0.0.0/8", "10.0.0.0/8, 127.0.0.1/32"])
def test_local_server_allowed_by_opt_in(base, monkeypatch, allowed):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", allowed)
    assert fetch_url(f"{base}/img", field="image_url") == PNG


def test_allowed_host_name(server, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "LocalHost")
    url = f"http://localhost:{server.server_address[1]}/img"
    assert fetch_url(url, field="image_url") == PNG
    # The same server by IP is still refused: only the name was allowed.
    _refused(url.replace("localhost", "127.0.0.1"), 403, "loopback")


def test_opt_in_for_one_network_does_not_open_others(base, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "10.0.0.0/8,192.168.0.0/16")
    _refused(f"{base}/img", 403, "127.0.0.1 is loopback")


# --- redirects ---------------------------------------------------------------------------------

def test_redirect_to_private_address_refused_at_that_hop(server, monkeypatch):
    # The first hop (by name) is allowed; its redirect to the same server by IP is not. Without a check
    # per hop the second request would reach the server and succeed.
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "localhost")
    port = server.server_address[1]
    err = _refused(f"http://localhost:{port}/to-ip", 403, "address 127.0.0.1 is loopback",
                   "after 1 redirect", field="dissolve_image_url")
    assert "Traceback" not in str(err)


def test_redirect_to_other_scheme_refused(base, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    _refused(f"{base}/to-file", 403, "redirect to a file: URL is not allowed")


def test_redirects_are_followed_up_to_the_cap(base, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    assert fetch_url(f"{base}/redirect/{MAX_REDIRECTS}", field="image_url") == PNG
    _refused(f"{base}/redirect/{MAX_REDIRECTS + 1}", 502, f"too many redirects (more than {MAX_REDIRECTS})")


# --- timeouts ----------------------------------------------------------------------------------

def test_slow_server_times_out(base, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("STUDIO_FETCH_TIMEOUT", "0.3")
    _refused(f"{base}/slow", 504, "did not deliver within 0.3 s")


def test_total_deadline_stops_a_dripping_server(base, monkeypatch):
    # Every byte arrives well within the read timeout; only a total deadline stops this.
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("STUDIO_FETCH_TIMEOUT", "0.5")
    _refused(f"{base}/drip", 504, "did not deliver within 0.5 s")


# --- byte cap, enforced while streaming --------------------------------------------------------

@pytest.mark.parametrize("path", ["/flood", "/flood-chunked"])
def test_byte_cap_enforced_while_streaming(server, base, monkeypatch, path):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("STUDIO_MAX_DOWNLOAD_BYTES", "100000")
    server.flood_done.clear()
    _refused(f"{base}{path}", 413, "larger than the download limit of 100,000 bytes")
    assert server.flood_done.wait(10)
    # The client hung up early: the server got rid of at most a few socket buffers, not the flood.
    assert server.sent[path] < FLOOD // 4


def test_declared_length_over_cap_refused_before_reading(server, base, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("STUDIO_MAX_DOWNLOAD_BYTES", "100000")
    server.flood_done.clear()
    _refused(f"{base}/huge-length", 413, "announces 1,000,000,000,000 bytes", "limit is 100,000 bytes")
    assert server.flood_done.wait(10)
    assert server.sent["/huge-length"] < FLOOD // 4


# --- content --------------------------------------------------------------------------------------

def test_non_image_refused(base, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    _refused(f"{base}/html", 415, "does not point to an image", "PNG, JPEG")


def test_upstream_http_error(base, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    _refused(f"{base}/missing", 502, "answered HTTP 404")


def test_connection_refused_is_502(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    _refused(f"http://127.0.0.1:{port}/img", 502, "could not connect")


# --- data: URIs ------------------------------------------------------------------------------------

def test_data_uri_base64():
    assert fetch_url("data:image/png;base64," + base64.b64encode(PNG).decode(), field="image_url") == PNG


def test_data_uri_base64_with_line_breaks_and_percent_escapes():
    encoded = base64.b64encode(PNG).decode()
    wrapped = "\n".join(encoded[i:i + 20] for i in range(0, len(encoded), 20)).replace("+", "%2B")
    assert fetch_url("data:image/png;base64," + wrapped, field="image_url") == PNG


def test_data_uri_percent_encoded():
    assert fetch_url("data:image/png," + urllib.parse.quote_from_bytes(PNG), field="image_url") == PNG


def test_data_uri_invalid_base64():
    _refused("data:image/png;base64,iVBOR!!w0KGgo", 400, "not valid base64")


def test_data_uri_without_comma():
    _refused("data:image/png;base64", 400, "malformed data: URI")


def test_data_uri_not_an_image():
    _refused("data:text/plain;base64," + base64.b64encode(b"hello world, not a picture").decode(),
             415, "does not point to an image")


def test_data_uri_over_cap(monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_DOWNLOAD_BYTES", str(len(PNG) - 1))
    _refused("data:image/png;base64," + base64.b64encode(PNG).decode(), 413,
             f"download limit of {len(PNG) - 1:,} bytes")


# --- schemes and URL forms -------------------------------------------------------------------------

@pytest.mark.parametrize("url, scheme", [
    ("file:///etc/passwd", "file:"), ("ftp://example.com/a.png", "ftp:"),
    ("gopher://127.0.0.1:6379/_INFO", "gopher:"), ("javascript:alert(1)", "javascript:"),
    ("FILE:///etc/passwd", "file:"),
])
def test_schemes_refused(url, scheme):
    _refused(url, 422, f"the URL scheme {scheme} is not allowed", "use http, https or a data: URI")


@pytest.mark.parametrize("url, message", [
    ("", "must be an http(s) URL or a data: URI"), ("   ", "must be an http(s) URL or a data: URI"),
    ("/etc/passwd", "this is not a URL"), ("example.com/a.png", "this is not a URL"),
    ("http://[::1", "the URL is malformed"), ("http://[zz]/", "the URL is malformed"),
    ("http://", "no host name"), ("http:///etc/passwd", "no host name"), ("http://a@/", "no host name"),
])
def test_not_a_url(url, message):
    _refused(url, 422, message)


def test_not_a_string():
    _refused(None, 422, "must be an http(s) URL or a data: URI")


@pytest.mark.parametrize("url, message", [
    ("http://[::1]:1/", "address ::1 is loopback"),
    ("http://[::ffff:127.0.0.1]/", "address ::ffff:127.0.0.1 maps to 127.0.0.1, which is loopback"),
    ("http://[::ffff:10.0.0.1]/", "maps to 10.0.0.1, which is private"),
    ("http://[fe80::1]/", "address fe80::1 is link-local"),
    ("http://[::]/", "address :: is unspecified"),
    ("http://[2002:7f00:1::]/", "maps to 127.0.0.1, which is loopback"),
    ("http://[64:ff9b::c0a8:1]/", "maps to 192.168.0.1, which is private"),
    ("http://[fd12::1]/", "is private"),
    ("http://[ff02::1]/", "is multicast"),
    ("http://2130706433/", "resolves to 127.0.0.1, which is loopback"),
    ("http://0x7f.1/", "resolves to 127.0.0.1, which is loopback"),
    ("http://0177.0.0.1/", "resolves to 127.0.0.1, which is loopback"),
    ("http://127.1/", "resolves to 127.0.0.1, which is loopback"),
    ("http://0.0.0.0/", "address 0.0.0.0 is unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is link-local"),
    ("http://10.0.0.1/", "is private"),
    ("http://192.168.1.1:8080/", "is private"),
    ("http://100.64.0.1/", "is not globally routable"),
    ("http://224.0.0.1/", "is multicast"),
    ("http://user:pw@127.0.0.1/", "address 127.0.0.1 is loopback"),
])
def test_private_address_forms_refused(url, message):
    _refused(url, 403, message, "STUDIO_ALLOWED_HOSTS")


def test_unresolvable_host():
    _refused("http://no-such-host.invalid/a.png", 400, "'no-such-host.invalid' could not be resolved")


def test_invalid_port():
    _refused("http://example.com:99999/a.png", 422, "invalid port")


# --- resolution: every address checked, and the connection pinned to a checked one ----------------

def _fake_resolver(monkeypatch, answers):
    """Make socket.getaddrinfo answer ``answers[host]`` (a list of IPs, or a list of lists consumed one
    call at a time); count the calls per host."""
    real = socket.getaddrinfo
    calls = {}

    def fake(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        calls[host] = calls.get(host, 0) + 1
        ips = answers[host]
        if isinstance(ips[0], list):
            ips = ips[min(calls[host], len(ips)) - 1]
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (ip, port)) for ip in ips]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return calls


def test_one_private_address_among_public_ones_refuses(monkeypatch):
    _fake_resolver(monkeypatch, {"multi.example": ["93.184.216.34", "10.1.2.3", "2606:2800::1"]})
    _refused("http://multi.example/a.png", 403, "host 'multi.example' resolves to 10.1.2.3, which is private")


def test_resolved_ipv6_private_refused(monkeypatch):
    _fake_resolver(monkeypatch, {"six.example": ["2606:2800::1", "::1"]})
    _refused("http://six.example/a.png", 403, "resolves to ::1, which is loopback")


def test_connection_goes_to_the_checked_address(server, monkeypatch):
    # First answer 127.0.0.1 (allowed), any later answer 127.0.0.2 (refused, and nothing listens there).
    # The fetch must resolve once and connect to what it checked, sending the name as Host.
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.1")
    calls = _fake_resolver(monkeypatch, {"pinned.example": [["127.0.0.1"], ["127.0.0.2"]]})
    port = server.server_address[1]
    assert fetch_url(f"http://pinned.example:{port}/img", field="image_url") == PNG
    assert calls["pinned.example"] == 1
    assert server.hosts[-1] == f"pinned.example:{port}"


def test_next_checked_address_tried_when_first_fails(server, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOWED_HOSTS", "127.0.0.0/8")
    _fake_resolver(monkeypatch, {"two.example": ["127.0.0.3", "127.0.0.1"]})
    assert fetch_url(f"http://two.example:{server.server_address[1]}/img", field="image_url") == PNG


# --- the classification itself --------------------------------------------------------------------

@pytest.mark.parametrize("address, reason", [
    ("8.8.8.8", None), ("93.184.216.34", None), ("2606:4700:4700::1111", None),
    ("64:ff9b::808:808", None), ("2002:808:808::1", None), ("::ffff:8.8.8.8", None),
    ("127.0.0.1", "is loopback"), ("127.255.255.254", "is loopback"), ("10.255.0.1", "is private"),
    ("172.16.5.4", "is private"), ("192.168.0.1", "is private"), ("169.254.0.1", "is link-local"),
    ("0.0.0.0", "is unspecified"), ("255.255.255.255", "is reserved"), ("240.0.0.1", "is reserved"),
    ("239.255.255.250", "is multicast"), ("100.64.0.1", "is not globally routable"),
    ("::1", "is loopback"), ("::", "is unspecified"), ("fe80::abcd", "is link-local"),
    ("fec0::1", "is site-local"), ("fc00::1", "is private"), ("ff05::2", "is multicast"),
    ("::7f00:1", "is reserved"), ("2001:db8::1", "is private"),
    ("::ffff:169.254.169.254", "maps to 169.254.169.254, which is link-local"),
    ("64:ff9b::7f00:1", "maps to 127.0.0.1, which is loopback"),
    ("2002:a00:1::", "maps to 10.0.0.1, which is private"),
])
def test_refusal_reason(address, reason):
    assert refusal_reason(ipaddress.ip_address(address)) == reason
