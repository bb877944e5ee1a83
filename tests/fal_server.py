"""Test helpers for the fal routes: ``python app.py`` as a subprocess over https with a throw-away CA.

:func:`make_tls` writes a private CA and a server certificate for ``127.0.0.1``/``localhost`` signed
by it (the ``cryptography`` package, nothing from the system store), as a user would make with
openssl. :class:`FalServer` launches the app exactly as a user does (``python app.py`` with
``STUDIO_SSL_CERTFILE``/``STUDIO_SSL_KEYFILE``), on a random port of 127.0.0.1, with its own
``STUDIO_DATA_DIR`` and an offline Hugging Face cache holding the tiny AuraSR checkpoints; it can be
killed with SIGKILL and started again on the same data directory (and port). :func:`python_client`
runs a script with the real ``fal_client`` in a fresh interpreter configured as the README says.
"""
from __future__ import annotations

import base64
import datetime
import io
import ipaddress
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from studio_server import free_port, write_tiny_aurasr_cache

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-key-0123456789"


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) PEM files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "studio test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
              .issuer_name(ca_name).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([
                  x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                  critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return paths


class FalServer:
    """``python app.py`` over https on a random port, with its data directory in ``folder``.

    ``env`` adds or overrides server environment variables (e.g. ``STUDIO_API_KEYS``).
    """

    def __init__(self, folder: Path, env: dict[str, str] | None = None):
        self.folder = folder
        self.ca, cert, key = make_tls(folder / "tls")
        hub = folder / "hub"
        if not hub.exists():
            write_tiny_aurasr_cache(hub)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1",
                    "GRADIO_SERVER_PORT": str(self.port), "GRADIO_ANALYTICS_ENABLED": "False",
                    "GRADIO_TEMP_DIR": str(folder / "gradio"), "STUDIO_DATA_DIR": str(folder / "data"),
                    "STUDIO_SSL_CERTFILE": str(cert), "STUDIO_SSL_KEYFILE": str(key),
                    "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1", "AURASR_DEVICE": "cpu",
                    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                    **(env or {})}
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> FalServer:
        """Start the server and wait until it answers (at most 120 s)."""
        self.starts += 1
        log = open(self.folder / f"server-{self.starts}.log", "wb")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "/config", verify=str(self.ca), timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the server did not start within 120 s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind happens in the server."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return (self.folder / f"server-{self.starts}.log").read_text(errors="replace")

    def http(self, key: str | None = KEY) -> httpx.Client:
        """An httpx client trusting the test CA, sending ``Authorization: Key <key>`` if ``key``."""
        headers = {"Authorization": f"Key {key}"} if key else {}
        return httpx.Client(base_url=self.url, verify=str(self.ca), headers=headers, timeout=120)


def gradient(size: int = 64) -> Image.Image:
    """The small test photo: a smooth RGB gradient (every effect changes it visibly)."""
    x, y = np.meshgrid(np.arange(size), np.arange(size))
    rgb = np.stack([x * 255 // (size - 1), y * 255 // (size - 1), (x + y) * 255 // (2 * size - 2)], -1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def python_client(server: FalServer, script: str, *, key: str = KEY, image: str = "",
                  timeout: float = 300) -> object:
    """Run ``script`` with the real ``fal_client`` in a fresh interpreter, configured by environment
    alone as the README says ("hosts" mode), and return what it returned, through JSON.

    ``script`` is the body of a function with ``fal_client`` and ``image_uri`` (``image``, e.g. a
    ``data:`` URI) in scope; it ``return``s a JSON-serialisable value. An exception inside becomes
    ``{"error": {type, message, status_code}}``, so tests can assert on errors the client raises.
    """
    program = textwrap.dedent('''
        import json, os
        import fal_client

        image_uri = os.environ["TEST_IMAGE_URI"]

        def main():
        {body}

        try:
            out = main()
        except Exception as exc:
            out = {{"error": {{"type": type(exc).__name__, "message": str(exc)[:2000],
                              "status_code": getattr(exc, "status_code", None)}}}}
        print(json.dumps(out))
    ''').format(body=textwrap.indent(textwrap.dedent(script), "    "))
    env = {**os.environ, "FAL_KEY": key, "FAL_RUN_HOST": f"127.0.0.1:{server.port}/fal/run",
           "FAL_QUEUE_RUN_HOST": f"127.0.0.1:{server.port}/fal/queue", "SSL_CERT_FILE": str(server.ca),
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "TEST_IMAGE_URI": image}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"the client script failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
