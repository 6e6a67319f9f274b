// SPDX-License-Identifier: BSD-3-Clause
// The dashboard page: polls api/overview every second and redraws; every value goes into the
// page as text (never as HTML), so nothing a worker reports can run here.
"use strict";

const REFRESH_MS = 1000;
const SPANS_MS = 2000;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const detail = document.getElementById("job-detail"); // moved under its namespace's jobs
const failureNodes = new Map(); // a failure's <details>, kept across redraws: it stays open
const cancelling = new Set(); // jobs whose cancel was sent, until the snapshot shows it
let selected = null; // the job whose timeline is shown: {namespace, job, spans, after, timer}
let lastData = null;
let noticeTimer = null;

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== false && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

function table(headers, rows, id) {
  // in a box that scrolls sideways on a narrow screen, rather than the whole page
  return el("div", { className: "scroll", id }, el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows)));
}

function bytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function when(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString();
}

function nice(value) {
  // the smallest 1, 2 or 5 times a power of ten at least `value`: round axis steps
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= value);
}

// What went wrong with an action the person took, shown for a while at the top.
function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 15 * REFRESH_MS);
}

// A canvas of width x height CSS pixels, sharp on high-density screens.
function context2d(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  return ctx;
}

function card(label, value, className = "") {
  return el("div", { className: `card ${className}` },
    el("div", { className: "value" }, value), el("div", { className: "muted" }, label));
}

// Tasks/s (blue) and failures/s (red) over the history the dashboard holds (up to 10 min).
function rateChart(rates, now) {
  const width = 520, height = 136, left = 40, right = 10, top = 22, bottom = 18;
  const canvas = el("canvas", { className: "rates", role: "img", "aria-label": "tasks and failures per second" });
  const ctx = context2d(canvas, width, height);
  const shown = Math.min(600, Math.max(60, rates.length ? now - rates[0][0] : 0));
  const peak = nice(Math.max(1, ...rates.map((r) => r[1])));
  const x = (t) => left + (1 - (now - t) / shown) * (width - left - right);
  const y = (v) => height - bottom - (v / peak) * (height - top - bottom);
  ctx.lineWidth = 1;
  ctx.strokeStyle = "#eceff3";
  ctx.fillStyle = "#7a8394";
  ctx.textAlign = "right";
  for (const v of [0, peak / 2, peak]) {
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(width - right, y(v)); ctx.stroke();
    ctx.fillText(v >= 1000 ? `${v / 1000}k` : `${v}`, left - 5, y(v));
  }
  ctx.textAlign = "left";
  ctx.fillText(`${Math.round((shown / 60) * 10) / 10} min ago`, left, height - 7);
  ctx.textAlign = "right";
  ctx.fillText("now", width - right, height - 7);
  const latest = rates.length ? rates[rates.length - 1] : [now, 0, 0];
  ctx.textAlign = "left";
  ctx.fillStyle = "#1565c0";
  ctx.fillText(`tasks/s ${latest[1].toFixed(1)}`, left, 9);
  ctx.fillStyle = "#c62828";
  ctx.fillText(`failures/s ${latest[2].toFixed(1)}`, left + 120, 9);
  ctx.save();
  ctx.beginPath(); ctx.rect(left, 0, width - left - right, height); ctx.clip();
  for (const [series, color] of [[1, "#1565c0"], [2, "#c62828"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    rates.forEach((r, i) => (i ? ctx.lineTo(x(r[0]), y(r[series])) : ctx.moveTo(x(r[0]), y(r[series]))));
    ctx.stroke();
  }
  ctx.restore();
  return canvas;
}

function workerRows(ns) {
  return ns.workers.map((w) => {
    const versions = ["rhc", "python", "cloudpickle"].map((name) =>
      el("td", { className: w.mismatched.includes(name) ? `mismatch version-${name}` : `version-${name}` }, w.versions[name]));
    return el("tr", { className: `state-${w.state.replace(/ /g, "-")}`, "data-worker": w.name },
      el("td", {}, w.name), el("td", {}, w.condor_id), el("td", {}, w.host),
      el("td", { className: "state" }, w.state), el("td", {}, w.job), el("td", { className: "done num" }, w.done),
      el("td", { className: "num" }, w.failed), el("td", { className: "num" }, w.rate.toFixed(1)),
      el("td", { className: "num" }, w.rss_mb.toFixed(0)), el("td", { className: "num" }, w.cpu_percent.toFixed(0)),
      el("td", { className: "heartbeat num" }, age(w.heartbeat_age)), ...versions,
      el("td", { className: "wrap" }, w.last_error));
  });
}

function progress(job) {
  // The total is known once the sender has sent every task; until then, the len() of its
  // arguments if they had one, else what it sent so far.
  const known = job.total !== null && job.total !== undefined;
  const expected = job.expected ?? null;
  const of = known ? job.total : (expected ?? job.submitted);
  const bar = el("span", { className: known || expected !== null ? "progress" : "progress unknown" }, el("span"));
  bar.firstChild.style.width = `${(of ? Math.min(1, job.done / of) * 100 : 0).toFixed(1)}%`;
  const shown = known ? job.total : (expected ?? `${job.submitted}+`);
  return el("td", { title: known ? "" : `${job.submitted} tasks sent so far` },
    bar, " ", el("span", { className: "done" }, job.done), ` / ${shown}`);
}

function jobRows(ns, canCancel) {
  return ns.jobs.map((job) => {
    let action = "";
    if (canCancel && job.state === "running") {
      const sent = cancelling.has(job.id);
      action = el("button", {
        type: "button", className: "cancel", disabled: sent,
        onclick: (event) => { event.stopPropagation(); cancelJob(ns.name, job.id); },
      }, sent ? "cancelling…" : "cancel");
    }
    const chosen = selected && selected.namespace === ns.name && selected.job === job.id;
    return el("tr", {
      className: chosen ? "job selected" : "job", id: `job-${job.id}`, "data-state": job.state,
      title: "show its timeline", onclick: () => selectJob(ns.name, job.id),
    },
      el("td", { className: "id" }, job.id), el("td", {}, job.owner), el("td", { className: "state" }, job.state),
      progress(job), el("td", { className: "rate num" }, job.rate.toFixed(1)),
      el("td", { className: "counts" }, counted(job)),
      el("td", { className: "failed num" }, job.failed), el("td", { className: "num" }, job.retried),
      el("td", { className: "wrap" }, job.reason), el("td", {}, action));
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

// Failures never change once reported: each keeps its node, so one a person opened stays open.
function failureBlocks(failures, place) {
  if (!failures.length) return [el("p", { className: "muted" }, "none")];
  return failures.map((f) => {
    const key = `${place} ${f.job} ${f.task} ${f.time}`;
    if (!failureNodes.has(key)) {
      failureNodes.set(key, el("details", { className: "failure" },
        el("summary", {}, `${when(f.time)} job ${f.job} task ${f.task} on ${f.worker}: `,
          el("strong", {}, f.error), `: ${f.message}`),
        el("div", {}, "argument: ", el("code", {}, f.argument)),
        el("pre", {}, f.traceback)));
    }
    return failureNodes.get(key);
  });
}

function forgetFailures(data) {
  const shown = new Set(data.namespaces.flatMap((ns) =>
    ns.failures.map((f) => `${f.job} ${f.task} ${f.time}`)));
  for (const key of failureNodes.keys()) {
    if (!shown.has(key.slice(key.indexOf(" ") + 1))) failureNodes.delete(key);
  }
}

function namespaceSection(ns, canCancel, now) {
  const states = ns.workers_by_state;
  const waiting = ns.queues.reduce((sum, q) => sum + q.waiting, 0) + ns.routed_waiting;
  const pending = ns.queues.reduce((sum, q) => sum + q.pending, 0);
  const ages = ns.queues.filter((q) => q.oldest_age !== null).map((q) => q.oldest_age);
  const failed = ns.counters.failed ?? 0;
  const running = ns.jobs.filter((job) => job.state === "running").length;
  return el("section", { className: "namespace", "data-namespace": ns.name },
    el("h2", {}, `namespace ${ns.name}`),
    el("div", { className: "overview" },
      el("div", { className: "cards" },
        card("idle", states.idle), card("busy", states.busy, "busy"),
        card("lost heartbeat", states["lost heartbeat"], states["lost heartbeat"] ? "bad" : ""),
        card("leaving", states.leaving), card("tasks succeeded", ns.counters.succeeded ?? 0),
        card("jobs running", running), card("batches waiting", waiting), card("batches running", pending),
        card("oldest waiting", ages.length ? age(Math.max(...ages)) : "–"),
        card("tasks failed", failed, failed ? "bad" : "")),
      rateChart(ns.rates, now)),
    el("h3", {}, `workers (${ns.workers.length})`),
    table(["name", "condor id", "host", "state", "job", "done", "failed", "tasks/s", "RSS MB", "CPU %", "heartbeat", "rhc", "python", "cloudpickle", "last warning"], workerRows(ns), `workers-${ns.name}`),
    el("h3", {}, "jobs ", el("span", { className: "muted hint" }, "(click one for its timeline)")),
    table(["job", "owner", "state", "progress", "tasks/s", "counted", "failed", "retried", "reason", ""], jobRows(ns, canCancel), `jobs-${ns.name}`),
    el("h3", {}, "workers that left, and why"),
    table(["time", "worker", "condor id", "host", "reason", "last warning"], departureRows(ns), `departures-${ns.name}`),
    el("h3", {}, "latest failures"),
    el("div", { className: "failures" }, ...failureBlocks(ns.failures, ns.name)));
}

function render(data) {
  lastData = data;
  const redis = document.getElementById("redis");
  redis.className = data.redis.up ? "badge" : "badge down";
  const limit = data.redis.max_memory ? ` of ${bytes(data.redis.max_memory)}` : "";
  redis.textContent = data.redis.up
    ? `Redis up · ${bytes(data.redis.memory)}${limit} · ${data.redis.round_trip_ms} ms round trip`
    : data.redis.error;
  const updated = document.getElementById("updated");
  updated.textContent = `updated ${when(data.taken)}`;
  updated.className = "muted";
  for (const ns of data.namespaces) {
    for (const job of ns.jobs) if (job.state !== "running") cancelling.delete(job.id);
  }
  forgetFailures(data);
  document.getElementById("namespaces").replaceChildren(
    ...data.namespaces.map((ns) => namespaceSection(ns, data.can_cancel, data.taken)));
  if (selected) {
    const jobs = document.getElementById(`jobs-${selected.namespace}`);
    if (jobs) jobs.after(detail);
    drawJob();
  }
}

function stale(why) {
  const updated = document.getElementById("updated");
  updated.textContent = lastData ? `${why}; shown as of ${when(lastData.taken)}` : why;
  updated.className = "stale";
  document.getElementById("redis").className = "badge unknown"; // not known from here
}

async function refresh() {
  try {
    const response = await fetch("api/overview", { credentials: "same-origin" });
    if (response.ok) render(await response.json());
    else stale(`the dashboard answered ${response.status}: ${(await response.text()).trim()}`);
  } catch (error) {
    stale(`the dashboard is unreachable (${error.message})`);
  }
  setTimeout(refresh, REFRESH_MS);
}

async function cancelJob(namespace, job) {
  cancelling.add(job);
  if (lastData) render(lastData);
  try {
    const response = await fetch("api/cancel", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ namespace, job }),
    });
    if (response.ok) return;
    cancelling.delete(job);
    notice(`cancelling job ${job} failed: ${(await response.text()).trim()}`);
  } catch (error) {
    cancelling.delete(job);
    notice(`cancelling job ${job} failed: ${error.message}`);
  }
}

function selectJob(namespace, job) {
  if (selected) clearTimeout(selected.timer);
  selected = { namespace, job, spans: [], after: "", kept: 0, timer: null };
  document.getElementById("job-detail-id").textContent = job;
  detail.hidden = false;
  if (lastData) render(lastData);
  detail.scrollIntoView({ block: "nearest" });
  loadSpans(selected);
}

function closeJob() {
  if (selected) clearTimeout(selected.timer);
  selected = null;
  detail.hidden = true;
  if (lastData) render(lastData);
}

async function loadSpans(chosen) {
  if (chosen !== selected) return;
  try {
    const query = new URLSearchParams({ namespace: chosen.namespace, job: chosen.job, after: chosen.after });
    const response = await fetch(`api/spans?${query}`, { credentials: "same-origin" });
    if (response.ok && chosen === selected) {
      const { spans, kept } = await response.json();
      chosen.spans.push(...spans);
      chosen.kept = kept;
      if (spans.length) chosen.after = spans[spans.length - 1].id;
      drawJob();
    }
  } finally {
    if (chosen === selected) chosen.timer = setTimeout(() => loadSpans(chosen), SPANS_MS);
  }
}

// The selected job's timeline: a row per worker, a bar per batch (red: a task of it failed).
function drawJob() {
  const { spans, namespace, job, kept } = selected;
  const ns = lastData && lastData.namespaces.find((n) => n.name === namespace);
  const failures = ns ? ns.failures.filter((f) => f.job === job) : [];
  document.getElementById("job-failures").replaceChildren(...failureBlocks(failures, "detail"));
  document.getElementById("job-failures-title").hidden = !failures.length;
  document.getElementById("job-failures").hidden = !failures.length;
  const workers = [...new Set(spans.map((s) => s.worker))].sort();
  const row = 20, left = 150, right = 14, top = 6, axis = 22;
  const width = Math.max(600, detail.clientWidth - 40);
  const height = top + Math.max(1, workers.length) * row + axis;
  const ctx = context2d(document.getElementById("timeline"), width, height);
  const note = document.getElementById("timeline-note");
  if (!spans.length) {
    ctx.fillStyle = "#7a8394";
    ctx.fillText("no batch of this job has finished yet", left, top + row / 2);
    note.textContent = "";
    return;
  }
  let start = Infinity, end = -Infinity;
  for (const s of spans) { start = Math.min(start, s.started); end = Math.max(end, s.finished); }
  const length = Math.max(end - start, 1e-3);
  const x = (t) => left + ((t - start) / length) * (width - left - right);
  const bottom = top + workers.length * row;
  const step = nice(length / 8);
  ctx.textAlign = "center";
  for (let t = 0; t <= length + step / 1000; t += step) {
    ctx.fillStyle = "#eceff3";
    ctx.fillRect(Math.round(x(start + t)), top, 1, bottom - top);
    ctx.fillStyle = "#7a8394";
    ctx.fillText(`${+t.toFixed(3)} s`, x(start + t), bottom + axis / 2);
  }
  ctx.textAlign = "left";
  workers.forEach((worker, i) => {
    ctx.fillStyle = "#1d2330";
    ctx.fillText(worker.length > 22 ? `${worker.slice(0, 21)}…` : worker, 4, top + i * row + row / 2);
  });
  const failed = failures.map((f) => Number(f.task));
  const drawn = new Map(); // per worker, how many bars so far: neighbours alternate in shade
  for (const s of spans) {
    const i = workers.indexOf(s.worker);
    const [first, last = first] = s.tasks.split("-").map(Number);
    const n = drawn.get(s.worker) ?? 0;
    drawn.set(s.worker, n + 1);
    ctx.fillStyle = failed.some((t) => t >= first && t <= last) ? "#c62828" : n % 2 ? "#1565c0" : "#5c9ce6";
    const w = Math.max(1, x(s.finished) - x(s.started));
    ctx.fillRect(x(s.started), top + i * row + 3, w > 3 ? w - 1 : w, row - 6);
  }
  const tasks = spans.reduce((sum, s) => {
    const [first, last = first] = s.tasks.split("-").map(Number);
    return sum + last - first + 1;
  }, 0);
  note.textContent = `${spans.length} batches, ${tasks} tasks, over ${length.toFixed(2)} s on ` +
    `${workers.length} worker(s)` + (spans.length >= kept ? ` (the latest ${kept} batches kept)` : "");
}

document.getElementById("job-detail-close").addEventListener("click", closeJob);
refresh();
