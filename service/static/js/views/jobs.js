// Jobs: the caller's training jobs, newest first, refreshed while any is still active.
// Tick two or more to compare them (views/compare.js). Batch predictions and learning-rate
// range tests are jobs too: they carry a kind badge, and a batch links to its result file.

import { api, duration, esc, fmt, when } from "../api.js";
import { batchSummary, kindBadge, onDownloadClick } from "./batch.js";

const ACTIVE = new Set(["queued", "running", "cancelling"]);

function rowHtml(job, selected) {
  const acc = job.metrics?.val_accuracy ?? job.metrics?.accuracy;
  const batch = job.kind === "batch_predict";
  const progress = `${job.progress.epoch}/${job.progress.total_epochs}${batch ? " rows" : ""}`;
  const model = batch ? batchSummary(job) : `${kindBadge(job)} ${esc(job.model_name)}`;
  return `<tr class="clickable" data-id="${esc(job.id)}" data-kind="${esc(job.kind)}">
    <td class="pick"><input type="checkbox" class="job-pick" value="${esc(job.id)}"
      aria-label="Select ${esc(job.id)} to compare" ${selected.has(job.id) ? "checked" : ""}></td>
    <td><a href="#/jobs/${encodeURIComponent(job.id)}">${esc(job.id)}</a></td>
    <td><span class="badge ${esc(job.status)}">${esc(job.status)}</span></td>
    <td class="job-model">${model}</td>
    <td>${esc(job.dataset)}</td>
    <td><div class="row"><div class="progress"><div style="width:${job.progress.percent}%"></div></div>
      <span class="muted">${progress}</span></div></td>
    <td>${fmt(job.metrics?.loss)}</td>
    <td>${fmt(acc, 3)}</td>
    <td>${ACTIVE.has(job.status) ? `ETA ${duration(job.eta_seconds)}` : when(job.finished_at)}</td>
  </tr>`;
}

export async function render(root) {
  root.innerHTML = `<div class="card">
    <div class="row"><h1>Training jobs</h1>
      <span class="muted" id="jobs-total"></span>
      <span style="flex:1"></span>
      <button id="jobs-compare" disabled title="Tick two or more jobs">Compare selected</button>
      <a href="#/playground">Start one in the Playground →</a></div>
    <table><thead><tr><th></th><th>Job</th><th>Status</th><th>Model</th><th>Dataset</th>
      <th>Progress</th><th>Loss</th><th>Accuracy</th><th>ETA / finished</th></tr></thead>
      <tbody id="jobs-body"><tr><td colspan="9" class="muted">Loading…</td></tr></tbody></table>
  </div>`;
  const body = root.querySelector("#jobs-body");
  const compare = root.querySelector("#jobs-compare");
  const selected = new Set(); // kept across the refreshes that redraw the rows
  const updateCompare = () => {
    compare.disabled = selected.size < 2;
    compare.textContent = `Compare selected${selected.size ? ` (${selected.size})` : ""}`;
  };
  body.addEventListener("change", (event) => {
    if (!event.target.classList.contains("job-pick")) return;
    if (event.target.checked) selected.add(event.target.value);
    else selected.delete(event.target.value);
    updateCompare();
  });
  body.addEventListener("click", (event) => {
    if (onDownloadClick(event)) return;
    const row = event.target.closest("tr[data-id]");
    if (event.target.closest("td.pick")) {
      const box = row?.querySelector(".job-pick");
      if (box && event.target !== box) box.click(); // the whole cell toggles the box
      return;
    }
    if (row && event.target.tagName !== "A") location.hash = `#/jobs/${row.dataset.id}`;
  });
  compare.addEventListener("click", () => {
    location.hash = `#/compare?jobs=${[...selected].map(encodeURIComponent).join(",")}`;
  });

  let timer = null;
  let stopped = false;
  async function refresh() {
    const page = await api("/v1/jobs?limit=50");
    if (stopped) return;
    root.querySelector("#jobs-total").textContent = `${page.total} in total`;
    body.innerHTML = page.items.length
      ? page.items.map((job) => rowHtml(job, selected)).join("")
      : `<tr><td colspan="9" class="muted">No jobs yet.</td></tr>`;
    const delay = page.items.some((job) => ACTIVE.has(job.status)) ? 1500 : 5000;
    timer = setTimeout(() => refresh().catch(() => {}), delay);
  }
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
