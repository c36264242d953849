"""Security defaults of the monitor: loopback unless a token is given; the token on
every API call; no cross-site state changes; no DNS rebinding; JSON errors, never a
traceback; headers that keep the page to its own files."""

from __future__ import annotations

import pytest
from web_helpers import call, chain

from routilux import ConfigurationError, FlowStateError

TOKEN = "s3cret-token-for-tests-0123456789"


def test_binding_beyond_loopback_needs_a_token(make_runtime, monkeypatch):
    monkeypatch.delenv("ROUTILUX_TOKEN", raising=False)
    runtime, _ = make_runtime(serve=False)
    with pytest.raises(ConfigurationError, match=r"binding the monitor to '0\.0\.0\.0'"):
        runtime.serve_http("0.0.0.0", 0)
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        runtime.serve_http("0.0.0.0", 0, token="short")
    with pytest.raises(ConfigurationError, match=r"port must be 0\.\.65535"):
        runtime.serve_http("127.0.0.1", 70000)
    assert runtime.http_url is None


def test_a_token_from_the_environment_opens_all_interfaces(make_runtime, monkeypatch):
    monkeypatch.setenv("ROUTILUX_TOKEN", TOKEN)
    runtime, _ = make_runtime(serve=False)
    url = runtime.serve_http("0.0.0.0", 0)
    local = url.replace("0.0.0.0", "127.0.0.1")
    assert call(local, "GET", "/api/jobs")[0] == 401
    status, _, body = call(local, "GET", "/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and body["total"] == 0
    with pytest.raises(FlowStateError, match="already serves HTTP"):
        runtime.serve_http("127.0.0.1", 0)


def test_every_api_call_needs_the_token(make_runtime, gate):
    _runtime, url = make_runtime(chain("web", gate), token=TOKEN)
    good = {"Authorization": f"Bearer {TOKEN}"}
    for method, path in [("GET", "/api/jobs"), ("GET", "/api/flows"), ("GET", "/api/metrics"),
                         ("GET", "/metrics"), ("GET", "/api/events"), ("POST", "/api/jobs"),
                         ("GET", "/api/jobs/x"), ("POST", "/api/jobs/x/cancel")]:
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"},
                        {"Authorization": TOKEN}):
            status, got, body = call(url, method, path, headers=headers)
            assert status == 401, (method, path, headers)
            assert got["www-authenticate"] == "Bearer"
            assert body["error"]["code"] == "unauthorized"
    assert call(url, "GET", "/api/jobs", headers=good)[0] == 200
    assert call(url, "GET", "/metrics", headers=good)[0] == 200
    # with the token, a state change needs nothing else (no same-origin header)
    status, _, _job = call(url, "POST", "/api/jobs", {"flow": "web", "params": {"n": 1}},
                          headers=good | {"X-Routilux-Request": ""})
    assert status == 201
    # the page itself holds no data: it loads without the token, then asks for it
    status, headers, html = call(url, "GET", "/")
    assert status == 200 and "routilux monitor" in html


def test_state_changes_need_the_same_origin_header(served):
    _, url = served
    host = url.split("//")[1].rstrip("/")
    body = {"flow": "web", "params": {"n": 1}}
    status, _, answer = call(url, "POST", "/api/jobs", body, csrf=False)
    assert status == 403 and "X-Routilux-Request" in answer["error"]["message"]
    # exactly what a form on another site sends
    status, _, answer = call(url, "POST", "/api/jobs", raw=b"flow=web", csrf=False,
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      "Origin": "http://evil.example"})
    assert status == 403 and answer["error"]["code"] == "forbidden"
    for origin in ("http://evil.example", f"http://{host}.evil.example", "null"):
        status, _, answer = call(url, "POST", "/api/jobs", body, headers={"Origin": origin})
        assert status == 403, origin
        assert answer["error"]["message"] == f"cross-origin request from {origin!r} refused"
    status, _, _ = call(url, "POST", "/api/jobs", body, headers={"Origin": f"http://{host}"})
    assert status == 201, "the page's own origin may"


def test_a_foreign_host_name_is_refused(served):
    """DNS rebinding: evil.example resolved to 127.0.0.1 reaches us with its own Host."""
    _, url = served
    port = url.rstrip("/").rsplit(":", 1)[1]
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{int(port) + 1}"):
        status, _, body = call(url, "GET", "/api/jobs", headers={"Host": host})
        assert status == 421 and body["error"]["code"] == "misdirected", host
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert call(url, "GET", "/api/jobs", headers={"Host": host})[0] == 200


def test_errors_are_json_never_a_traceback(served, monkeypatch):
    runtime, url = served
    monitor = runtime._http.monitor

    def broken():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(monitor, "metrics", broken)
    status, headers, body = call(url, "GET", "/api/metrics")
    assert status == 500 and headers["content-type"] == "application/json"
    assert body == {"error": {"code": "internal",
                              "message": "internal error in the routilux monitor; see the "
                                         "server log"}}
    assert call(url, "GET", "/api/jobs?limit=x")[0] == 400


def test_headers_keep_the_page_to_its_own_files(served):
    _, url = served
    status, headers, _ = call(url, "GET", "/")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    status, headers, _script = call(url, "GET", "/static/app.js")
    assert status == 200 and "javascript" in headers["content-type"]
    _, headers, _ = call(url, "GET", "/api/jobs")
    assert headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in headers, "no CORS: other sites cannot read"
    status, _, _ = call(url, "GET", "/static/../monitor.py")
    assert status == 404
