"""Click -> first point of the live curve on the Train page, in headless Chromium.

Each measurement serves the app as `make run` does (cnnlab.serving.start_app_server, a fresh
server process, CNNLAB_OFFLINE=1: the offline MNIST sample), opens /train, presses Train
with the seed's configuration and waits until the live chart's loss curve holds a point,
then presses Stop.

- cold: Train pressed as soon as the page has drawn (the warm-up has barely begun);
- warm: Train pressed once the server's warm-up (cnnlab/train/warmup.py) logged that it is
  done, on a server that has been up that long (`--warm-timeout` at most);
- with --baseline, also cold on a server with the warm-up off (CNNLAB_WARMUP=0): what a
  cold click cost before the warm-up existed.

Prints one line per measurement (wall seconds, and the server process's CPU seconds over the
same interval: on 2 shared cores the wall time follows the machine's load, the CPU time
much less), then the last line `ratio=warm/cold` (wall).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnlab.serving import CHROMIUM, CHROMIUM_ARGS, open_page, start_app_server  # noqa: E402

LOGS = ROOT / "artifacts" / "bench"
DONE_LINE = "cnnlab warm-up: done"
# Points of the live loss curve: its first trace (cnnlab.train.charts.live_figure).
POINTS_JS = """() => {
    const plot = document.querySelector(".st-key-live_chart .js-plotly-plot")
        || document.querySelector("[data-testid='stPlotlyChart'] .js-plotly-plot");
    return plot && plot.data && plot.data.length ? plot.data[0].x.length : 0;
}"""


def wait_for_warmup(log: Path, timeout: float) -> float | None:
    """Seconds waited until the server logged the warm-up's end (None: not within timeout)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        text = log.read_text(errors="replace") if log.exists() else ""
        if DONE_LINE in text:
            return time.monotonic() - t0
        if "cnnlab warm-up: failed" in text:
            raise RuntimeError(text[text.index("cnnlab warm-up: failed"):][:300])
        time.sleep(0.5)
    return None


def click_to_first_point(browser, server, timeout: float = 300) -> tuple[float, float]:
    """(wall seconds, server CPU seconds) from the click to the first point."""
    url = server.url
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_page(page, url, "train")
        button = page.get_by_role("button", name="Train", exact=True)
        button.wait_for(timeout=60_000)
        t0, cpu0 = time.perf_counter(), server.cpu_s()
        button.click()
        while page.evaluate(POINTS_JS) < 1:
            failed = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
            if failed.count():
                raise RuntimeError(f"the run failed: {failed.first.inner_text()[:300]}")
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"no point on the live curve {timeout:.0f} s after the click")
            page.wait_for_timeout(25)
        elapsed, cpu = time.perf_counter() - t0, server.cpu_s() - cpu0
        with contextlib.suppress(Exception):   # end the run: the next server starts on idle cores
            page.locator(".st-key-stop button").click(timeout=10_000)
            page.wait_for_timeout(1000)
        return elapsed, cpu
    finally:
        page.close()


def measure(browser, name: str, env: dict[str, str], warm_timeout: float | None) -> float:
    slug = "-".join("".join(c if c.isalnum() else " " for c in name).split())
    log = LOGS / f"first_curve-{slug}-{time.time_ns()}.log"
    started = time.monotonic()
    with start_app_server({"CNNLAB_OFFLINE": "1", **env}, log=log) as server:
        waited = ""
        if warm_timeout is not None:
            # The warm-up starts with the first script run: a visitor opening Home.
            page = browser.new_page()
            open_page(page, server.url, "")
            page.close()
            seconds = wait_for_warmup(log, warm_timeout)
            waited = (f", warm-up done {seconds:.1f} s after Home was opened" if seconds is not None
                      else f", warm-up NOT done after {warm_timeout:.0f} s")
        up = time.monotonic() - started
        load = os.getloadavg()[0]
        seconds, cpu = click_to_first_point(browser, server)
        print(f"{name}: click -> first point {seconds:.2f} s, {cpu:.1f} s of server CPU (server "
              f"up {up:.0f} s before the "
              f"click{waited}; load average {load:.1f} on {os.cpu_count()} CPUs; TensorFlow "
              f"loaded: {server.tensorflow_loaded()})", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-timeout", type=float, default=240,
                        help="at most this long to wait for the warm-up (s)")
    parser.add_argument("--baseline", action="store_true",
                        help="also cold with the warm-up off (CNNLAB_WARMUP=0)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    LOGS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            if args.baseline:
                measure(browser, "cold, warm-up off", {"CNNLAB_WARMUP": "0"}, None)
            cold = measure(browser, "cold", {"CNNLAB_WARMUP": "1"}, None)
            warm = measure(browser, "warm", {"CNNLAB_WARMUP": "1"}, args.warm_timeout)
        finally:
            browser.close()
    print(f"cold_s={cold:.2f} warm_s={warm:.2f}")
    print(f"ratio={warm / cold:.3f}")


if __name__ == "__main__":
    main()
