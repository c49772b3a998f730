"""`/schema`, `/schema/swagger` and `/schema/redoc` render offline: every asset they load
is iotledger's own.

A real headless Chromium renders each page against a running server with every other
host unresolvable, and the operations must be in the rendered DOM. Without Chromium
(`apt-get install -y chromium`) those tests are skipped, saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import uvicorn
from litestar.testing import TestClient

from iotledger.api.app import create_app
from iotledger.bootstrap import App
from tests.support.network import free_port

PAGES = ("/schema", "/schema/swagger", "/schema/redoc")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
"""Any host but this machine fails to resolve: a page that needs a CDN stays blank."""

Client = TestClient[object]


def loaded_urls(html: str) -> set[str]:
    return set(re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html))


@pytest.mark.parametrize("page", PAGES)
def test_a_documents_page_loads_nothing_from_another_host(client: Client, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    urls = loaded_urls(response.text)
    assert urls, "the page loads its assets"
    for url in urls:
        assert not urlsplit(url).netloc, url
        assert client.get(url).status_code == 200, url
    assert "fonts.googleapis" not in response.text


@pytest.fixture(scope="module")
def server(services: App) -> Iterator[str]:
    """The application served over TCP, as a browser reaches it."""
    port = free_port()
    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="error")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(10)


def rendered(url: str) -> str:
    """The DOM of `url` after its scripts ran, in a headless Chromium that reaches no
    other host."""
    if CHROMIUM is None:
        print("skipped: no Chromium on this machine (apt-get install -y chromium)")
        pytest.skip("no Chromium on this machine (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="iotledger-chromium-") as profile:
        command = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            OFFLINE,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
def test_swagger_ui_shows_the_operations_offline(server: str, page: str) -> None:
    dom = rendered(server + page)
    assert 'data-path="/api/v1/devices/{device_id}/telemetry"' in dom  # an operation's block
    assert 'data-path="/sensor-readings/{reading_id}"' in dom
    assert 'class="btn authorize' in dom  # the bearer scheme, for "Try it out"


def test_redoc_shows_the_operations_offline(server: str) -> None:
    dom = rendered(server + "/schema/redoc")
    assert 'role="menuitem" aria-label="List telemetry"' in dom  # the side menu's entry
    assert 'role="menuitem" aria-label="Device Telemetry: commands"' in dom
