// Compare runs: two or more jobs side by side. A table of only the settings that differ
// (each job's spec, dataset and hyperparameters flattened to dotted paths) and their loss
// and accuracy curves overlaid, one line per job.

import { api, errorBox, esc, jobHistory } from "../api.js";
import { LineChart } from "../chart.js";

/** {a: {b: [1, 2]}} -> {"a.b.0": 1, "a.b.1": 2}; empty objects and arrays stay as values. */
export function flatten(value, prefix = "", out = {}) {
  const nested = value !== null && typeof value === "object";
  if (nested && Object.keys(value).length) {
    for (const [key, inner] of Object.entries(value)) {
      flatten(inner, prefix ? `${prefix}.${key}` : key, out);
    }
  } else {
    out[prefix] = value;
  }
  return out;
}

/** The paths whose values are not the same in every job (missing counts as a value). */
export function differingPaths(flats) {
  const paths = [...new Set(flats.flatMap((flat) => Object.keys(flat)))].sort();
  return paths.filter((path) => {
    const shown = flats.map((flat) => (path in flat ? JSON.stringify(flat[path]) : "\u0000"));
    return shown.some((v) => v !== shown[0]);
  });
}

function cell(flat, path) {
  return path in flat ? esc(JSON.stringify(flat[path])) : `<span class="muted">–</span>`;
}

export async function render(root, query) {
  const ids = [...new Set(new URLSearchParams(query).get("jobs")?.split(",").filter(Boolean) ?? [])];
  if (ids.length < 2) {
    root.innerHTML = `<div class="card notice">Pick two or more jobs on the
      <a href="#/jobs">Jobs</a> page to compare them.</div>`;
    return undefined;
  }
  const controller = new AbortController();
  const jobs = await Promise.all(ids.map((id) => api(`/v1/jobs/${encodeURIComponent(id)}`)));
  const flats = jobs.map((job) =>
    flatten({ spec: job.spec, dataset: job.dataset, hyperparameters: job.hyperparameters }));
  const paths = differingPaths(flats);
  root.innerHTML = `
    <div class="card">
      <div class="row"><h1 style="margin:0">Compare ${jobs.length} runs</h1>
        <span style="flex:1"></span><a href="#/jobs">← Jobs</a></div>
      <p class="muted">Only the settings that differ: ${paths.length} of
        ${new Set(flats.flatMap((flat) => Object.keys(flat))).size}.</p>
      <div class="table-scroll"><table class="compare" id="compare-table">
        <thead><tr><th>Setting</th>${jobs.map((job, i) => `<th>
          ${i + 1} · <a href="#/jobs/${encodeURIComponent(job.id)}">${esc(job.id)}</a><br>
          <span class="muted">${esc(job.model_name)} · <span class="badge ${esc(job.status)}">${esc(job.status)}</span></span>
        </th>`).join("")}</tr></thead>
        <tbody>${paths.length ? paths.map((path) => `<tr data-path="${esc(path)}">
            <td class="path">${esc(path)}</td>${flats.map((flat) => `<td>${cell(flat, path)}</td>`).join("")}
          </tr>`).join("") : `<tr><td colspan="${jobs.length + 1}" class="muted">These runs have the same settings.</td></tr>`}
        </tbody></table></div>
      <div id="compare-error"></div>
    </div>
    <div class="grid">
      <div class="card"><canvas class="chart" id="compare-loss"></canvas></div>
      <div class="card"><canvas class="chart" id="compare-acc"></canvas></div>
    </div>`;
  // Short legend labels (job ids would crowd the title): the run's number and model name.
  const series = jobs.map((job, i) => ({ key: job.id, label: `${i + 1} ${job.model_name}` }));
  const loss = new LineChart(root.querySelector("#compare-loss"), { title: "Loss (train)", series, yMin: 0 });
  const accuracy = new LineChart(root.querySelector("#compare-acc"), {
    title: "Accuracy (train)", series, yMin: 0, yMax: 1,
  });
  for (const chart of [loss, accuracy]) chart.canvas.dataset.series = String(series.length);
  try {
    const histories = await Promise.all(jobs.map((job) => jobHistory(encodeURIComponent(job.id), controller.signal)));
    histories.forEach((history, i) => {
      for (const point of history) {
        loss.add(jobs[i].id, point.epoch, point.loss);
        accuracy.add(jobs[i].id, point.epoch, point.accuracy);
      }
    });
  } catch (error) {
    if (error.name !== "AbortError") root.querySelector("#compare-error").innerHTML = errorBox(error);
  }
  loss.draw();
  accuracy.draw();
  const onResize = () => {
    loss.draw();
    accuracy.draw();
  };
  window.addEventListener("resize", onResize);
  return () => {
    controller.abort();
    window.removeEventListener("resize", onResize);
  };
}
