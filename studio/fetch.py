"""Fetching `image_url` / `dissolve_image_url`: http(s) and ``data:`` URIs, safe against SSRF.

A URL given by a user makes *this server* open a connection, so every hop is checked:

* schemes: only ``http``, ``https`` and ``data:`` (422 otherwise);
* addresses: the host name is resolved once, **every** address it resolves to is classified, and
  loopback, private, link-local, site-local, multicast, unspecified, reserved and otherwise
  non-global ranges are refused (403), IPv4 and IPv6 alike; IPv4-mapped, 6to4 and NAT64 IPv6
  addresses are judged by the IPv4 address they embed. Odd IPv4 spellings (``2130706433``,
  ``0x7f.1``, ``0177.0.0.1``) need no special case: the system resolver turns them into the address
  that is then checked;
* the connection goes to one of the checked addresses (the network backend below resolves, checks and
  connects in one step), so a DNS answer that changes between check and connect cannot slip through;
  Host header and TLS SNI/certificate check still use the host name;
* redirects are followed by hand, at most :data:`MAX_REDIRECTS`, each hop checked like the first;
* a total deadline (``STUDIO_FETCH_TIMEOUT`` seconds, default 20; connecting at most 5 s) bounds every
  read and write, so a server dripping one byte at a time cannot hold a worker (504);
* a byte cap (``STUDIO_MAX_DOWNLOAD_BYTES``, default 50 MiB): a larger ``Content-Length`` is refused
  before reading, and the body is counted while streaming (413);
* the bytes must start like an image in an allowed format (415), checked as soon as the first bytes
  arrive.

``STUDIO_ALLOWED_HOSTS`` (comma-separated host names, IP addresses or CIDR networks) allows
addresses that would otherwise be refused, for private deployments. Environment proxies are ignored:
a proxy would resolve the name itself and defeat the address check.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
import string
import time
import urllib.parse
from dataclasses import dataclass

import httpcore

from common.env import env_list, env_number
from common.errors import InputError
from common.fields import QUOTE_LIMIT, quote
from imaging.decode import ALLOWED, sniff_format

MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 20.0
MAX_CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_SNIFF_BYTES = 16
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_OPT_IN = "set STUDIO_ALLOWED_HOSTS to allow it"

# Checked in this order, so the most specific reason is the one reported.
_REFUSED_KINDS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_site_local", "site-local"),
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class _Policy:
    allowed_names: frozenset[str]
    allowed_networks: tuple[IPNetwork, ...]
    timeout: float
    max_bytes: int


def fetch_url(url: str, *, field: str) -> bytes:
    """Return the bytes of the image at ``url`` (``http``, ``https`` or a ``data:`` URI).

    ``field`` names the request field in error messages. Raises :class:`InputError`: 422 malformed URL
    or scheme not allowed, 403 refused address (also after a redirect), 400 unresolvable host or bad
    ``data:`` URI, 413 larger than the byte cap, 415 not an image, 502 connection failure, upstream
    HTTP error or too many redirects, 504 timeout.
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError(field, "must be an http(s) URL or a data: URI", 422)
    url = url.strip()
    policy = _policy()
    scheme = _split(url, field).scheme.lower()
    if scheme == "data":
        data = _decode_data_uri(url, field)
    elif scheme in ("http", "https"):
        data = _fetch_http(url, field, policy)
    else:
        what = f"the URL scheme {_excerpt(scheme)}: is not allowed" if scheme else "this is not a URL"
        raise InputError(field, f"{what}; use http, https or a data: URI", 422)
    if len(data) > policy.max_bytes:
        raise _too_large(field, policy.max_bytes)
    if sniff_format(data[:_SNIFF_BYTES]) is None:
        raise InputError(field, f"the URL does not point to an image; expected {ALLOWED}", 415)
    return data


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched from by default ("is loopback", "maps to …, which is private"),
    or None for a globally routable address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = refusal_reason(embedded)
            return f"maps to {embedded}, which {reason}" if reason else None
    for attribute, kind in _REFUSED_KINDS:
        if getattr(ip, attribute, False):
            return f"is {kind}"
    return None if ip.is_global else "is not globally routable"


def _policy() -> _Policy:
    names, networks = set(), []
    for entry in env_list("STUDIO_ALLOWED_HOSTS"):
        entry = entry.lower().rstrip(".").removeprefix("[").replace("]", "")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry)
    return _Policy(frozenset(names), tuple(networks),
                   env_number("STUDIO_FETCH_TIMEOUT", DEFAULT_TIMEOUT, kind=float, minimum=0.001),
                   max_download_bytes())


def max_download_bytes() -> int:
    """The byte cap on one fetched image: env ``STUDIO_MAX_DOWNLOAD_BYTES`` or 50 MiB."""
    return env_number("STUDIO_MAX_DOWNLOAD_BYTES", DEFAULT_MAX_BYTES)




def _excerpt(text: str) -> str:
    """``text`` as it is when short, else a cut :func:`common.fields.quote` of it: error messages
    never echo more than about 100 characters of a client's value."""
    return text if len(text) <= QUOTE_LIMIT else quote(text)


def _too_large(field: str, max_bytes: int) -> InputError:
    return InputError(field, f"the image is larger than the download limit of {max_bytes:,} bytes", 413)


# --- data: URIs ------------------------------------------------------------------------------------

def _decode_data_uri(url: str, field: str) -> bytes:
    """RFC 2397: ``data:[<media type>][;base64],<data>``; the data is percent-encoded unless base64."""
    header, comma, payload = url[len("data:"):].partition(",")
    if not comma:
        raise InputError(field, "malformed data: URI; expected data:image/png;base64,<data>", 400)
    raw = urllib.parse.unquote_to_bytes(payload)
    if not header.lower().endswith(";base64"):
        return raw
    try:
        return base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(field, "the data: URI is not valid base64", 400) from None


# --- http(s) ------------------------------------------------------------------------------------------

def _fetch_http(url: str, field: str, policy: _Policy) -> bytes:
    deadline = time.monotonic() + policy.timeout
    backend = _CheckedBackend(field, policy, deadline)
    timeouts = {"connect": min(MAX_CONNECT_TIMEOUT, policy.timeout), "read": policy.timeout,
                "write": policy.timeout, "pool": policy.timeout}
    try:
        with httpcore.ConnectionPool(network_backend=backend, retries=0) as pool:
            for redirects in range(MAX_REDIRECTS + 1):
                backend.redirects = redirects
                url, host = _http_target(url, field)
                headers = [(b"Host", host.encode("ascii")), (b"Accept", b"image/*"),
                           (b"Accept-Encoding", b"identity"), (b"User-Agent", b"post-processing-studio")]
                with pool.stream("GET", url, headers=headers, extensions={"timeout": timeouts}) as resp:
                    if resp.status in _REDIRECT_STATUSES:
                        location = _header(resp, b"location")
                        if location is None:
                            raise InputError(field, f"HTTP {resp.status} redirect without a Location", 502)
                        url = urllib.parse.urljoin(url, location)
                        continue
                    if resp.status != 200:
                        raise InputError(field, f"the image server answered HTTP {resp.status}", 502)
                    return _read_capped(resp, field, policy.max_bytes)
    except httpcore.TimeoutException:
        raise InputError(field, f"the image server did not deliver within {policy.timeout:g} s", 504) from None
    except httpcore.ConnectError:
        raise InputError(field, "could not connect to the image server", 502) from None
    except (httpcore.NetworkError, httpcore.ProtocolError):
        raise InputError(field, "the connection to the image server failed", 502) from None
    raise InputError(field, f"too many redirects (more than {MAX_REDIRECTS})", 502)


def _http_target(url: str, field: str) -> tuple[str, str]:
    """Validate one hop's URL; return it ASCII-only and its Host header value."""
    url = urllib.parse.quote(url, safe=string.punctuation)
    parts = _split(url, field)
    if parts.scheme.lower() not in ("http", "https"):
        raise InputError(field, f"redirect to a {_excerpt(parts.scheme) or 'relative'}: URL is not "
                                "allowed", 403)
    try:
        parts.port
    except ValueError:
        raise InputError(field, "the URL has an invalid port", 422) from None
    if not parts.hostname:
        raise InputError(field, "the URL has no host name", 422)
    return url, parts.netloc.rpartition("@")[2]


def _split(url: str, field: str) -> urllib.parse.SplitResult:
    try:
        return urllib.parse.urlsplit(url)
    except ValueError:  # e.g. an unclosed or invalid [IPv6] host
        raise InputError(field, "the URL is malformed", 422) from None


def _header(resp: httpcore.Response, name: bytes) -> str | None:
    for key, value in resp.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _read_capped(resp: httpcore.Response, field: str, max_bytes: int) -> bytes:
    declared = _header(resp, b"content-length")
    declared = (declared or "").strip()
    if declared.isdigit() and int(declared[:20]) > max_bytes:  # 20 digits: beyond any cap already
        shown = f"{int(declared):,}" if len(declared) <= 20 else _excerpt(declared)
        raise InputError(field, f"the image server announces {shown} bytes; the download limit is "
                                f"{max_bytes:,} bytes", 413)
    body = bytearray()
    for chunk in resp.iter_stream():
        sniffed = len(body) >= _SNIFF_BYTES
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(field, max_bytes)
        # Refuse a web page or other non-image as soon as its first bytes arrive, not after the lot.
        if not sniffed and len(body) >= _SNIFF_BYTES and sniff_format(bytes(body[:_SNIFF_BYTES])) is None:
            raise InputError(field, f"the URL does not point to an image; expected {ALLOWED}", 415)
    return bytes(body)


def _checked_addresses(host: str, port: int, field: str, policy: _Policy, redirects: int) -> list[str]:
    """Resolve ``host`` once; refuse if any of its addresses is refused; return them all."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise InputError(field, f"the host name {quote(host)} could not be resolved", 400) from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    name_allowed = host.lower().rstrip(".") in policy.allowed_names
    for ip in addresses:
        if name_allowed or any(ip in net for net in policy.allowed_networks):
            continue
        reason = refusal_reason(ip)
        if reason is not None:
            where = f"address {host}" if _is_literal(host) else f"host {quote(host)} resolves to {ip}, which"
            hops = f" (reached after {redirects} redirect{'s' * (redirects > 1)})" if redirects else ""
            raise InputError(field, f"{where} {reason}{hops}; {_OPT_IN}", 403)
    return [str(ip) for ip in addresses]


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _remaining(deadline: float, timeout: float | None, expired: type[Exception]) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("deadline exceeded")
    return left if timeout is None else min(timeout, left)


class _CheckedBackend(httpcore.NetworkBackend):
    """httpcore network backend that connects only to checked addresses, within a total deadline.

    ``redirects`` is the number of redirects followed so far, for the error message.
    """

    def __init__(self, field: str, policy: _Policy, deadline: float):
        self._field, self._policy, self._deadline = field, policy, deadline
        self._inner = httpcore.SyncBackend()
        self.redirects = 0

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        failure = None
        for address in _checked_addresses(host, port, self._field, self._policy, self.redirects):
            try:
                stream = self._inner.connect_tcp(
                    address, port, _remaining(self._deadline, timeout, httpcore.ConnectTimeout),
                    local_address=local_address, socket_options=socket_options)
            except httpcore.ConnectError as exc:  # try the next address, like socket.create_connection
                failure = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise failure

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write is cut short at the fetch's total deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float):
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _remaining(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _remaining(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname,
                                      _remaining(self._deadline, timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


# --- other outbound requests to user-chosen URLs (webhooks) ----------------------------------------

def checked_pool(url: str, *, field: str, timeout: float) -> tuple[str, httpcore.ConnectionPool]:
    """For requests other than image fetches to user-chosen URLs (webhooks): ``url`` checked and made
    ASCII like a hop of an image fetch (422/403 :class:`InputError` naming ``field``), and a pool
    that connects only to addresses the policy above allows (403 otherwise), every read and write
    within ``timeout`` seconds in all, no retries. Redirects are the caller's business."""
    url, _ = _http_target(url, field)
    backend = _CheckedBackend(field, _policy(), time.monotonic() + timeout)
    return url, httpcore.ConnectionPool(network_backend=backend, retries=0)
