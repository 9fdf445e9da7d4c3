// Jobs: the caller's training jobs, newest first, refreshed while any is still active.

import { api, duration, esc, fmt, when } from "../api.js";

const ACTIVE = new Set(["queued", "running", "cancelling"]);

function rowHtml(job) {
  const acc = job.metrics?.val_accuracy ?? job.metrics?.accuracy;
  const progress = `${job.progress.epoch}/${job.progress.total_epochs}`;
  return `<tr class="clickable" data-id="${esc(job.id)}">
    <td><a href="#/jobs/${encodeURIComponent(job.id)}">${esc(job.id)}</a></td>
    <td><span class="badge ${esc(job.status)}">${esc(job.status)}</span></td>
    <td>${esc(job.model_name)}</td>
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
      <span style="flex:1"></span><a href="#/playground">Start one in the Playground →</a></div>
    <table><thead><tr><th>Job</th><th>Status</th><th>Model</th><th>Dataset</th>
      <th>Progress</th><th>Loss</th><th>Accuracy</th><th>ETA / finished</th></tr></thead>
      <tbody id="jobs-body"><tr><td colspan="8" class="muted">Loading…</td></tr></tbody></table>
  </div>`;
  const body = root.querySelector("#jobs-body");
  body.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (row && event.target.tagName !== "A") location.hash = `#/jobs/${row.dataset.id}`;
  });

  let timer = null;
  let stopped = false;
  async function refresh() {
    const page = await api("/v1/jobs?limit=50");
    if (stopped) return;
    root.querySelector("#jobs-total").textContent = `${page.total} in total`;
    body.innerHTML = page.items.length
      ? page.items.map(rowHtml).join("")
      : `<tr><td colspan="8" class="muted">No jobs yet.</td></tr>`;
    const delay = page.items.some((job) => ACTIVE.has(job.status)) ? 1500 : 5000;
    timer = setTimeout(() => refresh().catch(() => {}), delay);
  }
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
