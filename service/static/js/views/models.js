// Models: the caller's models; one model's versions with their test metrics and aliases
// (move "production" with one click), and two versions' training curves side by side.

import { api, errorBox, esc, fmt, jobHistory, when } from "../api.js";
import { LineChart } from "../chart.js";

function aliasBadges(aliases) {
  return aliases.map((a) => `<span class="badge alias">${esc(a)}</span>`).join(" ");
}

function testMetric(version, key) {
  const test = version.metrics?.test;
  return test && typeof test[key] === "number" ? test[key] : null;
}

async function renderList(root) {
  const { models } = await api("/v1/models");
  const rows = models.map((m) => {
    const latest = m.latest_version;
    return `<tr class="clickable" data-name="${esc(m.name)}">
      <td><a href="#/models/${encodeURIComponent(m.name)}">${esc(m.name)}</a></td>
      <td>${m.n_versions}</td>
      <td>${latest ? `v${latest.version}` : "–"}</td>
      <td>${latest ? fmt(testMetric(latest, "accuracy"), 3) : "–"}</td>
      <td>${Object.entries(m.aliases).map(([a, v]) => `${aliasBadges([a])} v${v}`).join(" ")}</td>
      <td>${when(m.created_at)}</td></tr>`;
  });
  root.innerHTML = `<div class="card"><h1>Models</h1>
    <table><thead><tr><th>Model</th><th>Versions</th><th>Latest</th><th>Test accuracy (latest)</th>
      <th>Aliases</th><th>Created</th></tr></thead>
    <tbody>${rows.join("") || `<tr><td colspan="6" class="muted">No models yet: a job that
      succeeds registers one.</td></tr>`}</tbody></table></div>`;
  root.querySelector("tbody").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-name]");
    if (row && event.target.tagName !== "A") location.hash = `#/models/${encodeURIComponent(row.dataset.name)}`;
  });
}

const COMPARE_SERIES = [
  { key: "a", label: "A train" },
  { key: "a_val", label: "A validation", dash: true },
  { key: "b", label: "B train", color: "#f97316" },
  { key: "b_val", label: "B validation", color: "#f97316", dash: true },
];

async function renderDetail(root, name) {
  const path = `/v1/models/${encodeURIComponent(name)}`;
  const model = await api(path);
  const versions = [...model.versions].reverse();
  const options = versions.map((v) => `<option value="${v.version}">v${v.version}</option>`).join("");
  root.innerHTML = `
    <div class="card">
      <div class="row"><h1 style="margin:0">Model ${esc(model.name)}</h1>
        <span class="muted">created ${when(model.created_at)}</span></div>
      <div id="model-msg"></div>
      <table><thead><tr><th>Version</th><th>Created</th><th>Job</th><th>Test accuracy</th>
        <th>Test loss</th><th>Final val_accuracy</th><th>Size</th><th>Aliases</th><th></th></tr></thead>
      <tbody>${versions.map((v) => `<tr>
        <td>v${v.version}</td><td>${when(v.created_at)}</td>
        <td>${v.job_id ? `<a href="#/jobs/${esc(v.job_id)}">${esc(v.job_id)}</a>` : "uploaded"}</td>
        <td>${fmt(testMetric(v, "accuracy"), 3)}</td><td>${fmt(testMetric(v, "loss"))}</td>
        <td>${fmt(v.metrics?.final_epoch?.val_accuracy, 3)}</td>
        <td>${(v.size_bytes / 1024).toFixed(1)} KiB</td>
        <td>${aliasBadges(v.aliases)}</td>
        <td>${v.aliases.includes("production") ? "" :
          `<button class="secondary" data-promote="${v.version}">Make production</button>`}</td>
      </tr>`).join("")}</tbody></table>
    </div>
    <div class="card">
      <div class="row"><h2 style="margin:0">Compare</h2>
        <label>A <select id="cmp-a">${options}</select></label>
        <label>B <select id="cmp-b">${options}</select></label>
        <span id="cmp-note" class="muted"></span></div>
      <div class="grid" style="margin-top:0.8rem">
        <canvas class="chart" id="cmp-loss"></canvas><canvas class="chart" id="cmp-acc"></canvas>
      </div>
    </div>`;

  root.querySelector("tbody").addEventListener("click", async (event) => {
    const version = event.target.dataset.promote;
    if (!version) return;
    try {
      await api(`${path}/aliases/production`, { method: "PUT", body: { version: Number(version) } });
      await renderDetail(root, name);
    } catch (error) {
      root.querySelector("#model-msg").innerHTML = errorBox(error);
    }
  });

  const lossChart = new LineChart(root.querySelector("#cmp-loss"), { title: "Loss", series: COMPARE_SERIES, yMin: 0 });
  const accChart = new LineChart(root.querySelector("#cmp-acc"), {
    title: "Accuracy", series: COMPARE_SERIES, yMin: 0, yMax: 1,
  });
  const selectA = root.querySelector("#cmp-a");
  const selectB = root.querySelector("#cmp-b");
  if (versions.length > 1) selectB.selectedIndex = 1;

  async function compare() {
    lossChart.clear();
    accChart.clear();
    const notes = [];
    for (const [slot, select] of [["a", selectA], ["b", selectB]]) {
      const version = versions.find((v) => String(v.version) === select.value);
      if (!version) continue;
      if (!version.job_id) {
        notes.push(`v${version.version} was uploaded (no training curves)`);
        continue;
      }
      try {
        for (const point of await jobHistory(version.job_id)) {
          lossChart.add(slot, point.epoch, point.loss);
          lossChart.add(`${slot}_val`, point.epoch, point.val_loss);
          accChart.add(slot, point.epoch, point.accuracy);
          accChart.add(`${slot}_val`, point.epoch, point.val_accuracy);
        }
      } catch (error) {
        notes.push(`v${version.version}: ${error.message}`);
      }
    }
    root.querySelector("#cmp-note").textContent = notes.join("; ");
    lossChart.draw();
    accChart.draw();
  }
  selectA.addEventListener("change", compare);
  selectB.addEventListener("change", compare);
  await compare();
}

export async function render(root, name) {
  return name ? renderDetail(root, name) : renderList(root);
}
