// SPDX-License-Identifier: BSD-3-Clause
// The dashboard page: polls api/overview every second and redraws; every value goes into the
// page as text (never as HTML), so nothing a worker reports can run here.
"use strict";

const REFRESH_MS = 1000;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
let selectedJob = null; // {namespace, job, spans: [], after: ""}
let lastData = null;

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "className") node.className = value;
    else if (name === "style") node.style.cssText = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

function table(headers, rows, id) {
  return el("table", id ? { id } : {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows));
}

function bytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function when(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString();
}

function card(label, value, className = "") {
  return el("div", { className: `card ${className}` }, el("div", { className: "value" }, value), el("div", { className: "muted" }, label));
}

function chart(rates) {
  const canvas = el("canvas", { width: 600, height: 120, className: "rates" });
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const top = Math.max(1, ...rates.map((r) => r[1]));
  ctx.fillStyle = "#7a8394";
  ctx.font = "11px system-ui";
  ctx.fillText(`tasks/s (max ${top.toFixed(0)}), failures/s in red, last 10 min`, 4, 12);
  const now = Date.now() / 1000;
  const x = (t) => w - ((now - t) / 600) * w;
  for (const [series, color] of [[1, "#1565c0"], [2, "#c62828"]]) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    rates.forEach((r, i) => {
      const y = h - 4 - (r[series] / top) * (h - 20);
      if (i === 0) ctx.moveTo(x(r[0]), y); else ctx.lineTo(x(r[0]), y);
    });
    ctx.stroke();
  }
  return canvas;
}

function workerRows(ns) {
  return ns.workers.map((w) => {
    const versions = ["rhc", "python", "cloudpickle"].map((name) =>
      el("td", { className: w.mismatched.includes(name) ? `mismatch version-${name}` : `version-${name}` }, w.versions[name]));
    return el("tr", { className: `state-${w.state.replace(/ /g, "-")}`, "data-worker": w.name },
      el("td", {}, w.name), el("td", {}, w.condor_id), el("td", {}, w.host),
      el("td", { className: "state" }, w.state), el("td", {}, w.job), el("td", { className: "done" }, w.done),
      el("td", {}, w.failed), el("td", {}, w.rate), el("td", {}, w.rss_mb), el("td", {}, w.cpu_percent),
      el("td", { className: "heartbeat" }, age(w.heartbeat_age)), ...versions,
      el("td", { className: "wrap" }, w.last_error));
  });
}

function jobRows(ns, canCancel) {
  return ns.jobs.map((job) => {
    const total = job.total ?? job.submitted;
    const share = total ? Math.min(1, job.done / total) : 0;
    const cancel = canCancel && job.state === "running"
      ? el("button", { type: "button", className: "cancel", onclick: (event) => { event.stopPropagation(); cancelJob(ns.name, job.id); } }, "cancel")
      : "";
    return el("tr", { className: "job", id: `job-${job.id}`, "data-state": job.state, onclick: () => selectJob(ns.name, job.id) },
      el("td", {}, job.id), el("td", {}, job.owner), el("td", { className: "state" }, job.state),
      el("td", {}, el("span", { className: "progress" }, el("div", { style: `width:${(share * 100).toFixed(1)}%` })), " ",
        el("span", { className: "done" }, job.done), ` / ${job.total ?? "?"}`),
      el("td", { className: "rate" }, job.rate), el("td", { className: "counts" }, counted(job)),
      el("td", { className: "failed" }, job.failed), el("td", {}, job.retried),
      el("td", { className: "wrap" }, job.reason), el("td", {}, cancel));
  });
}

function counted(job) {
  // what the job's tasks counted (a NanoAOD run: events and bytes read), with its rate
  return Object.entries(job.counts).map(([name, amount]) => {
    const rate = job.count_rates[name] ?? 0;
    return name.startsWith("bytes")
      ? `${name.replace(/_/g, " ")} ${bytes(amount)} (${bytes(rate)}/s)`
      : `${name} ${Math.round(amount)} (${rate}/s)`;
  }).join(" · ");
}

function departureRows(ns) {
  return ns.departures.map((d) => el("tr", { "data-worker": d.worker },
    el("td", {}, when(d.time)), el("td", {}, d.worker), el("td", {}, d.condor_id), el("td", {}, d.host),
    el("td", { className: "reason" }, d.left === "1" ? d.reason : `task process: ${d.reason}`),
    el("td", { className: "wrap" }, d.last_error)));
}

function failureBlocks(failures) {
  if (!failures.length) return [el("p", { className: "muted" }, "none")];
  return failures.map((f) => el("details", { className: "failure" },
    el("summary", {}, `${when(f.time)} job ${f.job} task ${f.task} on ${f.worker}: ${f.error}: ${f.message}`),
    el("div", {}, "argument: ", el("code", {}, f.argument)),
    el("pre", {}, f.traceback)));
}

function namespaceSection(ns, canCancel) {
  const states = ns.workers_by_state;
  const waiting = ns.queues.reduce((sum, q) => sum + q.waiting, 0) + ns.routed_waiting;
  const pending = ns.queues.reduce((sum, q) => sum + q.pending, 0);
  const oldest = Math.max(0, ...ns.queues.map((q) => q.oldest_age ?? 0));
  return el("section", { className: "namespace", "data-namespace": ns.name },
    el("h2", {}, `namespace ${ns.name}`),
    el("div", { className: "cards" },
      card("idle", states.idle, "idle"), card("busy", states.busy, "busy"),
      card("lost heartbeat", states["lost heartbeat"], states["lost heartbeat"] ? "lost" : ""),
      card("leaving", states.leaving), card("batches waiting", waiting), card("batches running", pending),
      card("oldest waiting", age(oldest)), card("tasks succeeded", ns.counters.succeeded ?? 0),
      card("tasks failed", ns.counters.failed ?? 0), chart(ns.rates)),
    el("h3", {}, "workers"),
    table(["name", "condor id", "host", "state", "job", "done", "failed", "tasks/s", "rss MB", "cpu %", "heartbeat", "rhc", "python", "cloudpickle", "last warning"], workerRows(ns), `workers-${ns.name}`),
    el("h3", {}, "jobs"),
    table(["job", "owner", "state", "progress", "tasks/s", "counted", "failed", "retried", "reason", ""], jobRows(ns, canCancel), `jobs-${ns.name}`),
    el("h3", {}, "workers that left, and why"),
    table(["time", "worker", "condor id", "host", "reason", "last warning"], departureRows(ns), `departures-${ns.name}`),
    el("h3", {}, "latest failures"),
    el("div", { className: "failures" }, ...failureBlocks(ns.failures)));
}

function render(data) {
  lastData = data;
  const redis = document.getElementById("redis");
  redis.className = data.redis.up ? "badge" : "badge down";
  redis.textContent = data.redis.up
    ? `Redis up · ${bytes(data.redis.memory)} · ${data.redis.round_trip_ms} ms round trip`
    : `Redis unreachable: ${data.redis.error}`;
  document.getElementById("updated").textContent = `updated ${when(data.taken)}`;
  document.getElementById("namespaces").replaceChildren(...data.namespaces.map((ns) => namespaceSection(ns, data.can_cancel)));
  if (selectedJob) drawJob();
}

async function refresh() {
  try {
    const response = await fetch("api/overview", { credentials: "same-origin" });
    if (response.ok) render(await response.json());
    else document.getElementById("redis").textContent = `dashboard: ${response.status} ${await response.text()}`;
  } catch (error) {
    document.getElementById("redis").textContent = `dashboard unreachable: ${error}`;
  }
  setTimeout(refresh, REFRESH_MS);
}

async function cancelJob(namespace, job) {
  const response = await fetch("api/cancel", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ namespace, job }),
  });
  if (!response.ok) alert(`cancel failed: ${await response.text()}`);
}

function selectJob(namespace, job) {
  selectedJob = { namespace, job, spans: [], after: "" };
  document.getElementById("job-detail").hidden = false;
  document.getElementById("job-detail-id").textContent = job;
  loadSpans();
}

async function loadSpans() {
  const chosen = selectedJob;
  if (!chosen) return;
  const query = new URLSearchParams({ namespace: chosen.namespace, job: chosen.job, after: chosen.after });
  const response = await fetch(`api/spans?${query}`, { credentials: "same-origin" });
  if (response.ok && chosen === selectedJob) {
    const { spans } = await response.json();
    chosen.spans.push(...spans);
    if (spans.length) chosen.after = spans[spans.length - 1].id;
    drawJob();
  }
  setTimeout(loadSpans, 2 * REFRESH_MS);
}

function drawJob() {
  const { spans, namespace, job } = selectedJob;
  const canvas = document.getElementById("timeline");
  const ctx = canvas.getContext("2d");
  const workers = [...new Set(spans.map((s) => s.worker))].sort();
  canvas.height = Math.max(60, 24 + workers.length * 22);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const start = Math.min(...spans.map((s) => s.started));
  const end = Math.max(...spans.map((s) => s.finished));
  const span = Math.max(end - start, 1e-3);
  const left = 180, width = canvas.width - left - 10;
  ctx.font = "11px system-ui";
  workers.forEach((worker, row) => {
    ctx.fillStyle = "#1d2330";
    ctx.fillText(worker.slice(0, 28), 4, 30 + row * 22);
  });
  spans.forEach((s, i) => {
    const row = workers.indexOf(s.worker);
    ctx.fillStyle = i % 2 ? "#1565c0" : "#42a5f5";
    const x = left + ((s.started - start) / span) * width;
    ctx.fillRect(x, 18 + row * 22, Math.max(1, ((s.finished - s.started) / span) * width), 16);
  });
  document.getElementById("timeline-note").textContent = spans.length
    ? `${spans.length} batches over ${span.toFixed(2)} s, a row per worker`
    : "no batch has finished yet";
  const ns = lastData && lastData.namespaces.find((n) => n.name === namespace);
  const failures = ns ? ns.failures.filter((f) => f.job === job) : [];
  document.getElementById("job-failures").replaceChildren(...failureBlocks(failures));
}

document.getElementById("job-detail-close").addEventListener("click", () => {
  selectedJob = null;
  document.getElementById("job-detail").hidden = true;
});
refresh();
