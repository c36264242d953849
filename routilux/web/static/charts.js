// The flow graph (coloured by routine state) and the step timeline (Gantt), as SVG
// built with DOM calls from the server's layout and the job's bars.

import { el, fmtDuration, svg } from "./core.js";

export const STATES = ["idle", "queued", "busy", "done", "failed", "restarting"];

export function drawGraph(graph, states) {
  const root = svg("svg", {
    class: "graph",
    width: graph.width,
    height: graph.height,
    viewBox: `0 0 ${graph.width} ${graph.height}`,
    role: "img",
    "aria-label": `graph of flow ${graph.flow_id}`,
  });
  root.append(svg("defs", {}, svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto",
  }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }))));
  for (const edge of graph.edges) {
    root.append(svg("path", {
      d: edge.path, class: edge.back ? "edge back" : "edge", "marker-end": "url(#arrow)",
    }, svg("title", { text: `${edge.source}.${edge.event} → ${edge.target}.${edge.slot}` })));
  }
  const nodes = {};
  for (const node of graph.nodes) {
    const mode = node.execution + (node.workers > 1 ? ` ×${node.workers}` : "");
    const group = svg("g", {
      class: `node state-${states[node.id] || "idle"}`,
      data: { routine: node.id, state: states[node.id] || "idle" },
    },
    svg("rect", { x: node.x, y: node.y, width: node.w, height: node.h, rx: 6 }),
    svg("text", { x: node.x + 8, y: node.y + 20, class: "name", text: clip(node.id) }),
    svg("text", { x: node.x + 8, y: node.y + 38, class: "sub", text: clip(`${node.class} · ${mode}`) }),
    svg("title", { text: node.id }));
    nodes[node.id] = group;
    root.append(group);
  }
  root.setState = (routine, state) => {
    const group = nodes[routine];
    if (!group) return;
    group.setAttribute("class", `node state-${state}`);
    group.dataset.state = state;
  };
  return root;
}

function clip(text, size = 24) {
  return text.length <= size ? text : `${text.slice(0, size - 1)}…`;
}

export function legend() {
  return el("div", { class: "legend" },
    STATES.map((s) => el("span", { class: `key state-${s}`, text: s })));
}

// bars: {routine, replica, attempt, start, end, error}; marks: {routine, time, kind, text}
export function drawTimeline(timeline, start, now) {
  const bars = timeline.bars.filter((b) => b.start !== null && b.start !== undefined);
  const lanes = [...new Set([...bars.map((b) => b.routine), ...timeline.marks.map((m) => m.routine)])]
    .filter((r) => r !== null && r !== undefined);
  if (!lanes.length) return el("p", { class: "muted", text: "no steps yet" });
  const ends = bars.map((b) => b.end ?? now).concat(timeline.marks.map((m) => m.time || start));
  const first = Math.min(start, ...bars.map((b) => b.start));
  const last = Math.max(first + 0.001, ...ends);
  const labelW = 150;
  const width = 900;
  const laneH = 22;
  const height = lanes.length * laneH + 24;
  const x = (t) => labelW + ((t - first) / (last - first)) * (width - labelW - 10);
  const root = svg("svg", {
    class: "timeline", width, height, viewBox: `0 0 ${width} ${height}`,
    role: "img", "aria-label": "timeline of steps",
  });
  lanes.forEach((lane, i) => {
    root.append(svg("text", { x: 4, y: i * laneH + 15, class: "lane", text: clip(lane, 22) }));
    root.append(svg("line", { x1: labelW, x2: width - 10, y1: i * laneH + laneH - 1, y2: i * laneH + laneH - 1, class: "lane-line" }));
  });
  for (const bar of bars) {
    const lane = lanes.indexOf(bar.routine);
    const x1 = x(bar.start);
    const x2 = Math.max(x(bar.end ?? now), x1 + 2);
    const kind = bar.end === null || bar.end === undefined ? "running" : bar.error ? "failed" : "ok";
    const retry = bar.attempt > 1 ? ` (attempt ${bar.attempt})` : "";
    const took = bar.end ? fmtDuration(bar.end - bar.start) : "running";
    root.append(svg("rect", {
      x: x1, y: lane * laneH + 3, width: x2 - x1, height: laneH - 8,
      class: `bar ${kind}${bar.attempt > 1 ? " retry" : ""}`,
    }, svg("title", { text: `${bar.routine}${retry}: ${took}${bar.error ? ` — ${bar.error}` : ""}` })));
  }
  for (const mark of timeline.marks) {
    const lane = lanes.indexOf(mark.routine);
    if (lane < 0 || !mark.time) continue;
    const mx = x(mark.time);
    root.append(svg("path", {
      d: `M${mx - 4},${lane * laneH + 2} L${mx + 4},${lane * laneH + 2} L${mx},${lane * laneH + 9} z`,
      class: `mark ${mark.kind}`,
    }, svg("title", { text: mark.text })));
  }
  root.append(svg("text", { x: labelW, y: height - 4, class: "axis", text: "0" }));
  root.append(svg("text", {
    x: width - 10, y: height - 4, class: "axis end", text: fmtDuration(last - first),
  }));
  return root;
}
