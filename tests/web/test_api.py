"""The JSON API against a real uvicorn on 127.0.0.1 and a real SQLite store.

Listing (paging and filters done in SQLite), a job's page (history with retries as
separate entries), history read back from the store after a restart, submitting
and controlling jobs, flows and graphs, figures, and bad input answered with the
right status and a JSON error.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from datetime import datetime
from urllib.parse import quote, urlsplit

from prometheus_client.parser import text_string_to_metric_families
from web_helpers import call, chain, wait_until

from routilux import Flow, Routine, Runtime
from routilux.checkpoint.format import encode


def test_import_routilux_does_not_import_the_web_stack():
    code = (
        "import sys, routilux\n"
        "from routilux import Runtime, Flow\n"
        "Flow('x')\n"
        "bad = [m for m in ('starlette', 'uvicorn', 'prometheus_client', 'routilux.web') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _fill_store(store, count: int) -> list[str]:
    """``count`` summary rows over two flows, created one second apart (newest last)."""
    base = time.time() - count - 10
    ids = []
    for flow in ("alpha", "beta"):
        rows = []
        for i in range(count):
            if (i % 2 == 0) != (flow == "alpha"):
                continue
            status = ("completed", "failed", "running")[i % 3]
            row = {"job_id": f"job-{i:04d}", "status": status, "created_at": base + i}
            if status == "failed":
                row["error"] = f"KeyError: missing_{i}"
            if status != "running":
                row["updated_at"] = row["finished_at"] = base + i + 0.5
            rows.append(row)
            ids.append(row["job_id"])
        store.save(flow, encode(flow, b"cut", store.key), rows)
    return sorted(ids, reverse=True)


def test_jobs_are_paged_and_filtered_by_the_store(make_runtime):
    runtime, url = make_runtime()
    newest_first = _fill_store(runtime.store, 120)
    status, _, page = call(url, "GET", "/api/jobs?limit=50")
    assert status == 200 and page["total"] == 120
    assert [j["job_id"] for j in page["jobs"]] == newest_first[:50]
    _, _, page2 = call(url, "GET", "/api/jobs?limit=50&offset=50")
    _, _, page3 = call(url, "GET", "/api/jobs?limit=50&offset=100")
    seen = [j["job_id"] for p in (page, page2, page3) for j in p["jobs"]]
    assert seen == newest_first, "three pages: every job once, in order"
    assert len(page3["jobs"]) == 20

    _, _, failed = call(url, "GET", "/api/jobs?status=failed&flow=beta&limit=500")
    expected = [f"job-{i:04d}" for i in range(119, -1, -1) if i % 3 == 1 and i % 2 == 1]
    assert [j["job_id"] for j in failed["jobs"]] == expected and failed["total"] == len(expected)
    assert all(j["error"].startswith("KeyError") and j["duration"] == 0.5 for j in failed["jobs"])
    _, _, two = call(url, "GET", "/api/jobs?status=completed,running&limit=500")
    assert two["total"] == 80
    _, _, hits = call(url, "GET", "/api/jobs?q=missing_10")
    assert [j["job_id"] for j in hits["jobs"]] == [
        "job-0109", "job-0106", "job-0103", "job-0100", "job-0010"]
    row = next(j for j in page["jobs"] if j["job_id"] == "job-0100")
    _, _, window = call(
        url, "GET", f"/api/jobs?since={row['created_at']}&until={row['created_at'] + 3}"
    )
    assert [j["job_id"] for j in window["jobs"]] == ["job-0102", "job-0101", "job-0100"]
    iso = datetime.fromtimestamp(row["created_at"] - 0.5).isoformat()
    _, _, since_iso = call(url, "GET", f"/api/jobs?since={iso}&limit=500")
    assert since_iso["total"] == 20, "an ISO time (local) works as well as epoch seconds"


def test_bad_filters_are_refused_with_a_json_error(make_runtime):
    _, url = make_runtime()
    for query, words in [
        ("status=done", "unknown status 'done'"),
        ("limit=0", "limit must be 1..500"),
        ("limit=501", "limit must be 1..500"),
        ("limit=ten", "limit must be a whole number"),
        ("offset=-1", "offset must be a whole number"),
        ("since=yesterday", "since must be epoch seconds or an ISO 8601 time"),
        ("until=nan", "until must be a finite number"),
        ("q=" + "x" * 201, "q is longer than 200 characters"),
    ]:
        status, headers, body = call(url, "GET", f"/api/jobs?{query}")
        assert status == 400, query
        assert headers["content-type"] == "application/json"
        assert body["error"]["code"] == "bad_request"
        assert words in body["error"]["message"], (query, body)


def test_a_job_page_shows_params_history_and_each_retry(make_runtime, gate):
    gate.set()
    runtime, url = make_runtime(chain("web", gate, fail_on=1, retries=2))
    job = runtime.submit("web", "source", {"n": 3})
    assert runtime.wait(job, 20) and job.status == "completed"
    status, _, page = call(url, "GET", f"/api/jobs/{job.job_id}")
    assert status == 200
    assert page["status"] == "completed" and page["flow_id"] == "web"
    assert page["params"] == {"n": 3} and page["entry"] == {"routine": "source", "slot": "trigger"}
    assert page["duration"] > 0 and page["finished_at"] >= page["created_at"]
    assert set(page["routines"]) == {"source", "gate", "sink"}
    assert page["routines"]["sink"]["processed"] == 2 and page["routines"]["sink"]["failed"] == 3
    assert page["attempts"]["sink"] == 3
    retries = [h for h in page["history"] if h["kind"] == "retry"]
    assert [h["attempt"] for h in retries] == [1, 2, 3], "each attempt is its own entry"
    assert all("ValueError: bad x 1" in h["text"] for h in retries)
    failures = page["failures"]
    assert [f["attempt"] for f in failures] == [1, 2, 3]
    assert "Traceback" in failures[0]["traceback"] and "bad x 1" in failures[0]["traceback"]
    emits = [h for h in page["history"] if h["kind"] == "emit"]
    assert [h["data"] for h in emits if h["routine"] == "source"] == [{"x": i} for i in range(3)]
    assert page["timeline"]["bars"], "the timeline has bars"
    status, _, missing = call(url, "GET", "/api/jobs/no-such-job")
    assert status == 404 and "no job 'no-such-job'" in missing["error"]["message"]


def test_history_survives_a_restart_of_the_server(make_runtime, tmp_path):
    store = tmp_path / "history.sqlite3"
    runtime, _ = make_runtime(chain("web", None, fail_on=0), serve=False, store=store)
    good = runtime.submit("web", "source", {"n": 0})
    bad = runtime.submit("web", "source", {"n": 1})
    assert runtime.wait_all(20)
    runtime.shutdown()
    # a new process on the same store, hosting no flow: everything comes from the store
    viewer = Runtime(store)
    try:
        url = viewer.serve_http("127.0.0.1", 0)
        _, _, listing = call(url, "GET", "/api/jobs")
        assert {j["job_id"]: j["status"] for j in listing["jobs"]} == {
            good.job_id: "completed",
            bad.job_id: "failed",
        }
        _, _, page = call(url, "GET", f"/api/jobs/{bad.job_id}")
        assert page["status"] == "failed" and page["live"] is False
        assert page["failures"][0]["exception_type"] == "ValueError"
        assert page["params"] == {"n": 1}
        _, _, flows = call(url, "GET", "/api/flows")
        assert flows == {
            "flows": [{"flow_id": "web", "hosted": False, "routines": [], "entries": [],
                       "strategy": None}],
            "read_only": True,
        }
        status, _, body = call(url, "GET", "/api/flows/web/graph")
        assert status == 404 and "serve it with --flows" in body["error"]["message"]
        status, _, body = call(url, "POST", "/api/jobs", {"flow": "web", "params": {}})
        assert status == 404 and "hosts no flow 'web'" in body["error"]["message"]
        status, _, body = call(url, "POST", f"/api/jobs/{good.job_id}/cancel")
        assert status == 409 and "is completed and not running in this server" in (
            body["error"]["message"]
        )
    finally:
        viewer.shutdown()


def test_submit_pause_resume_and_cancel(make_runtime, gate):
    runtime, url = make_runtime(chain("web", gate))
    status, _, job = call(url, "POST", "/api/jobs", {"flow": "web", "params": {"n": 2}})
    assert status == 201 and job["status"] == "running"
    job_id = job["job_id"]
    assert runtime.get_job(job_id).job_id == job_id
    status, _, body = call(url, "POST", f"/api/jobs/{job_id}/pause", {"reason": "look"})
    assert status == 200, body
    gate.set()  # the running step ends: the job is paused, its second message waits
    assert wait_until(lambda: runtime.get_job(job_id).status == "paused")
    status, _, body = call(url, "POST", f"/api/jobs/{job_id}/pause")
    assert status == 200, "pausing a paused job changes nothing"
    status, _, resumed = call(url, "POST", f"/api/jobs/{job_id}/resume")
    # Its one remaining message may be done before the response is written.
    assert status == 200 and resumed["status"] in ("running", "completed"), resumed
    assert runtime.wait(job_id, 20) and runtime.get_job(job_id).status == "completed"
    status, _, body = call(url, "POST", f"/api/jobs/{job_id}/resume")
    assert status == 409 and "cannot be resumed" in body["error"]["message"]
    status, _, body = call(url, "POST", f"/api/jobs/{job_id}/stop")
    assert status == 404 and "no action 'stop'" in body["error"]["message"]
    named = call(url, "POST", "/api/jobs", {"flow": "web", "params": {"n": 1}, "job_id": "j/1"})
    assert named[0] == 201 and named[2]["job_id"] == "j/1"
    assert runtime.wait("j/1", 20)
    status, _, page = call(url, "GET", "/api/jobs/" + quote("j/1", safe=""))
    assert status == 200 and page["status"] == "completed", "ids with a slash work"


def test_cancel_a_running_job(make_runtime, gate):
    _runtime, url = make_runtime(chain("web", gate))
    _, _, job = call(url, "POST", "/api/jobs", {"flow": "web", "params": {"n": 3}})
    status, _, cancelled = call(url, "POST", f"/api/jobs/{job['job_id']}/cancel",
                                {"reason": "enough"})
    assert status == 200 and cancelled["status"] == "cancelled"
    assert cancelled["error"] == "cancelled: enough"
    status, _, body = call(url, "POST", f"/api/jobs/{job['job_id']}/pause")
    assert status == 409 and "cannot be paused" in body["error"]["message"]


def test_bad_submissions_are_refused(served):
    _, url = served
    cases = [
        ({"params": {}}, 400, "'flow' is required"),
        ({"flow": "nope"}, 404, "hosts no flow 'nope'"),
        ({"flow": "web", "params": [1]}, 400, "'params' must be a JSON object"),
        ({"flow": "web", "timeout": -1}, 400, "'timeout' must be a number of seconds > 0"),
        ({"flow": "web", "entry": "sink"}, 400, "no slot 'trigger'"),
        ({"flow": "web", "slot": "in"}, 400, "say which routine starts the job"),
        ({"flow": 7}, 400, "'flow' must be a non-empty string"),
    ]
    for body, code, words in cases:
        status, _, answer = call(url, "POST", "/api/jobs", body)
        assert status == code and words in answer["error"]["message"], (body, answer)
    status, _, answer = call(url, "POST", "/api/jobs", raw=b"{not json",
                             headers={"Content-Type": "application/json"})
    assert status == 400 and answer["error"]["message"] == "the body is not valid JSON"
    status, _, answer = call(url, "POST", "/api/jobs", raw=b'{"flow": "web", "timeout": NaN}',
                             headers={"Content-Type": "application/json"})
    assert status == 400 and answer["error"]["message"] == "the body is not valid JSON"
    status, _, answer = call(url, "POST", "/api/jobs", raw=b"[]",
                             headers={"Content-Type": "application/json"})
    assert status == 400 and answer["error"]["message"] == "the body must be a JSON object"
    status, _, answer = call(url, "POST", "/api/jobs", raw=b"flow=web",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415


def test_oversize_bodies_are_refused(served):
    _, url = served
    big = b'{"flow": "web", "params": {"x": "' + b"a" * (1 << 20) + b'"}}'
    status, _, answer = call(url, "POST", "/api/jobs", raw=big,
                             headers={"Content-Type": "application/json"})
    assert status == 413 and answer["error"]["code"] == "too_large"
    # without a Content-Length (chunked), the size is counted as the body arrives
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("POST", "/api/jobs")
        for name, value in [("Content-Type", "application/json"),
                            ("X-Routilux-Request", "1"), ("Transfer-Encoding", "chunked")]:
            conn.putheader(name, value)
        conn.endheaders()
        for _ in range(20):
            chunk = b"a" * 65536
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        assert response.status == 413
    finally:
        conn.close()


def test_unknown_endpoints_and_methods_answer_in_json(served):
    _, url = served
    status, _headers, body = call(url, "GET", "/api/nothing")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, _, body = call(url, "DELETE", "/api/jobs")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


class Odd(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=lambda **kw: None)


def test_flows_and_their_graph(make_runtime, gate):
    evil = Flow("odd", execution_strategy="concurrent")
    evil.add_routine(Odd(), "<script>alert(1)</script>")
    _runtime, url = make_runtime(chain("web", gate), evil)
    _, _, flows = call(url, "GET", "/api/flows")
    web = next(f for f in flows["flows"] if f["flow_id"] == "web")
    assert web["hosted"] and web["entries"] == ["source"]
    assert web["routines"] == ["gate", "sink", "source"]
    _, _, graph = call(url, "GET", "/api/flows/web/graph")
    assert [n["id"] for n in graph["nodes"]] == ["source", "gate", "sink"]
    xs = [n["x"] for n in graph["nodes"]]
    assert xs == sorted(xs) and len(set(xs)) == 3, "a chain is laid out left to right"
    assert [(e["source"], e["target"]) for e in graph["edges"]] == [
        ("source", "gate"),
        ("gate", "sink"),
    ]
    assert graph["svg"].startswith("<svg") and "gate" in graph["svg"]
    status, headers, svg = call(url, "GET", "/api/flows/odd/graph?format=svg")
    assert status == 200 and headers["content-type"].startswith("image/svg+xml")
    assert "<script>" not in svg and "&lt;script&gt;" in svg, "routine ids are escaped"


def test_figures_as_json_and_prometheus_text(served, gate):
    runtime, url = served
    gate.set()
    job = runtime.submit("web", "source", {"n": 4})
    assert runtime.wait(job, 20)
    status, _, figures = call(url, "GET", "/api/metrics")
    assert status == 200
    sink = figures["flows"]["web"]["routines"]["sink"]
    assert sink["processed"] == 4 and sink["execution"] == "thread" and "throughput" in sink
    server = figures["server"]
    assert server["rss_bytes"] > 0 and server["pid"] > 0 and server["sse_clients"] == 0
    status, headers, text = call(url, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert all(name.startswith("routilux_") for name in families)
    processed = {
        s.labels["routine"]: s.value
        for s in families["routilux_routine_processed"].samples
        if s.name.endswith("_total")
    }
    assert processed == {"source": 1.0, "gate": 4.0, "sink": 4.0}
    assert wait_until(lambda: runtime.store.count_jobs().get("completed") == 1)
    _, _, text = call(url, "GET", "/metrics")
    family = next(f for f in text_string_to_metric_families(text) if f.name == "routilux_jobs")
    jobs = {s.labels["status"]: s.value for s in family.samples}
    assert jobs == {"completed": 1.0}
