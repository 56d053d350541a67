"""A class on one server: how fast every page is for a room of students, measured before class.

Starts the app as `make run` does (`streamlit run app.py` with the repo's .streamlit/config.toml,
on a free loopback port), warms it as a lecture does (one real training run through the Train
page's widgets, so TensorFlow is loaded), then drives sessions through Streamlit's own
websocket protocol (BackMsg/ForwardMsg over /_stcore/stream; no browser, so the client does not
eat the server's CPU). Per page it prints a new session's first-run latency, rerun latency
p50/p95 inside one session, and N sessions opening the page at once (time until the last is
served, page loads per second); then the same first runs on a server that never loaded
TensorFlow (the baseline: goal <= 1.5x). `--train N`: N sessions press Train within a second
(3 epochs, offline sample) against one run alone; `--ttl S`: server RSS before they came and
after they closed and CNNLAB_RUN_TTL=S passed. Exceptions shown on any page are counted.

    python bench/load.py                                   # every page, N = 10, 50, 100
    python bench/load.py --pages calculator,architectures --sessions 20,100 --watcher on
    python bench/load.py --pages home --sessions 10 --train 10 --ttl 20

Every run's latency includes one delayed-ACK wait (about 40 ms on Linux loopback; a browser
waits too): Streamlit 1.67 binds its socket with proto 0, so asyncio leaves Nagle on for its
connections. The server's CPU time per page load does not include it.

Last line: loads_per_s=<Home, N sessions at once, largest N>.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from load_client import (
    PAGES,
    Server,
    class_presses_train,
    first_and_reruns,
    open_at_once,
    press_train,
    serve,
)

# ---- the report --------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{1000 * seconds:,.0f} ms"


def pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def measure_pages(server: Server, pages: list[str], sizes: list[int], firsts: int,
                  reruns: int, exceptions: dict[str, int]) -> dict:
    """Per page: first runs of new sessions, reruns in one session, N sessions at once. Wall
    times, and the server's CPU time per page load (less sensitive to other work on the
    machine: on an idle machine N loads take at least N x that, the GIL serializing them)."""
    figures, url = {}, server.url
    for page in pages:
        warm = asyncio.run(first_and_reruns(url, page, 1, 0))      # the page's modules load once
        cpu = server.cpu_s()
        fr = asyncio.run(first_and_reruns(url, page, firsts, 0))
        cpu_first = (server.cpu_s() - cpu) / firsts
        first = statistics.median(fr["first"])
        line = (f"{page:13s} first run {ms(first)} (median of {firsts} new sessions; server "
                f"CPU {ms(cpu_first)} each)")
        again = asyncio.run(first_and_reruns(url, page, 1, reruns)) if reruns else fr
        phases = [warm, fr, again] if reruns else [warm, fr]
        exceptions[page] = exceptions.get(page, 0) + sum(len(x["exceptions"]) for x in phases)
        if reruns:
            times = again["reruns"]
            line += f"; reruns p50 {ms(pct(times, 50))}, p95 {ms(pct(times, 95))}"
        print(line, flush=True)
        figures[page] = {"first": first, "reruns": again["reruns"]}
        for n in sizes:
            cpu, client = server.cpu_s(), time.process_time()
            at_once = asyncio.run(open_at_once(url, page, n))
            exceptions[page] += len(at_once["exceptions"])
            rate = at_once["served"] / at_once["seconds"]
            cpu, client = server.cpu_s() - cpu, time.process_time() - client
            print(f"{'':13s} {n:4d} sessions at once: last served after "
                  f"{at_once['seconds']:.2f} s, {rate:.1f} page loads/s; server CPU "
                  f"{ms(cpu / n)} per load (client {ms(client / n)})"
                  + (f", {n - at_once['served']} FAILED: {at_once['failures'][:2]}"
                     if at_once["failures"] else ""), flush=True)
            figures[page][n] = rate
    return figures


def report_train(url: str, server: Server, n: int, ttl: float | None) -> None:
    rss_before = server.rss_mb()
    solo = asyncio.run(press_train(url, 3, timeout=900))
    if solo.error:
        raise SystemExit(f"one training run alone failed: {solo.error}")
    slots = solo.slots or 1
    timeout = 120 + 3 * n * solo.seconds / slots
    start = time.perf_counter()
    outcomes = asyncio.run(class_presses_train(url, n, 3, timeout))
    done = [o for o in outcomes if o.test_accuracy]
    last = max((o.seconds for o in done), default=float("nan"))
    print(f"train: one run alone (3 epochs) {solo.seconds:.1f} s, test accuracy "
          f"{solo.test_accuracy}; {slots} slots (CNNLAB_MAX_JOBS)")
    print(f"train: {n} sessions pressed Train within a second: {len(done)}/{n} finished, the "
          f"last {last:.1f} s after its press (whole phase {time.perf_counter() - start:.0f} s) "
          f"vs {n} x {solo.seconds:.1f} s / {slots} = {n * solo.seconds / slots:.1f} s "
          f"(ratio {last / (n * solo.seconds / slots):.2f}; {last / (n * solo.seconds):.2f} "
          f"against {n} runs one after another)")
    queued = [o for o in outcomes if o.queue_positions]
    print(f"train: {len(queued)} sessions showed a queue position while waiting (at least "
          f"{max(n - slots, 0)} had to wait); positions seen: "
          f"{sorted({p for o in outcomes for p in o.queue_positions})}")
    ids = [o.run_ids for o in done]
    own_only = all(len(r) == 1 for r in ids) and len({r[0] for r in ids if r}) == len(ids)
    print(f"train: each page lists only its own run: {'yes' if own_only else 'NO'}; saw a run "
          f"before pressing: {sum(o.saw_a_run_before_pressing for o in outcomes)}")
    same_acc = sum(o.test_accuracy == solo.test_accuracy for o in done)
    same_curve = sum(o.curve == solo.curve for o in done)
    print(f"train: same seed, same figures as the run alone: test accuracy {same_acc}/{len(done)}"
          f", loss curve {same_curve}/{len(done)}; accuracies seen: "
          f"{sorted({o.test_accuracy for o in done})}")
    for o in outcomes:
        if o.error:
            print(f"train: a session failed: {o.error}")
    excs = [e for o in outcomes + [solo] for e in o.exceptions]
    if excs:
        print(f"train: {len(excs)} exceptions on the Train page: {excs[:3]}")
    print(f"memory: server RSS {rss_before:,.0f} MB before these {n + 1} runs, "
          f"{server.rss_mb():,.0f} MB once all had finished (sessions still open)")
    if ttl is not None:
        # The sessions have closed: the manager's sweeper drops what the TTL let go within a
        # quarter of the TTL. Streamlit keeps a closed session (and what its state holds) for
        # server.disconnectedSessionTTL = 120 s in case it reconnects; its owner is released
        # min(30 s, TTL) after that.
        waits = [ttl + 5, 1.5 * ttl + 15, 120 + min(30.0, ttl) + 15]
        slept = 0.0
        for wait in waits:
            time.sleep(wait - slept)
            slept = wait
            after = server.rss_mb()
            print(f"memory: {after:,.0f} MB {wait:g} s after all closed "
                  f"(CNNLAB_RUN_TTL={ttl:g} s): {after - rss_before:+,.0f} MB vs before "
                  f"(goal: within 200 MB)", flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", default=",".join(PAGES),
                   help=f"comma-separated, from {', '.join(PAGES)}; '' for none")
    p.add_argument("--sessions", default="10,50,100", help="N sessions opening a page at once")
    p.add_argument("--firsts", type=int, default=5, help="new sessions timed per page (median)")
    p.add_argument("--reruns", type=int, default=20, help="reruns timed inside one session")
    p.add_argument("--train", type=int, default=0, metavar="N",
                   help="N sessions press Train within a second (3 epochs, offline sample)")
    p.add_argument("--ttl", type=float, default=None, metavar="SECONDS",
                   help="CNNLAB_RUN_TTL for the server; RSS is read after it passed")
    p.add_argument("--watcher", choices=["on", "off"], default="off",
                   help="on: Streamlit's file watcher on, as `make dev` (the old default)")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the server that never loaded TensorFlow")
    args = p.parse_args(argv)
    pages = [x.strip() for x in args.pages.split(",") if x.strip()]
    sizes = [int(x) for x in args.sessions.split(",") if x.strip().isdigit() and int(x) > 0]
    if unknown := [x for x in pages if x not in PAGES]:
        raise SystemExit(f"--pages: unknown page {unknown[0]!r}; choose from {', '.join(PAGES)}")
    if not sizes or len(sizes) != len(args.sessions.split(",")) or args.firsts < 1 \
            or min(args.reruns, args.train) < 0:
        raise SystemExit("--sessions takes numbers >= 1 like 10,50,100; --firsts >= 1; "
                         "--reruns and --train >= 0")
    if args.ttl is not None and not args.train:
        raise SystemExit("--ttl measures memory after a --train N class has left: add --train")
    watcher = args.watcher == "on"
    env = {"CNNLAB_RUN_TTL": f"{args.ttl:g}"} if args.ttl is not None else {}
    print(f"load benchmark: file watcher {args.watcher}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} (other work on this machine skews the figures)", flush=True)
    exceptions: dict[str, int] = {}
    with serve(watcher, env) as server:
        print(f"server up: {server.url}, RSS {server.rss_mb():,.0f} MB", flush=True)
        warm = asyncio.run(press_train(server.url, 1, timeout=900))
        if warm.error:
            raise SystemExit(f"the warm-up training run failed: {warm.error}; see {server.log}")
        print(f"warm-up: one training run (1 epoch) finished in {warm.seconds:.1f} s; "
              f"TensorFlow loaded: {server.tensorflow_loaded()}; RSS {server.rss_mb():,.0f} MB",
              flush=True)
        with_tf = measure_pages(server, pages, sizes, args.firsts, args.reruns, exceptions)
        if "home" not in pages:
            home = asyncio.run(open_at_once(server.url, "home", max(sizes)))
            with_tf["home"] = {max(sizes): home["served"] / home["seconds"]}
            exceptions["home"] = len(home["exceptions"])
        if args.train:
            report_train(server.url, server, args.train, args.ttl)
    if not args.no_baseline and pages:
        print("-- a server that never loaded TensorFlow (first runs only)", flush=True)
        # CNNLAB_WARMUP=0: the server's warm-up would import TensorFlow in the background.
        with serve(watcher, {**env, "CNNLAB_WARMUP": "0"}) as server:
            cold = measure_pages(server, pages, [], args.firsts, 0, exceptions)
            print(f"TensorFlow loaded by opening these pages: {server.tensorflow_loaded()}")
        for page in pages:
            ratio = with_tf[page]["first"] / cold[page]["first"]
            print(f"{page:13s} first run with TensorFlow loaded / without: {ratio:.2f}x "
                  f"(goal <= 1.5x)")
    bad = {k: v for k, v in exceptions.items() if v}
    print(f"exceptions shown on pages: {sum(bad.values())}" + (f" {bad}" if bad else ""))
    print(f"loads_per_s={with_tf['home'][max(sizes)]:.1f}")


if __name__ == "__main__":
    main()
