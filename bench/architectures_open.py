"""How long the Architectures page takes to draw everything it shows on opening, cold.

Each measurement runs in a fresh Python process (cold imports, empty caches): Streamlit is
imported first (the server has it loaded), then the clock runs while AppTest runs app.py and
switches to the page, until the page's script has finished. Baseline: the Home page, measured
the same way in the same run. The page must not import TensorFlow on opening; the bench
fails if it does.

Last line: ms=<Architectures page, median of 3 cold runs>.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CODE = """
import json, sys, time
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({app!r}, default_timeout=120)
start = time.perf_counter()
at.run()
if {page!r}:
    at.switch_page({page!r})
    at.run()
elapsed = time.perf_counter() - start
print(json.dumps({{"ms": 1000 * elapsed, "tensorflow": "tensorflow" in sys.modules,
                   "exceptions": [e.value for e in at.exception]}}))
"""


def cold_run(page: str) -> dict:
    code = CODE.format(app=str(ROOT / "app.py"), page=page)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    home, arch = [], []
    for _ in range(3):
        home.append(cold_run("")["ms"])
        result = cold_run("pages/architectures.py")
        if result["tensorflow"] or result["exceptions"]:
            raise SystemExit(f"the Architectures page imported TensorFlow or failed: {result}")
        arch.append(result["ms"])
    h, a = statistics.median(home), statistics.median(arch)
    print(f"home page (baseline): {h:.0f} ms; architectures page: {a:.0f} ms "
          f"(ratio {a / h:.2f}); TensorFlow imported on opening: no")
    print(f"ms={a:.0f}")


if __name__ == "__main__":
    main()
