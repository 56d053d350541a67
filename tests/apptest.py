"""Helpers for Streamlit AppTest page tests.

`run_isolated(page)` runs a page in a fresh Python process so a test can check which
modules it imported (TensorFlow must not load on pages that need no model).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

from streamlit.testing.v1 import AppTest

from tests import APP, ROOT

APP = str(APP)


def app_at(page: str | None = None, timeout: float = 30) -> AppTest:
    """An AppTest of the whole app (navigation included), switched to `page` and run."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def run_isolated(page: str, timeout: float = 60) -> dict:
    """Run `page` through AppTest in a new process; report exceptions and imported modules."""
    code = textwrap.dedent(
        f"""
        import json, sys
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({APP!r}, default_timeout={timeout})
        at.run()
        at.switch_page({page!r})
        at.run()
        print(json.dumps({{
            "exceptions": [e.value for e in at.exception],
            "tensorflow": "tensorflow" in sys.modules,
            "keras": "keras" in sys.modules,
            "titles": [t.value for t in at.title],
        }}))
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
        timeout=timeout * 3,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_until(at: AppTest, predicate, timeout: float = 120, run_timeout: float = 60,
              poll: float = 0.3) -> AppTest:
    """Rerun `at` (as a browser's fragment timer would) until `predicate(at)` holds;
    fail on any exception or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        at.run(timeout=run_timeout)
        assert not at.exception, [e.value for e in at.exception]
        if predicate(at):
            return at
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll)


def shown(markdown: str) -> str:
    """What a reader sees of Markdown that went through `cnnlab.ui.safe.plain`: backslash
    escapes resolved, invisible word joiners dropped."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def error_lines(at: AppTest) -> list[str]:
    """The st.error messages of a run, as a reader sees them."""
    return [shown(e.value) for e in at.error]
