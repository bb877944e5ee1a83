"""The "Show the request" panel: the current settings as a fal request body, as a ``gradio_client``
call of ``/process`` and as a ``curl`` call of ``POST /api/post-processing``."""
from __future__ import annotations

import json
import shlex
from collections.abc import Mapping

#: Where the snippets point; the page shows them for a local run, the README explains the rest.
SERVER = "http://127.0.0.1:7860"
EXAMPLE_IMAGE_URL = "https://example.com/photo.jpg"


def request_body(preset: Mapping) -> dict:
    """fal's request body for ``preset`` (a preset is a body without ``image_url``)."""
    return {"image_url": EXAMPLE_IMAGE_URL, **preset}


def request_snippets(preset: Mapping, server: str = SERVER) -> tuple[str, str, str]:
    """(fal JSON, Python ``gradio_client`` call, ``curl`` call) for the settings in ``preset``."""
    body = json.dumps(request_body(preset), indent=2)
    arguments = "".join(f"    {name}={value!r},\n" for name, value in preset.items())
    python = (
        "from gradio_client import Client, handle_file\n\n"
        f'client = Client("{server}/")\n'
        "png_path, output = client.predict(\n"
        '    image_url=handle_file("photo.jpg"),\n'
        f"{arguments}"
        '    api_name="/process",\n'
        ")\n"
    )
    curl = (f"curl -X POST {shlex.quote(server + '/api/post-processing')} \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            f"  -d {shlex.quote(json.dumps(request_body(preset)))}\n")
    return body, python, curl
