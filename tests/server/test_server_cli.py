"""`lcm-run serve` as a user starts it: loopback by default, the real node registry, the API
up, and a note on `/` when the editor package is not used."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from lcm_core.server.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def test_defaults_bind_loopback_only():
    args = build_parser().parse_args([])
    assert args.host == "127.0.0.1" and args.port == 8188 and args.preview_method == "auto"


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_lcm_run_serve_subprocess(tmp_path):
    command = [sys.executable, "-m", "lcm_core.graph.cli", "serve", "--port", "0", "--no-frontend",
               "--models-dir", str(tmp_path / "models"), "--input-dir", str(tmp_path / "in"),
               "--output-dir", str(tmp_path / "out"), "--user-dir", str(tmp_path / "user")]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()  # "lcm-run serve: API only (...) on http://127.0.0.1:PORT/"
        assert "lcm-run serve: API only" in line, line
        url = line.strip().rsplit(" ", 1)[-1].rstrip("/")
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _get(url + "/api/object_info")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "lcm-run serve did not answer within 60 s"
                time.sleep(0.2)
        info = json.loads(body)
        assert status == 200 and {"SaveImage", "LoadImage", "EmptyLatentImage"} <= set(info)
        status, page = _get(url + "/")
        assert status == 200 and b"comfyui-lcm[ui]" in page
        assert json.loads(_get(url + "/queue")[1]) == {"queue_running": [], "queue_pending": []}
    finally:
        server.terminate()
        server.wait(30)
