"""The app served as `make run` serves it, for benchmarks and browser tests.

`start_app_server()` runs `streamlit run app.py` from the project folder (so
`.streamlit/config.toml` applies) on a free loopback port, waits for `/_stcore/health`, yields
a `Server`, and stops it afterwards. `open_page` and `wait_for_app_run` drive a Playwright
page the way Streamlit's own e2e suite does (streamlit: e2e_playwright/conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright never downloads a browser here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
WATCHER_ON = ["--server.fileWatcherType", "auto", "--server.runOnSave", "true"]  # as `make dev`


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(port: int, watcher: bool = False) -> list[str]:
    """`make run`'s command (`make dev`'s with watcher=True), on loopback only."""
    return [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
            *(WATCHER_ON if watcher else []), "--server.address", "127.0.0.1"]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def rss_mb(self) -> float:
        """Resident memory of the server process (VmRSS in /proc/PID/status), in MB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1000

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far (/proc/PID/stat)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tensorflow_loaded(self) -> bool:
        """Whether the server process has TensorFlow's shared library mapped."""
        return "libtensorflow_framework" in Path(f"/proc/{self.proc.pid}/maps").read_text()


@contextlib.contextmanager
def start_app_server(env: dict[str, str] | None = None, *, watcher: bool = False,
                     timeout: float = 120, log: Path | None = None) -> Iterator[Server]:
    """The app on a free loopback port until the block ends; its output goes to `log`."""
    port = free_port()
    log = log or Path(tempfile.gettempdir()) / f"cnnlab-server-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    with open(log, "w") as out:
        proc = subprocess.Popen(serve_command(port, watcher), cwd=ROOT, env=full_env,
                                stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early (code {proc.returncode}); see {log}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(server.url + "/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit not healthy after {timeout:.0f} s; see {log}")
            time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def wait_for_app_run(page, timeout: float = 60_000) -> None:
    """Wait until the script has finished running and no skeleton is left."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                           timeout=timeout)
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0",
                           timeout=timeout)


def open_page(page, url: str, path: str = "", timeout: float = 60_000) -> None:
    """Open `url/path` (path as in the address bar, e.g. 'calculator') and wait for the run."""
    page.goto(f"{url}/{path}", timeout=timeout)
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    # The script state attribute appears once the websocket is connected.
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state]", timeout=timeout)
    wait_for_app_run(page, timeout)
