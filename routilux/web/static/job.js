// One job: header and controls, the flow graph coloured live by routine state, the
// step timeline, and a filterable pane of errors (with tracebacks), crashes,
// outputs and emitted events.

import {
  api, el, fmtDuration, fmtTime, Live, live, notice, pretty, settings, statusBadge, throttle,
} from "./core.js";
import { drawGraph, drawTimeline, legend } from "./charts.js";

const ROUTINE_STATE = {
  running: "busy", completed: "done", failed: "failed", error_continued: "failed",
  skipped: "done", retrying: "queued",
};

export function jobView(main, jobId) {
  let job = null;
  let graph = null;
  let graphSvg = null;
  const states = {};
  const bars = [];
  const head = el("section", { class: "card", id: "job-header" });
  const graphBox = el("section", { class: "card" }, el("h2", { text: "Flow" }));
  const timeBox = el("section", { class: "card" }, el("h2", { text: "Timeline" }));
  const logBox = el("section", { class: "card" }, el("h2", { text: "Errors and log" }));
  main.append(head, graphBox, timeBox, logBox);
  const logFilter = el("input", { type: "search", placeholder: "filter the log", id: "log-filter" });
  const logKind = el("select", { id: "log-kind", "aria-label": "log kind" },
    ["all", "error", "retry", "crash", "emit", "output", "pause"].map((k) => el("option", { value: k, text: k })));
  const logList = el("ol", { class: "log", id: "log" });
  logBox.append(el("div", { class: "filters" }, logKind, logFilter), logList);
  logFilter.addEventListener("input", () => drawLog());
  logKind.addEventListener("change", () => drawLog());

  const load = async () => {
    try {
      job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
    } catch (e) {
      head.replaceChildren(el("h2", { text: `Job ${jobId}` }), el("p", { class: "error", text: e.message }));
      return;
    }
    bars.length = 0;
    bars.push(...(job.timeline ? job.timeline.bars : []));
    for (const [rid, r] of Object.entries(job.routines || {})) {
      states[rid] = ROUTINE_STATE[r.status] || "idle";
    }
    if (job.live === false) for (const rid of Object.keys(states)) if (states[rid] === "busy") states[rid] = "done";
    drawHeader();
    if (!graph && job.flow_id) {
      try {
        graph = await api(`/api/flows/${encodeURIComponent(job.flow_id)}/graph`);
      } catch (e) {
        graphBox.append(el("p", { class: "muted", text: e.message }));
      }
    }
    drawGraphBox();
    drawTimelineBox();
    drawLog();
  };
  const reload = throttle(load, 400);

  function drawHeader() {
    const status = job.status;
    const live_ = Boolean(job.live);
    const act = (action) => async () => {
      try {
        await api(`/api/jobs/${encodeURIComponent(jobId)}/${action}`, { method: "POST", body: {} });
        load();
      } catch (e) {
        notice(e.message);
      }
    };
    const button = (action, enabled) =>
      el("button", { type: "button", id: `job-${action}`, disabled: !enabled, onclick: act(action), text: action });
    head.replaceChildren(...[
      el("h2", {}, "Job ", el("span", { class: "mono", text: job.job_id }), " ",
        el("span", { id: "job-status", data: { status } }, statusBadge(status))),
      el("div", { class: "actions" },
        button("cancel", live_ && ["running", "paused", "pending"].includes(status)),
        button("pause", live_ && status === "running"),
        button("resume", live_ && status === "paused")),
      el("dl", { class: "facts" },
        fact("flow", job.flow_id),
        fact("entry", job.entry ? `${job.entry.routine}.${job.entry.slot}` : ""),
        fact("submitted", fmtTime(job.created_at)),
        fact("finished", fmtTime(job.finished_at)),
        fact("duration", fmtDuration(job.duration)),
        fact("dropped messages", job.dropped_messages || 0),
        job.error ? fact("error", job.error, "error") : null,
        job.unavailable ? fact("detail", job.unavailable, "muted") : null),
      job.params !== undefined ? el("details", { open: true }, el("summary", { text: "params" }), pretty(job.params)) : null,
      job.output && job.output.length ? el("details", {}, el("summary", { text: `output (${job.output.length})` }), pretty(job.output)) : null,
      job.shared_data && Object.keys(job.shared_data).length ? el("details", {}, el("summary", { text: "shared data" }), pretty(job.shared_data)) : null,
    ].filter(Boolean));
  }

  function drawGraphBox() {
    graphBox.querySelector("svg.graph")?.remove();
    graphBox.querySelector(".legend")?.remove();
    if (!graph) return;
    graphSvg = drawGraph(graph, states);
    graphBox.append(graphSvg, legend());
  }

  function drawTimelineBox() {
    timeBox.replaceChildren(el("h2", { text: "Timeline" }));
    if (!job.timeline) return;
    const note = job.timeline.exact ? "one bar per step; a retried message has one bar per attempt"
      : "steps were not watched live: one span per routine, with a mark per failure and crash";
    timeBox.append(el("p", { class: "muted", text: note }));
    const now = Date.now() / 1000;
    timeBox.append(drawTimeline({ bars, marks: job.timeline.marks }, job.created_at || now, job.finished_at || now));
  }
  const redrawTimeline = throttle(() => job && drawTimelineBox(), 300);

  function drawLog() {
    if (!job) return;
    const kind = logKind.value;
    const needle = logFilter.value.toLowerCase();
    const items = [];
    for (const f of job.failures || []) {
      items.push({ time: f.time, kind: f.strategy === "retry" ? "retry" : "error", routine: f.routine_id,
        text: `${f.exception_type}: ${f.message} (attempt ${f.attempt}, ${f.strategy})`, traceback: f.traceback });
    }
    for (const c of job.crashes || []) {
      items.push({ time: c.time, kind: "crash", routine: c.routine_id,
        text: `replica ${c.replica} (pid ${c.pid}) died: ${c.reason}` });
    }
    for (const o of job.output || []) {
      items.push({ time: o.time, kind: "output", routine: o.routine_id, text: `${o.output_type}: ${JSON.stringify(o.data)}` });
    }
    for (const h of job.history || []) {
      if (h.kind === "emit") items.push({ ...h, text: `emit ${h.text} ${JSON.stringify(h.data)}` });
      else if (h.kind === "mark") items.push({ ...h, kind: "emit", text: `${h.text} ${JSON.stringify(h.data)}` });
      else if (h.kind === "pause") items.push({ ...h, text: `paused: ${h.text || ""}` });
    }
    items.sort((a, b) => (a.time || 0) - (b.time || 0));
    const shown = items.filter((i) => (kind === "all" || i.kind === kind) &&
      (!needle || `${i.routine} ${i.text} ${i.traceback || ""}`.toLowerCase().includes(needle)));
    logList.replaceChildren(...shown.slice(-500).map((i) => el("li", { class: `log-${i.kind}` },
      el("span", { class: "muted", text: fmtTime(i.time) }), " ",
      el("span", { class: "kind", text: i.kind }), " ",
      el("span", { class: "mono", text: i.routine || "" }), " ",
      el("span", { text: i.text }),
      i.traceback ? el("details", {}, el("summary", { text: "traceback" }), el("pre", { text: i.traceback })) : null)));
    if (!shown.length) logList.append(el("li", { class: "muted", text: "nothing to show" }));
  }

  const off = live.on((event) => {
    if (!settings.auto || !job) return;
    if (event.kind === "resync") return reload();
    if (event.flow_id !== job.flow_id) return;
    const d = event.data;
    if (event.kind === "routine.restarted") {
      graphSvg?.setState(d.routine, "restarting");
      return reload();
    }
    if (event.job_id === jobId && event.kind.startsWith("job.")) reload();
  });

  function onStep(event) {
    if (!job || event.job_id !== jobId) return;
    const d = event.data;
    if (event.kind === "step.started") {
      graphSvg?.setState(d.routine, "busy");
      bars.push({ routine: d.routine, replica: d.replica, message_id: d.message_id, start: event.time, end: null, error: null,
        attempt: 1 + bars.filter((b) => b.message_id === d.message_id && b.routine === d.routine).length });
      redrawTimeline();
    } else if (event.kind === "step.finished") {
      graphSvg?.setState(d.routine, d.error ? "failed" : "done");
      const open = bars.find((b) => b.message_id === d.message_id && b.routine === d.routine && b.end === null);
      if (open) {
        open.end = event.time;
        open.error = d.error;
      }
      redrawTimeline();
      if (d.error) reload();
    }
  }
  // Steps of this job only, on a stream of their own (see core.js).
  const steps = new Live(`job=${encodeURIComponent(jobId)}&kinds=step.started,step.finished`);
  const offSteps = steps.on(onStep);
  const follow = () => (settings.auto ? steps.start() : steps.stop());
  document.addEventListener("routilux-auto", follow);
  follow();
  load();
  return () => {
    off();
    offSteps();
    steps.stop();
    document.removeEventListener("routilux-auto", follow);
  };
}

function fact(name, value, cls) {
  return el("div", { class: "fact" }, el("dt", { text: name }), el("dd", { class: cls, text: value ?? "" }));
}
