// Workers: every routine's replicas (PIDs, CPU, memory), its figures and
// throughput, the server itself, and replica deaths with their cause (dead and
// restarted replicas stay listed).

import { api, el, fmtBytes, fmtDuration, fmtTime, live, notice, settings, throttle } from "./core.js";

export function workersView(main) {
  const server = el("section", { class: "card", id: "server" });
  const table = el("section", { class: "card", id: "routines" });
  const deaths = el("section", { class: "card", id: "deaths" });
  main.append(server, table, deaths);

  const load = async () => {
    let data;
    try {
      data = await api("/api/metrics");
    } catch (e) {
      notice(e.message);
      return;
    }
    notice("");
    const s = data.server;
    server.replaceChildren(el("h2", { text: "Server" }), el("dl", { class: "facts" },
      fact("pid", s.pid), fact("memory (RSS)", fmtBytes(s.rss_bytes)), fact("CPU", `${s.cpu_percent} %`),
      fact("threads", s.threads), fact("live clients", s.sse_clients), fact("up for", fmtDuration(s.uptime)),
      fact("bus events", s.bus_seq)));
    const rows = [];
    for (const [flowId, flow] of Object.entries(data.flows)) {
      for (const [rid, m] of Object.entries(flow.routines)) {
        const pids = m.pids || [];
        const replicas = m.execution === "process"
          ? `${pids.length} of ${m.workers} alive` : `${m.workers} thread${m.workers > 1 ? "s" : ""}`;
        rows.push(el("tr", { data: { routine: rid, flow: flowId } },
          el("td", { text: flowId }), el("td", { class: "mono", text: rid }),
          el("td", { text: m.execution }), el("td", { text: replicas }),
          el("td", { class: "mono", text: pids.join(", ") || (m.execution === "thread" ? `in ${s.pid}` : "") }),
          num(m.processed), num(m.failed), num(m.queued), num(m.in_flight),
          num(m.p95_ms.toFixed(2)), num(m.throughput), num(m.restarts),
          num(m.cpu_percent === undefined ? "" : `${m.cpu_percent} %`),
          num(m.rss_bytes === undefined ? "" : fmtBytes(m.rss_bytes))));
      }
    }
    table.replaceChildren(el("h2", { text: "Routines" }), el("table", { class: "workers" },
      el("thead", {}, el("tr", {}, ["flow", "routine", "runs as", "replicas", "PIDs", "processed",
        "failed", "queued", "in flight", "p95 ms", "msg/s", "restarts", "CPU", "RSS"].map((h) => el("th", { text: h })))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 14, class: "muted", text: "no hosted flows" })))));
    deaths.replaceChildren(el("h2", { text: "Replica deaths" }), data.deaths.length
      ? el("table", { class: "deaths" },
        el("thead", {}, el("tr", {}, ["when", "flow", "routine", "replica", "pid", "cause", "exit code", "then"].map((h) => el("th", { text: h })))),
        el("tbody", {}, data.deaths.map((d) => el("tr", { data: { pid: d.pid ?? "" } },
          el("td", { text: fmtTime(d.time) }), el("td", { text: d.flow_id }), el("td", { class: "mono", text: d.routine }),
          el("td", { text: d.replica ?? "" }), el("td", { class: "mono", text: d.pid ?? "" }),
          el("td", { class: "error", text: d.cause }), el("td", { text: d.returncode ?? "" }),
          el("td", { text: d.out_of_service ? "out of service" : "restarted" })))))
      : el("p", { class: "muted", text: "no replica has died" }));
  };
  const refresh = throttle(load, 1000);
  const off = live.on((event) => {
    if (settings.auto && ["routine.restarted", "routine.out_of_service", "resync"].includes(event.kind)) refresh();
  });
  const poll = setInterval(() => { if (settings.auto) refresh(); }, 2000);
  load();
  return () => { off(); clearInterval(poll); };
}

function fact(name, value) {
  return el("div", { class: "fact" }, el("dt", { text: name }), el("dd", { text: value }));
}

function num(value) {
  return el("td", { class: "num", text: value ?? "" });
}
