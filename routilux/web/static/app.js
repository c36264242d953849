// The page's router: #/jobs, #/job/<id>, #/workers, #/submit. Each view renders
// into <main> and returns a function that stops its timers and listeners.

import { live, notice, settings } from "./core.js";
import { jobsView } from "./jobs.js";
import { jobView } from "./job.js";
import { workersView } from "./workers.js";
import { submitView } from "./submit.js";

let dispose = null;

function route() {
  const hash = location.hash || "#/jobs";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const main = document.getElementById("view");
  if (dispose) dispose();
  dispose = null;
  notice("");
  main.replaceChildren();
  let name = "jobs";
  if (path.startsWith("/job/")) {
    name = "jobs";
    dispose = jobView(main, decodeURIComponent(path.slice(5)));
  } else if (path === "/workers") {
    name = "workers";
    dispose = workersView(main);
  } else if (path === "/submit") {
    name = "submit";
    dispose = submitView(main);
  } else {
    dispose = jobsView(main, params);
  }
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === name);
  }
}

function start() {
  // A link made with `#token=...` hands the token over without sending it anywhere.
  if (location.hash.startsWith("#token=")) {
    settings.token = decodeURIComponent(location.hash.slice(7));
    sessionStorage.setItem("routilux-token", settings.token);
    history.replaceState(null, "", "#/jobs");
  }
  document.getElementById("token-box").addEventListener("submit", (event) => {
    event.preventDefault();
    settings.token = document.getElementById("token-input").value;
    sessionStorage.setItem("routilux-token", settings.token);
    document.getElementById("token-box").hidden = true;
    live.stop();
    if (settings.auto) live.start();
    route();
  });
  const auto = document.getElementById("auto-refresh");
  auto.checked = localStorage.getItem("routilux-auto") !== "off";
  settings.auto = auto.checked;
  auto.addEventListener("change", () => {
    settings.auto = auto.checked;
    localStorage.setItem("routilux-auto", auto.checked ? "on" : "off");
    if (auto.checked) live.start();
    else live.stop();
    document.dispatchEvent(new CustomEvent("routilux-auto"));
  });
  window.addEventListener("hashchange", route);
  if (settings.auto) live.start();
  else live.setState("paused");
  route();
}

start();
