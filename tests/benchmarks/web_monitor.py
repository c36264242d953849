"""Web monitor benchmark: what watching a Runtime costs, and how fast the monitor is.

    python tests/benchmarks/web_monitor.py [--jobs 1000] [--clients 50] [--rounds 3]
                                           [--store-jobs 100000] [--smoke]

1. **Throughput with the monitor attached.** A Runtime (SQLite store) runs
   ``--jobs`` jobs of a 3-routine flow (a source emitting ``--messages`` items, a
   relay, a sink), once bare and once serving HTTP with ``--clients`` SSE clients
   connected (in a separate process, as browsers would be). Two kinds of clients:
   ``page`` asks for what the job list asks for (job and replica events), ``steps``
   asks for every event, step events included (as many open job pages would).
   Rounds alternate bare / page / steps; the ratio is the median of the per-round
   ratios (monitored / bare jobs per second).
2. **SSE latency**: from the bus publishing an event to a client reading it. One
   sample per read of a client, for the oldest event in it (the longest wait).
3. **/api/jobs latency** with ``--store-jobs`` finished jobs in the store: first
   page, a deep page, a status filter, a flow filter, a search and a time window.
4. **Server RSS**: the process hosting the Runtime and the server, idle, after the
   monitored runs, and serving the big store.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from chain_routines import Relay, Sink, Source  # this directory: run as a script

from routilux import Flow, Runtime
from routilux.checkpoint.format import encode

PAGE_KINDS = "job.submitted,job.paused,job.resumed,job.finished,routine.restarted"


def bench_flow() -> Flow:
    flow = Flow("bench", execution_strategy="concurrent", record_history=False)
    flow.add_routine(Source(), "source")
    flow.add_routine(Relay(), "relay")
    flow.add_routine(Sink(), "sink")
    flow.connect("source", "out", "relay", "inp")
    flow.connect("relay", "out", "sink", "inp")
    return flow


# ------------------------------------------------------------------ SSE clients
def client_main(url: str, count: int, kinds: str) -> None:
    """In its own process: ``count`` SSE clients; prints ``ready``, then on a line
    on stdin prints one JSON line of what they read (events, latency percentiles)."""
    latencies: list[float] = []
    received = [0]

    async def one(ready: asyncio.Event, connected: list[int]) -> None:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        query = f"?kinds={kinds}" if kinds else ""
        writer.write(f"GET /api/events{query} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        await writer.drain()
        connected[0] += 1
        if connected[0] == count:
            ready.set()
        marker = b'"time":'
        rest = b""
        while True:
            data = await reader.read(1 << 16)
            if not data:
                return
            now = time.time()
            buffer = rest + data
            cut = buffer.rfind(b"\n\n") + 2
            whole, rest = buffer[:cut], buffer[cut:]
            events = whole.count(b"\ndata: ") + whole.startswith(b"data: ")
            if not events:
                continue
            received[0] += events
            # One sample per read: the oldest event in it (the longest wait).
            at = whole.find(marker) + len(marker)
            latencies.append(now - float(whole[at : whole.find(b",", at)]))

    async def run() -> None:
        ready = asyncio.Event()
        connected = [0]
        tasks = [asyncio.create_task(one(ready, connected)) for _ in range(count)]
        await ready.wait()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for task in tasks:
            task.cancel()
        ordered = sorted(latencies)
        pick = (
            (lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))])
            if ordered
            else (lambda q: None)
        )
        print(json.dumps({"events": received[0], "p50": pick(0.5), "p99": pick(0.99)}), flush=True)

    asyncio.run(run())


class Clients:
    """The client process, seen from the benchmark."""

    def __init__(self, url: str, count: int, kinds: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, __file__, "--client", url, str(count), kinds],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.popen.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"SSE clients did not start ({line!r})")

    def finish(self) -> dict:
        self.popen.stdin.write("stop\n")
        self.popen.stdin.flush()
        result = json.loads(self.popen.stdout.readline())
        self.popen.wait(30)
        return result


# ------------------------------------------------------------------ throughput
def one_round(folder: Path, jobs: int, messages: int, clients: int, kinds: str | None) -> dict:
    """Jobs per second of one run; with ``kinds`` (None: no monitor) SSE clients listen."""
    store = folder / f"round-{time.monotonic_ns()}.sqlite3"
    runtime = Runtime(store)
    watchers = None
    try:
        runtime.add_flow(bench_flow())
        warm = runtime.submit("bench", "source", {"n": messages})
        runtime.wait(warm, 60)
        if kinds is not None:
            url = runtime.serve_http("127.0.0.1", 0)
            watchers = Clients(url, clients, kinds)
            wanted = {"job.submitted"} | ({"step.started"} if kinds == "" else set())
            deadline = time.monotonic() + 30
            while not wanted <= runtime.bus.wanted:  # the hub subscribed
                if time.monotonic() > deadline:
                    raise RuntimeError("the monitor never subscribed to the bus")
                time.sleep(0.01)
        started = time.perf_counter()
        submitted = [runtime.submit("bench", "source", {"n": messages}) for _ in range(jobs)]
        if not runtime.wait_all(300):
            raise RuntimeError("jobs did not finish within 300 s")
        elapsed = time.perf_counter() - started
        if any(job.status != "completed" for job in submitted):
            raise RuntimeError("a job did not complete")
        result = {"jobs_per_s": jobs / elapsed, "rss": psutil.Process().memory_info().rss}
        if watchers is not None:
            time.sleep(0.5)  # the last writes (one per client per 50 ms) reach the clients
            result["sse"] = watchers.finish()
            watchers = None
        return result
    finally:
        if watchers is not None:
            watchers.popen.kill()
        runtime.shutdown()


# ------------------------------------------------------------------ listing latency
def fill_store(path: Path, count: int) -> None:
    """``count`` finished jobs' listing rows, written through the store's own API."""
    runtime = Runtime(path)
    store = runtime.store
    now = time.time()
    batch = 5000
    for start in range(0, count, batch):
        rows = []
        for i in range(start, min(start + batch, count)):
            status = "failed" if i % 10 == 3 else "cancelled" if i % 50 == 7 else "completed"
            created = now - (count - i) * 0.5
            row = {
                "job_id": f"job-{i:07d}",
                "status": status,
                "created_at": created,
                "updated_at": created + 0.2,
                "finished_at": created + 0.2,
            }
            if status == "failed":
                row["error"] = f"ValueError: bad record {i}"
            rows.append(row)
        flow = ("ingest", "report", "billing")[start // batch % 3]
        store.save(flow, encode(flow, b"cut", store.key), rows)
    runtime.shutdown()


def listing_latency(path: Path, count: int, repeat: int) -> tuple[dict, int]:
    """p50/p99 milliseconds of GET /api/jobs queries; the server's RSS afterwards."""
    runtime = Runtime(path)
    try:
        url = runtime.serve_http("127.0.0.1", 0)
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        middle = time.time() - count * 0.25
        queries = {
            "first page": "/api/jobs",
            f"page at offset {count // 2:,}": f"/api/jobs?offset={count // 2}",
            "status=failed": "/api/jobs?status=failed",
            "flow=billing": "/api/jobs?flow=billing",
            "search q=record 4242": "/api/jobs?q=record%204242",
            "one-hour window": f"/api/jobs?since={middle}&until={middle + 3600}",
        }
        figures = {}
        for name, path_query in queries.items():
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                conn.request("GET", path_query)
                response = conn.getresponse()
                body = json.loads(response.read())
                times.append((time.perf_counter() - started) * 1000)
                if response.status != 200:
                    raise RuntimeError(f"{path_query}: {response.status} {body}")
            times.sort()
            figures[name] = (
                times[len(times) // 2],
                times[min(len(times) - 1, int(0.99 * len(times)))],
                body["total"],
            )
        conn.close()
        return figures, psutil.Process().memory_info().rss
    finally:
        runtime.shutdown()


# ------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10, help="items per job")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store-jobs", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.clients, args.rounds, args.store_jobs = 20, 3, 1, 2000
    mib = 1 << 20
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    idle_rss = psutil.Process().memory_info().rss
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows: dict[str, list] = {"bare": [], "page": [], "steps": []}
        for _ in range(args.rounds):
            for name, kinds in (("bare", None), ("page", PAGE_KINDS), ("steps", "")):
                rows[name].append(one_round(folder, args.jobs, args.messages, args.clients, kinds))
        bare = [r["jobs_per_s"] for r in rows["bare"]]
        print(
            f"\n{args.jobs} jobs x {args.messages} items, {args.clients} SSE clients, "
            f"{args.rounds} round(s); jobs/s (median):"
        )
        print(f"  no monitor                      {statistics.median(bare):8.1f}")
        for name, title in (("page", "job-list clients"), ("steps", "all-events clients")):
            speed = [r["jobs_per_s"] for r in rows[name]]
            ratio = statistics.median(s / b for s, b in zip(speed, bare, strict=True))
            p50 = statistics.median(r["sse"]["p50"] for r in rows[name])
            p99 = statistics.median(r["sse"]["p99"] for r in rows[name])
            events = statistics.median(r["sse"]["events"] for r in rows[name])
            print(
                f"  monitor + {args.clients} {title:21s} {statistics.median(speed):8.1f}  "
                f"ratio {ratio:.3f}  SSE latency p50 {p50 * 1000:.1f} ms, "
                f"p99 {p99 * 1000:.1f} ms ({events:.0f} events read)"
            )
        page_rss = rows["page"][0]["rss"]  # before any all-events run raised the peak
        steps_rss = max(r["rss"] for r in rows["steps"])
        store = folder / "big.sqlite3"
        started = time.perf_counter()
        fill_store(store, args.store_jobs)
        print(
            f"\nstore of {args.store_jobs} jobs written in {time.perf_counter() - started:.1f} s;"
            " GET /api/jobs latency (ms):"
        )
        figures, listing_rss = listing_latency(store, args.store_jobs, 30 if args.smoke else 50)
        for name, (p50, p99, total) in figures.items():
            print(f"  {name:24s} p50 {p50:7.2f}  p99 {p99:7.2f}  (total {total})")
    print(
        f"\nprocess RSS (Runtime + server): idle {idle_rss / mib:.1f} MiB; after the first run "
        f"with job-list clients {page_rss / mib:.1f} MiB, with all-events clients "
        f"{steps_rss / mib:.1f} MiB; serving {args.store_jobs} jobs {listing_rss / mib:.1f} MiB"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        client_main(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
