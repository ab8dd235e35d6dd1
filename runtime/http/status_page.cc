#include "runtime/http/status_page.h"

namespace mrtrain::runtime {
namespace {

constexpr char kPage[] = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mrtrain master</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.job { cursor: pointer; } tr.selected { background: #eef4ff; }
#error { color: #b00; }
svg { border: 1px solid #ccc; background: #fff; margin-right: 1em; }
.axis { stroke: #888; } .label { font-size: 11px; fill: #555; }
.train_loss, .train_accuracy { stroke: #1f77b4; } .test_loss, .test_accuracy { stroke: #d62728; }
.validation_loss, .validation_accuracy { stroke: #2ca02c; }
path.series { fill: none; stroke-width: 2; }
</style>
</head>
<body>
<h1>mrtrain master</h1>
<div id="error"></div>
<div id="totals"></div>
<h2>Workers</h2>
<table id="workers"><thead><tr><th>id</th><th>name</th><th>slots</th><th>heartbeat age</th>
<th>current tasks</th></tr></thead><tbody></tbody></table>
<h2>Jobs</h2>
<table id="jobs"><thead><tr><th>id</th><th>name</th><th>state</th><th>epoch</th><th>round</th>
<th>examples/s</th><th>ETA</th><th>recoveries</th><th>backup attempts</th><th>error</th></tr>
</thead><tbody></tbody></table>
<h2 id="chart-title">History</h2>
<div id="charts"></div>
<script>
"use strict";
let selected = null;  // the job the chart shows; null: the running one, else the newest

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
}
function seconds(s) {
  if (s === undefined || s === null || !isFinite(s)) return "";
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function fixed(x, digits) { return typeof x === "number" && isFinite(x) ? x.toFixed(digits) : ""; }
function replaceRows(table, rows) {
  const body = document.querySelector("#" + table + " tbody");
  while (body.firstChild) body.removeChild(body.firstChild);
  rows.forEach(r => body.appendChild(r));
}

function renderWorkers(workers) {
  replaceRows("workers", workers.map(w => {
    const tr = document.createElement("tr");
    tr.id = "worker-" + w.id;
    cell(tr, w.id, "num"); cell(tr, w.name); cell(tr, w.slots, "num");
    cell(tr, seconds((w.heartbeat_age_ms || 0) / 1000), "num");
    cell(tr, (w.current_tasks || []).map(t => t.kind + " " + t.target +
        (t.attempt ? " #" + t.attempt : "")).join(", "));
    return tr;
  }));
}

function renderJobs(jobs) {
  replaceRows("jobs", jobs.map(j => {
    const tr = document.createElement("tr");
    tr.id = "job-" + j.id;
    tr.className = "job" + (j.id === shownJob(jobs) ? " selected" : "");
    tr.onclick = () => { selected = j.id; poll(); };
    cell(tr, j.id, "num"); cell(tr, j.name); cell(tr, j.state);
    cell(tr, (j.epoch || 0) + "/" + (j.epochs || 0), "num");
    cell(tr, j.rounds_per_epoch ? (j.round || 0) + "/" + j.rounds_per_epoch : "", "num");
    cell(tr, fixed(j.examples_per_sec, 0), "num"); cell(tr, seconds(j.eta_sec), "num");
    cell(tr, j.recoveries || 0, "num"); cell(tr, j.backup_attempts || 0, "num");
    cell(tr, j.error || "");
    return tr;
  }));
}

function shownJob(jobs) {
  if (selected !== null && jobs.some(j => j.id === selected)) return selected;
  const running = jobs.filter(j => j.state === "running");
  if (running.length) return running[running.length - 1].id;
  return jobs.length ? jobs[jobs.length - 1].id : null;
}

const SVG = "http://www.w3.org/2000/svg";
function svgNode(name, attrs, parent) {
  const n = document.createElementNS(SVG, name);
  for (const k in attrs) n.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(n);
  return n;
}
// One chart: a path per series present in the history, epochs on x.
function chart(title, epochs, keys, fixedRange) {
  const W = 420, H = 240, L = 50, R = 10, T = 24, B = 30;
  const svg = svgNode("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H,
                              "class": "chart", "data-title": title});
  svgNode("text", {x: L, y: 15, "class": "label"}, svg).textContent = title;
  const series = keys.map(k => ({key: k, points: epochs.filter(e => typeof e[k] === "number" &&
      isFinite(e[k])).map(e => [e.epoch, e[k]])})).filter(s => s.points.length > 0);
  let lo = Infinity, hi = -Infinity, maxEpoch = 1;
  series.forEach(s => s.points.forEach(([x, y]) => {
    lo = Math.min(lo, y); hi = Math.max(hi, y); maxEpoch = Math.max(maxEpoch, x); }));
  if (fixedRange) { lo = 0; hi = 1; }
  if (!(hi > lo)) { lo = isFinite(lo) ? lo - 0.5 : 0; hi = lo + 1; }
  const px = x => L + (W - L - R) * (maxEpoch > 1 ? (x - 1) / (maxEpoch - 1) : 0.5);
  const py = y => T + (H - T - B) * (1 - (y - lo) / (hi - lo));
  svgNode("path", {d: "M" + L + " " + T + " V" + (H - B) + " H" + (W - R), "class": "axis",
                   fill: "none"}, svg);
  [lo, hi].forEach(v => { svgNode("text", {x: 2, y: py(v) + 4, "class": "label"}, svg)
      .textContent = v.toPrecision(3); });
  svgNode("text", {x: W - R - 60, y: H - 8, "class": "label"}, svg).textContent =
      "epoch 1.." + maxEpoch;
  series.forEach((s, i) => {
    const d = s.points.map(([x, y], j) => (j ? "L" : "M") + px(x).toFixed(1) + " " +
                                          py(y).toFixed(1)).join(" ");
    svgNode("path", {d: d, "class": "series " + s.key, "data-points": s.points.length}, svg);
    svgNode("text", {x: L + 8 + i * 110, y: T + 12, "class": "label " + s.key}, svg)
        .textContent = s.key;
  });
  return svg;
}

function renderHistory(history) {
  document.getElementById("chart-title").textContent =
      "History of job " + history.job + " (" + history.name + ")";
  const charts = document.getElementById("charts");
  while (charts.firstChild) charts.removeChild(charts.firstChild);
  const epochs = history.epochs || [];
  charts.appendChild(chart("loss", epochs, ["train_loss", "test_loss", "validation_loss"]));
  if (epochs.some(e => typeof e.train_accuracy === "number")) {
    charts.appendChild(chart("accuracy", epochs,
        ["train_accuracy", "test_accuracy", "validation_accuracy"], true));
  }
}

async function getJson(url) {
  const r = await fetch(url, {cache: "no-store"});
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}

async function poll() {
  try {
    const status = await getJson("/api/status");
    const workers = status.workers || [], jobs = status.jobs || [];
    document.getElementById("totals").textContent = workers.length + " workers, " +
        jobs.length + " jobs; recoveries " + (status.recoveries || 0) + ", backup attempts " +
        (status.backup_tasks || 0) + ", dropped results " + (status.dropped_results || 0);
    renderWorkers(workers);
    renderJobs(jobs);
    const job = shownJob(jobs);
    if (job !== null) renderHistory(await getJson("/api/jobs/" + job + "/history"));
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = "cannot reach the master: " + e.message;
  }
}
poll();
setInterval(poll, 1000);
</script>
</body>
</html>
)HTML";

}  // namespace

std::string_view StatusPageHtml() { return std::string_view(kPage, sizeof kPage - 1); }

}  // namespace mrtrain::runtime
