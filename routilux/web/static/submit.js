// Submit a job to a hosted flow. The params are parsed with JSON.parse: nothing
// typed here is ever evaluated as code, in the page or on the server.

import { api, el, notice } from "./core.js";

export function submitView(main) {
  const flow = el("select", { id: "submit-flow", required: true });
  const entry = el("select", { id: "submit-entry" });
  const slot = el("input", { id: "submit-slot", value: "trigger", required: true });
  const params = el("textarea", { id: "submit-params", rows: 8, spellcheck: "false", text: "{}" });
  const jobId = el("input", { id: "submit-job-id", placeholder: "(new id)" });
  const timeout = el("input", { id: "submit-timeout", type: "number", min: "0", step: "any", placeholder: "(none)" });
  const result = el("p", { id: "submit-result" });
  const form = el("form", { class: "card submit" },
    el("h2", { text: "Submit a job" }),
    el("label", {}, "flow ", flow), el("label", {}, "entry routine ", entry),
    el("label", {}, "entry slot ", slot), el("label", {}, "params (JSON object) ", params),
    el("label", {}, "job id ", jobId), el("label", {}, "timeout (s) ", timeout),
    el("button", { type: "submit", text: "Submit" }), result);
  main.append(form);

  let flows = [];
  const fillEntries = () => {
    const chosen = flows.find((f) => f.flow_id === flow.value);
    entry.replaceChildren(el("option", { value: "", text: "(the only unconnected entry)" }),
      ...(chosen ? chosen.entries : []).map((e) => el("option", { value: e, text: e })));
  };
  api("/api/flows").then((data) => {
    flows = data.flows.filter((f) => f.hosted);
    if (!flows.length) {
      result.textContent = "This server hosts no flows (it only shows a store): nothing to submit to.";
      form.querySelector("button").disabled = true;
    }
    flow.replaceChildren(...flows.map((f) => el("option", { value: f.flow_id, text: f.flow_id })));
    fillEntries();
  }).catch((e) => notice(e.message));
  flow.addEventListener("change", fillEntries);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let parsed;
    try {
      parsed = JSON.parse(params.value || "{}");
    } catch (e) {
      result.textContent = `params are not valid JSON: ${e.message}`;
      return;
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      result.textContent = "params must be a JSON object, e.g. {\"n\": 3}";
      return;
    }
    const body = { flow: flow.value, slot: slot.value, params: parsed };
    if (entry.value) body.entry = entry.value;
    if (jobId.value.trim()) body.job_id = jobId.value.trim();
    if (timeout.value) body.timeout = Number(timeout.value);
    try {
      const job = await api("/api/jobs", { method: "POST", body });
      location.hash = `#/job/${encodeURIComponent(job.job_id)}`;
    } catch (e) {
      result.textContent = e.message;
    }
  });
  return () => {};
}
