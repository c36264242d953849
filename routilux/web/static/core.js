// Shared by every view: DOM building (never innerHTML: data is always text),
// the JSON API, the live event stream, and formatting.

export const settings = {
  auto: true,
  token: sessionStorage.getItem("routilux-token"),
};

// ------------------------------------------------------------------ DOM
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  return fill(node, attrs, children);
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  return fill(node, attrs, children);
}

function fill(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.setAttribute("class", value);
    else if (key === "data") for (const [k, v] of Object.entries(value)) node.dataset[k] = v;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function notice(message) {
  const box = document.getElementById("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

// ------------------------------------------------------------------ API
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (settings.token) headers.Authorization = `Bearer ${settings.token}`;
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-Routilux-Request"] = "1"; // proves a same-origin caller (no CSRF)
  }
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (response.status === 401) askToken();
  if (!response.ok) {
    const message = data && data.error ? data.error.message : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

function askToken() {
  const box = document.getElementById("token-box");
  box.hidden = false;
}

// ------------------------------------------------------------------ live events
// Server-Sent Events read with fetch (EventSource cannot send the token header).
// Reconnects with Last-Event-ID, so nothing is missed while the bus still has it.
// `query` filters the stream (kinds, job); only the main stream drives the badge.
export class Live {
  constructor(query = "", badge = false) {
    this.query = query;
    this.badge = badge;
    this.listeners = new Set();
    this.lastId = null;
    this.abort = null;
    this.retry = 2000;
    this.wanted = false;
  }

  on(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setState(state) {
    if (!this.badge) return;
    const badge = document.getElementById("connection");
    badge.dataset.state = state;
    badge.textContent = state;
  }

  start() {
    if (this.wanted) return;
    this.wanted = true;
    this.loop();
  }

  stop() {
    this.wanted = false;
    if (this.abort) this.abort.abort();
    this.setState("paused");
  }

  async loop() {
    while (this.wanted) {
      try {
        await this.read();
      } catch (error) {
        if (!this.wanted) break;
      }
      if (!this.wanted) break;
      this.setState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, this.retry));
    }
  }

  async read() {
    this.abort = new AbortController();
    const headers = { Accept: "text/event-stream" };
    if (settings.token) headers.Authorization = `Bearer ${settings.token}`;
    if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
    const response = await fetch(`/api/events${this.query ? `?${this.query}` : ""}`, {
      headers,
      signal: this.abort.signal,
      cache: "no-store",
    });
    if (response.status === 401) askToken();
    if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
    this.setState("live");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        this.frame(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  }

  frame(text) {
    let id = null;
    let data = "";
    for (const line of text.split("\n")) {
      if (line.startsWith("id: ")) id = line.slice(4);
      else if (line.startsWith("data: ")) data += line.slice(6);
      else if (line.startsWith("retry: ")) this.retry = Number(line.slice(7)) || this.retry;
    }
    if (id !== null) this.lastId = id;
    if (!data) return; // a comment (keep-alive)
    const event = JSON.parse(data);
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        console.error("listener failed", error);
      }
    }
  }
}

// The page-wide stream: job and replica events. Step events (one per handler call,
// the costly kind to publish) are asked for only by an open job page.
export const live = new Live(
  "kinds=job.submitted,job.paused,job.resumed,job.finished,routine.restarted,routine.out_of_service",
  true,
);

// Run fn at most once per `wait` ms, the last call winning (for refreshes).
export function throttle(fn, wait) {
  let timer = null;
  let again = false;
  return () => {
    if (timer) {
      again = true;
      return;
    }
    fn();
    timer = setTimeout(function tick() {
      timer = null;
      if (again) {
        again = false;
        fn();
        timer = setTimeout(tick, wait);
      }
    }, wait);
  };
}

// ------------------------------------------------------------------ formatting
export function fmtTime(epoch) {
  if (epoch === null || epoch === undefined) return "";
  const d = new Date(epoch * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 0)} ms`;
  if (seconds < 120) return `${seconds.toFixed(2)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function statusBadge(status) {
  return el("span", { class: "status", data: { status }, text: status });
}

export function jobLink(jobId, text) {
  return el("a", { href: `#/job/${encodeURIComponent(jobId)}`, text: text || jobId });
}

export function pretty(value) {
  return el("pre", { class: "json", text: JSON.stringify(value, null, 2) });
}
