// The job list: filters (status, flow, time range), search, paging; rows change
// live as the bus reports jobs (no reload), and the list is re-read from the store.

import {
  api, el, fmtDuration, fmtTime, jobLink, live, notice, settings, statusBadge, throttle,
} from "./core.js";

const STATUSES = ["pending", "running", "paused", "completed", "failed", "cancelled"];
const PAGE = 50;

function toEpoch(local) {
  return local ? String(new Date(local).getTime() / 1000) : "";
}

function toLocal(epoch) {
  if (!epoch) return "";
  const d = new Date(Number(epoch) * 1000);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 16);
}

export function jobsView(main, params) {
  const filters = {
    status: params.get("status") || "",
    flow: params.get("flow") || "",
    since: params.get("since") || "",
    until: params.get("until") || "",
    q: params.get("q") || "",
    offset: Number(params.get("offset") || 0),
  };
  const status = el("select", { id: "filter-status", "aria-label": "status" },
    el("option", { value: "", text: "any status" }),
    STATUSES.map((s) => el("option", { value: s, text: s })));
  status.value = filters.status;
  const flow = el("select", { id: "filter-flow", "aria-label": "flow" },
    el("option", { value: "", text: "any flow" }));
  const since = el("input", { type: "datetime-local", id: "filter-since", value: toLocal(filters.since) });
  const until = el("input", { type: "datetime-local", id: "filter-until", value: toLocal(filters.until) });
  const search = el("input", {
    type: "search", id: "filter-q", placeholder: "search id, flow, error", value: filters.q,
  });
  const body = el("tbody", { id: "jobs-body" });
  const count = el("span", { id: "jobs-count", class: "muted" });
  const prev = el("button", { type: "button", text: "‹ newer" });
  const next = el("button", { type: "button", text: "older ›" });
  main.append(
    el("div", { class: "filters" }, status, flow,
      el("label", {}, "from ", since), el("label", {}, "to ", until), search),
    el("table", { class: "jobs" },
      el("thead", {}, el("tr", {},
        ["job", "flow", "status", "submitted", "duration", "error"].map((h) => el("th", { text: h })))),
      body),
    el("div", { class: "pager" }, prev, count, next));

  api("/api/flows").then((data) => {
    for (const f of data.flows) flow.append(el("option", { value: f.flow_id, text: f.flow_id }));
    flow.value = filters.flow;
  }).catch((e) => notice(e.message));

  let total = 0;
  const load = async () => {
    const query = new URLSearchParams();
    for (const key of ["status", "flow", "since", "until", "q"]) {
      if (filters[key]) query.set(key, filters[key]);
    }
    query.set("limit", PAGE);
    query.set("offset", filters.offset);
    try {
      const data = await api(`/api/jobs?${query}`);
      total = data.total;
      body.replaceChildren(...data.jobs.map(row));
      if (!data.jobs.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "no jobs" })));
      const last = Math.min(filters.offset + data.jobs.length, total);
      count.textContent = total ? `${filters.offset + 1}–${last} of ${total}` : "0 jobs";
      prev.disabled = filters.offset === 0;
      next.disabled = last >= total;
      notice("");
    } catch (e) {
      notice(e.message);
    }
  };
  const refresh = throttle(load, 1000); // a busy runtime: one re-read a second at most

  const apply = () => {
    const query = new URLSearchParams();
    for (const key of ["status", "flow", "since", "until", "q"]) {
      if (filters[key]) query.set(key, filters[key]);
    }
    if (filters.offset) query.set("offset", filters.offset);
    history.replaceState(null, "", `#/jobs${query.toString() ? "?" + query : ""}`);
    load();
  };
  const reset = () => { filters.offset = 0; apply(); };
  status.addEventListener("change", () => { filters.status = status.value; reset(); });
  flow.addEventListener("change", () => { filters.flow = flow.value; reset(); });
  since.addEventListener("change", () => { filters.since = toEpoch(since.value); reset(); });
  until.addEventListener("change", () => { filters.until = toEpoch(until.value); reset(); });
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { filters.q = search.value.trim(); reset(); }, 300);
  });
  prev.addEventListener("click", () => { filters.offset = Math.max(filters.offset - PAGE, 0); apply(); });
  next.addEventListener("click", () => { filters.offset += PAGE; apply(); });

  // Live: a row changes status the moment its job does; the page is then re-read
  // from the store (new jobs appear, filters stay right).
  const off = live.on((event) => {
    if (!settings.auto) return;
    if (event.kind === "resync") return refresh();
    if (!event.kind.startsWith("job.")) return;
    const tr = body.querySelector(`tr[data-job-id="${CSS.escape(event.job_id || "")}"]`);
    if (tr && event.kind === "job.finished") {
      setStatus(tr, event.data.status);
      tr.querySelector(".duration").textContent = fmtDuration(event.time - Number(tr.dataset.created));
      tr.querySelector(".error").textContent = event.data.error || "";
    }
    if (tr && event.kind === "job.paused") setStatus(tr, "paused");
    if (tr && event.kind === "job.resumed") setStatus(tr, "running");
    refresh();
  });
  // The store also changes under other processes: re-read it now and then.
  const poll = setInterval(() => { if (settings.auto) refresh(); }, 5000);
  load();
  return () => { off(); clearInterval(poll); clearTimeout(typing); };
}

function setStatus(tr, status) {
  tr.dataset.status = status;
  tr.querySelector(".status").replaceWith(statusBadge(status));
}

function row(job) {
  return el("tr", { data: { jobId: job.job_id, status: job.status, created: job.created_at } },
    el("td", { class: "mono" }, jobLink(job.job_id)),
    el("td", { text: job.flow_id }),
    el("td", {}, statusBadge(job.status)),
    el("td", { text: fmtTime(job.created_at) }),
    el("td", { class: "duration", text: fmtDuration(job.duration) }),
    el("td", { class: "error", text: job.error || "" }));
}
