"""Test-wide environment: offline, no analytics, loopback without proxies, temp dirs per session."""
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the tests read lives in the repository (no ../shared): fal's API documents, ICC profiles...
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT))

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="gradio-tests-"))
os.environ.setdefault("STUDIO_DATA_DIR", tempfile.mkdtemp(prefix="studio-data-tests-"))  # fal job store
# The same results on a machine whose onnxruntime CUDA provider loads: the upscaler runs on CPU
# (batch 1) unless a test asks for another device itself.
os.environ["AURASR_DEVICE"] = "cpu"
