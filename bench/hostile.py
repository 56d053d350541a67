"""Issue 15's hostile inputs, each against a wall-time and a peak-memory budget.

Every row of the issue's table is a case (plus two of its "also seen"), the input generated
at run time in a temporary folder (small on disk; row 9 unpacks 2 GB there and removes it).
Each case runs in a fresh child process:

- CLI cases run `python -m cnnlab ...` and measure that process: wall time and its peak
  resident memory (ru_maxrss from wait4, the whole interpreter), exit status and stderr.
- Core cases call today's functions in the child: time of the work, and the rise of the
  child's peak resident memory (VmHWM, reset through /proc/self/clear_refs once the input
  exists) over its resident memory before the work. Pillow's C allocations count (unlike
  tracemalloc's).

A case still running at its stop time (3x its time budget, at least 30 s) is killed and
shown as ">". The verdict column says whether the outcome is the one the issue asks for
(a one-line refusal, or a correct result). Last line: ratio=<worst measured / budget over
all cases>.

    python bench/hostile.py [--only TEXT] [--full]

--only runs the cases whose name contains TEXT; --full uses the issue's full sizes (row 1:
400 copies of the 50 MP PNG, and 19,990 copies of it for the image cap; the directory-entry
zip: 3 million entries) instead of scaled-down ones.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import io
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
GIB = 1024**3


# ------------------------------------------------------------------------ measuring

def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def measured(work: Callable[[], str], ok: Callable[[str], bool]) -> dict:
    """Run `work` (returns the outcome in one line); its time and peak memory rise, and
    whether `ok(outcome)`: the outcome the issue asks for."""
    gc.collect()
    try:  # hand freed heap back to the system, so that making the input does not hide
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # the work's own peak
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    except OSError:
        pass
    base = _status("VmRSS")
    start = time.perf_counter()
    try:
        outcome = work()
    except Exception as exc:  # today's function raised: that is the outcome
        outcome = f"raised {type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak": max(0, _status("VmHWM") - base), "outcome": outcome,
            "ok": bool(ok(outcome))}


def run_cli(*args: str, timeout: float = 600, expect_exit: int = 2) -> dict:
    """`python -m cnnlab ARGS` with its own time and peak memory, exit status and stderr."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    seconds = time.perf_counter() - start
    # The CLI is this case process's only child: the children's peak is its peak.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    noise = ("I0000", "W0000", "E0000", "WARNING: All log messages")  # TensorFlow's C++ log
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(noise)]
    traceback = "Traceback" in err
    if expect_exit == 2:  # a refusal: exit 2, one line, no traceback
        ok = proc.returncode == 2 and len(lines) == 1 and not traceback
    else:
        ok = proc.returncode == expect_exit and not traceback
    last = lines[-1] if lines else (out.splitlines() or [""])[-1]
    outcome = (f"exit {proc.returncode}, {len(lines)} stderr line(s)"
               f"{', a traceback' if traceback else ''}: {last[:150]}")
    return {"seconds": seconds, "peak": usage.ru_maxrss * 1024, "outcome": outcome,
            "ok": ok}


# ------------------------------------------------------------------------ inputs

def encode(img, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def bitmap_50mp() -> bytes:
    from PIL import Image

    return encode(Image.new("1", (7100, 7042), 1), "PNG", optimize=True)  # 50 MP, ~14 KB


def grey_49mp() -> bytes:
    from PIL import Image

    return encode(Image.new("L", (7000, 7000), 7), "PNG", optimize=True)  # 49 MP, ~60 KB


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression, compresslevel=9) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def tiny_pngs(prefix: str, n: int = 3) -> dict[str, bytes]:
    from PIL import Image

    return {f"{prefix}/{i}.png": encode(Image.new("RGB", (32, 32), (i * 40, 9, 9)), "PNG")
            for i in range(n)}


# ------------------------------------------------------------------------ cases

@dataclass
class Case:
    row: str
    name: str
    run: Callable[[Path, bool], dict]
    seconds: float               # wall-time budget
    memory: int                  # peak-memory budget, bytes
    extra: dict[str, float] = field(default_factory=dict)  # other budgets (disk, URL...)


def case_transfer_bitmaps(work: Path, full: bool) -> dict:
    """Row 1: a zip of copies of one 50 MP 1-bit PNG (the issue: 400 in 85 KB)."""
    from cnnlab.transfer import archive

    copies = 400 if full else 40
    png = bitmap_50mp()
    data = zip_of({f"{'ab'[i % 2]}/{i}.png": png for i in range(copies)})
    workspace = archive.SessionWorkspace(work)

    def load() -> str:
        folder = archive.load_zip(data, f"bitmaps-{copies}.zip", workspace)
        return f"{len(data) // 1024} KB zip of {copies} copies: accepted {len(folder)} images"

    # Asked for: refused from the headers (a pixel budget), not decoded one by one.
    return measured(load, lambda outcome: "megapixels" in outcome)


def case_transfer_image_cap(work: Path, full: bool) -> dict:
    """Row 1: more images than the 5,000 allowed (the issue: a 4.3 MB zip of 19,990 copies of
    the 50 MP PNG, 74 minutes of decoding before the cap). Small images here unless --full, so
    that the image count, not the pixel budget, is what refuses them: counted from the zip's
    directory, before anything is unpacked or decoded."""
    from PIL import Image

    from cnnlab.transfer import archive

    copies = 19_990 if full else 5_100
    png = bitmap_50mp() if full else encode(Image.new("RGB", (8, 8), (9, 9, 9)), "PNG")
    data = zip_of({f"{'ab'[i % 2]}/{i}.png": png for i in range(copies)})
    workspace = archive.SessionWorkspace(work)

    def load() -> str:
        folder = archive.load_zip(data, f"copies-{copies}.zip", workspace)
        return f"{len(data) / MB:.1f} MB zip of {copies:,} copies: accepted {len(folder)} images"

    # Asked for: refused from the zip's directory or the headers, before decoding any image.
    result = measured(load, lambda outcome: "refused before" in outcome)
    result["outcome"] = f"{len(data) / MB:.1f} MB, {copies:,} images: " + result["outcome"]
    return result


def _calculator(query: dict) -> tuple[object, str]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(query)
    at.run()
    at.switch_page("pages/calculator.py").run()
    if at.exception:
        first = at.exception[0]
        return at, f"an exception on the page: {first.value or first.message}"[:200]
    errors = [e.value for e in at.error]
    return at, ("one-line error: " + errors[0] if errors else "no error shown")


def case_markdown_link(work: Path, full: bool) -> dict:
    """Row 2: a shared link whose layer text is a Markdown image pointing elsewhere."""
    from markdown_it import MarkdownIt

    def open_link() -> str:
        at, outcome = _calculator({"layer": "![x](https:127.0.0.1:8599):8"})
        shown = [e.value for e in at.error] + [m.value for m in at.markdown]
        html = "".join(MarkdownIt("commonmark").render(text) for text in shown)
        rendered = [tag for tag in ("<img", "<a ") if tag in html]
        return (f"the page's Markdown renders {' and '.join(rendered)} from the link"
                if rendered else "shown as text, nothing rendered") + f" ({outcome[:90]})"

    return measured(open_link, lambda outcome: outcome.startswith("shown as text"))


def case_calculator(query: dict) -> Callable[[Path, bool], dict]:
    """Row 3: numbers out of range in a calculator link: one line, no traceback."""
    def run(work: Path, full: bool) -> dict:
        return measured(lambda: _calculator(query)[1],
                        lambda outcome: outcome.startswith("one-line error"))
    return run


def case_upload_limit(work: Path, full: bool) -> dict:
    """Row 4: the limit Streamlit enforces (server.maxUploadSize, for every uploader) against
    the largest the pages state (the Transfer page's zips)."""
    import tomllib

    def compare() -> str:
        enforced = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
        enforced = enforced.get("maxUploadSize", 200)
        from cnnlab.transfer import archive
        from cnnlab.vision import images

        stated = archive.MAX_ARCHIVE_MB
        verdict = "the same" if enforced == stated else "NOT the same: HTTP 413 in between"
        # The image uploaders refuse larger files in the browser (their max_upload_size),
        # with the uploader's one line "File must be 20.0MB or smaller." (e2e checked).
        image_mb = images.MAX_UPLOAD_BYTES // MB
        within = "within it" if image_mb <= enforced else "ABOVE IT"
        return (f"image uploaders refuse over {image_mb} MB in the browser ({within}); Streamlit "
                f"enforces {enforced} MB, the Transfer page states {stated} MB: {verdict}")

    return measured(compare, lambda outcome: outcome.endswith("the same")
                    and "ABOVE" not in outcome)


DECODE_INPUTS: dict[str, Callable[[], bytes]] = {}


def _decode_input(kind: str) -> tuple[bytes, str]:
    from PIL import Image

    if kind == "float-tiff":  # the issue: 298 KB, 49 MP, peaked 1,769 MB
        return encode(Image.new("F", (7000, 7000), 0.5), "TIFF",
                      compression="tiff_adobe_deflate"), "float.tif"
    if kind == "rgba-png":  # the issue: 190 KB, 971 MB
        return encode(Image.new("RGBA", (7000, 7000), (10, 20, 30, 128)), "PNG",
                      optimize=True), "rgba.png"
    if kind == "grey-png":  # the issue: 47 KB, 49 MP
        return grey_49mp(), "grey.png"
    if kind == "bitmap-png":  # the issue: 50 MP, 1 bit a pixel
        return bitmap_50mp(), "bitmap.png"
    if kind == "progressive-jpeg":
        return encode(Image.new("RGB", (7000, 7000), (90, 60, 30)), "JPEG",
                      progressive=True), "progressive.jpg"
    if kind == "16bit-png":
        return encode(Image.new("I;16", (7000, 7000), 300), "PNG", optimize=True), "scan.png"
    if kind == "apng":
        frames = [Image.new("RGBA", (7000, 7000), c) for c in ((1, 2, 3, 4), (9, 9, 9, 255))]
        return encode(frames[0], "PNG", save_all=True, append_images=frames[1:]), "anim.png"
    raise KeyError(kind)


def case_decode(*kinds: str) -> Callable[[Path, bool], dict]:
    """Row 5: images under the 50 MP cap decoded one at a time by the one decoder."""
    def run(work: Path, full: bool) -> dict:
        from cnnlab.vision import images

        inputs = [_decode_input(kind) for kind in kinds]

        def decode_all() -> str:
            outcomes = []
            for data, name in inputs:
                try:
                    img = images.decode_image(data, name)
                    outcomes.append(f"{name} {len(data) // 1024} KB -> {img.width}x{img.height}")
                    del img
                except images.ImageError as exc:
                    outcomes.append(f"refused: {exc}")
            return "; ".join(outcomes)

        return measured(decode_all, lambda outcome: "refused" not in outcome and
                        "raised" not in outcome)
    return run


def case_cli(*args: str, files: Callable[[Path], list[str]] | None = None,
             timeout: float = 600, expect_exit: int = 2) -> Callable[[Path, bool], dict]:
    def run(work: Path, full: bool) -> dict:
        return run_cli(*args, *(files(work) if files else []), timeout=timeout,
                       expect_exit=expect_exit)
    return run


def fifo(work: Path) -> list[str]:
    path = work / "x.png"
    os.mkfifo(path)
    return [str(path)]


def newline_name(work: Path) -> list[str]:
    path = work / "evil\nerror: fake.png"
    path.write_bytes(b"not an image")
    return [str(path)]


def twenty_copies(work: Path) -> list[str]:
    data = grey_49mp()
    paths = []
    for i in range(20):
        path = work / f"copy{i:02}.png"
        path.write_bytes(data)
        paths.append(str(path))
    weights = [] if os.environ.get("CNNLAB_INCEPTION_WEIGHTS") else ["--untrained"]
    return weights + ["--top", "1", *paths]


def case_session_disk(work: Path, full: bool) -> dict:
    """Row 9: two 1 MB zips that unpack to 1 GB each, into one session's workspace."""
    from cnnlab import budgets
    from cnnlab.transfer import archive

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in {**tiny_pngs("cats"), **tiny_pngs("dogs")}.items():
            zf.writestr(name, data)
        with zf.open("cats/padding.bin", "w", force_zip64=True) as entry:
            zeros = bytes(MB)
            for _ in range(999):
                entry.write(zeros)
    data = buffer.getvalue()
    workspace = archive.SessionWorkspace(work)

    def load_both() -> str:
        outcomes = []
        for name in ("first.zip", "second.zip"):
            try:
                archive.load_zip(data, name, workspace)
                outcomes.append(f"{name} accepted")
            except Exception as exc:
                outcomes.append(f"{name}: {exc}"[:120])
        held = budgets.folder_bytes(workspace.path)
        return f"{len(data) / MB:.2f} MB zips; " + "; ".join(outcomes) + \
            f"; the session holds {held / GIB:.2f} GB on disk"

    result = measured(load_both, lambda outcome: "second.zip accepted" not in outcome)
    result["disk"] = budgets.folder_bytes(workspace.path)
    workspace.cleanup()
    return result


def case_zip_names(work: Path, full: bool) -> dict:
    """Row 10: a 300-character folder name; a file and a folder of the same name."""
    from cnnlab.transfer import archive

    long_name = zip_of({**tiny_pngs("a" * 300), **tiny_pngs("b")})
    clash = zip_of({"cats": b"a file", **tiny_pngs("cats"), **tiny_pngs("dogs")})
    workspace = archive.SessionWorkspace(work)

    def load() -> str:
        outcomes = []
        for name, data in (("long.zip", long_name), ("clash.zip", clash)):
            try:
                archive.load_zip(data, name, workspace)
                outcomes.append(f"{name} accepted")
            except Exception as exc:
                leak = " [LEAKS A SERVER PATH]" if str(work) in str(exc) else ""
                outcomes.append(f"{str(exc)[:80]}{leak}")
        return " | ".join(outcomes)

    return measured(load, lambda outcome: "LEAKS" not in outcome and "Errno" not in outcome)


def case_ten_thousand_layers(work: Path, full: bool) -> dict:
    """Row 11: the calculator's text box with 10,000 layers: the URL it writes."""
    import urllib.parse

    from streamlit.testing.v1 import AppTest

    text = "\n".join(["conv:8:3:1:same"] * 10_000)

    def type_it() -> str:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page("pages/calculator.py").run()
        box = next(t for t in at.text_area if str(t.key).startswith("calc_text_"))
        box.input(text)
        next(b for b in at.button if "Use this text" in b.label).click().run()
        query = {key: at.query_params[key] for key in at.query_params}
        chars = len(urllib.parse.urlencode(query, doseq=True))
        errors = [e.value[:80] for e in at.error]
        return f"{chars:,}-character URL" + (f"; error: {errors[0]}" if errors else "") + \
            f"|{chars}"

    result = measured(type_it, lambda outcome: "|" in outcome and
                      (int(outcome.rpartition("|")[2]) <= 8_000 or "too large" in outcome))
    outcome, _, chars = result["outcome"].rpartition("|")
    if chars.isdigit():
        result["outcome"], result["url"] = outcome, int(chars)
    return result


def case_directory_entries(work: Path, full: bool) -> dict:
    """Also seen: a zip of millions of directory entries (the issue: 3 million, 164 MB)."""
    from cnnlab.transfer import archive

    count = 3_000_000 if full else 100_000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(count):
            zf.writestr(zipfile.ZipInfo(f"d{i}/"), b"")
    data = buffer.getvalue()
    workspace = archive.SessionWorkspace(work)

    def load() -> str:
        archive.load_zip(data, "dirs.zip", workspace)
        return f"{count:,} entries accepted"

    result = measured(load, lambda outcome: "entries" in outcome and "accepted" not in outcome)
    result["outcome"] = f"{len(data) / MB:.0f} MB zip: " + result["outcome"]
    return result


CASES = [
    Case("1", "transfer: copies of a 50 MP 1-bit PNG in one zip", case_transfer_bitmaps, 5, 300 * MB),
    Case("1", "transfer: more images than the 5,000 allowed", case_transfer_image_cap, 10,
         300 * MB),
    Case("2", "calculator link with a Markdown image", case_markdown_link, 10, 400 * MB),
    Case("3", "calculator link: conv with 10^22 filters",
         case_calculator({"input": "8x8x3", "layer": "conv:10000000000000000000000:3"}),
         10, 400 * MB),
    Case("3", "calculator link: zeropad:1 and 400 zeros",
         case_calculator({"layer": ["conv:8:3", "zeropad:1" + "0" * 400]}), 10, 400 * MB),
    Case("3", "calculator link: 10^6 x 10^6 x 3 input, batch 10^9",
         case_calculator({"input": "1000000x1000000x3", "batch": "1000000000"}), 10, 400 * MB),
    Case("4", "upload limit enforced vs stated", case_upload_limit, 1, 50 * MB),
    Case("5", "decode a 49 MP float TIFF", case_decode("float-tiff"), 10, 256 * MB),
    Case("5", "decode a 49 MP RGBA PNG", case_decode("rgba-png"), 10, 256 * MB),
    Case("5", "decode a 49 MP grey PNG", case_decode("grey-png"), 10, 256 * MB),
    Case("5", "decode a 50 MP 1-bit PNG", case_decode("bitmap-png"), 10, 256 * MB),
    Case("5", "decode a batch of 7 uploads, one at a time",
         case_decode("float-tiff", "rgba-png", "grey-png", "bitmap-png", "progressive-jpeg",
                     "16bit-png", "apng"), 30, 256 * MB),
    Case("6", "calc --gpu inf", case_cli("calc", "--input", "8x8x3", "--layer", "conv:8:3",
                                         "--gpu", "inf"), 5, 200 * MB),
    Case("6", "calc --gpu 1e300", case_cli("calc", "--input", "8x8x3", "--layer", "conv:8:3",
                                           "--gpu", "1e300"), 5, 200 * MB),
    Case("6", "calc --layer conv:1<400 zeros>:3",
         case_cli("calc", "--input", "8x8x3", "--layer", "conv:1" + "0" * 400 + ":3"), 5, 200 * MB),
    Case("7", "classify /dev/zero", case_cli("classify", "/dev/zero"), 3, 150 * MB),
    Case("7", "classify a FIFO named x.png", case_cli("classify", files=fifo, timeout=60), 3, 150 * MB),
    Case("7", "classify a name with a newline", case_cli("classify", files=newline_name), 3, 150 * MB),
    Case("7", "classify 20 copies of a 49 MP PNG (streamed)",
         case_cli("classify", files=twenty_copies, expect_exit=0), 90, 1536 * MB),
    Case("8", "train --seed 2**64", case_cli("train", "--seed", str(2**64), "--epochs", "1",
                                             timeout=120), 5, 200 * MB),
    Case("9", "two zips unpacking to 1 GB each", case_session_disk, 30, 300 * MB,
         {"disk": GIB}),
    Case("10", "zip names: 300 characters; file and folder alike", case_zip_names, 2, 100 * MB),
    Case("11", "calculator text box with 10,000 layers", case_ten_thousand_layers, 15, 800 * MB,
         {"url": 8_000}),
    Case("also", "zip of directory entries only", case_directory_entries, 2, 200 * MB),
]


# ------------------------------------------------------------------------ the two processes

def child(index: int, work: Path, full: bool) -> None:
    result = CASES[index].run(work, full)
    print(json.dumps(result))


def run_case(index: int, case: Case, full: bool) -> dict:
    stop = max(30.0, 3 * case.seconds)
    with tempfile.TemporaryDirectory(prefix="cnnlab-hostile-") as work:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(index), "--work", work]
            + (["--full"] if full else []),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        try:
            out, err = proc.communicate(timeout=stop)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the case and any CLI it started
            proc.communicate()
            return {"seconds": time.perf_counter() - start, "peak": None, "stopped": True,
                    "outcome": f"stopped after {stop:.0f} s", "ok": False}
    lines = out.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return {"seconds": float("nan"), "peak": None, "outcome": f"case failed: {tail}",
                "ok": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--full", action="store_true", help="the issue's full sizes")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.work, args.full)
        return
    print(f"{'row':>4}  {'case':<52} {'time s / budget':>16} {'peak MB / budget':>17}  "
          "verdict  outcome")
    worst, wrong = 0.0, []
    for index, case in enumerate(CASES):
        if args.only.lower() not in case.name.lower():
            continue
        result = run_case(index, case, args.full)
        ratios = [result["seconds"] / case.seconds]
        peak = result.get("peak")
        if peak is not None:
            ratios.append(peak / case.memory)
        extras = []
        for key, budget in case.extra.items():
            if key in result:
                ratios.append(result[key] / budget)
                extras.append(f"{key} {result[key]:,.0f}/{budget:,.0f}")
        ratio = max(r for r in ratios if r == r)  # NaN-free
        worst = max(worst, ratio)
        ok = result.get("ok", False)
        if not ok:
            wrong.append(case.row)
        mark = ">" if result.get("stopped") else " "
        memory = "?" if peak is None else f"{peak / MB:,.0f}"
        outcome = result["outcome"].replace("\n", "\\n")
        print(f"{case.row:>4}  {case.name[:52]:<52} {mark}{result['seconds']:6.1f} / {case.seconds:<6g}"
              f" {memory:>7} / {case.memory / MB:<7,.0f}  {'ok' if ok else 'WRONG':<7}  "
              f"{outcome[:220]}{'  [' + ', '.join(extras) + ']' if extras else ''}",
              flush=True)
    print(f"cases with a wrong outcome (rows): {', '.join(wrong) or 'none'}")
    print(f"ratio={worst:.2f}")


if __name__ == "__main__":
    main()
