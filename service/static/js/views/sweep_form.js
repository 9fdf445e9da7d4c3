// "Start a sweep" under the Playground's settings: the Playground's current network is the
// base spec, the search space is the learning rate (log-uniform) and the first hidden layer's
// units; POST /v1/sweeps, then on to the sweep's page.

import { api, esc } from "../api.js";

const OBJECTIVES = {
  val_accuracy: "maximize",
  val_loss: "minimize",
  accuracy: "maximize",
  loss: "minimize",
};

export function sweepForm() {
  return `
  <details id="pg-sweep" class="sweep-form">
    <summary>Start a sweep from these settings</summary>
    <p class="muted">Tunes the network above on the same data: the learning rate
      (log-uniform) and the first hidden layer's units. Each trial is a training job; the best
      becomes a version of the model.</p>
    <form id="pg-sweep-form" class="form-grid" novalidate>
      <label for="pg-sweep-name">Model name</label>
      <input id="pg-sweep-name" name="model_name" required pattern="[A-Za-z0-9][A-Za-z0-9._-]*">
      <label>Learning rate</label>
      <span class="range"><input id="pg-sweep-lr-low" name="lr_low" type="number" step="any" min="0" aria-label="lowest learning rate">
        to <input id="pg-sweep-lr-high" name="lr_high" type="number" step="any" min="0" aria-label="highest learning rate"></span>
      <label for="pg-sweep-units-on">Units (layer 1)</label>
      <span class="range"><input id="pg-sweep-units-on" name="units_on" type="checkbox" checked aria-label="search the first layer's units">
        <input id="pg-sweep-units-low" name="units_low" type="number" min="1" max="512" value="2" aria-label="fewest units">
        to <input id="pg-sweep-units-high" name="units_high" type="number" min="1" max="512" value="32" aria-label="most units"></span>
      <label for="pg-sweep-objective">Objective</label>
      <select id="pg-sweep-objective" name="objective">
        ${Object.entries(OBJECTIVES).map(([m, d]) => `<option value="${m}">${m} (${d})</option>`).join("")}
      </select>
      <label for="pg-sweep-epochs">Epochs per trial</label>
      <input id="pg-sweep-epochs" name="epochs" type="number" min="1" max="1000">
      <label for="pg-sweep-trials">Trials</label>
      <input id="pg-sweep-trials" name="n_trials" type="number" min="1" max="1000" value="12">
      <label for="pg-sweep-parallel">In parallel</label>
      <input id="pg-sweep-parallel" name="max_parallel" type="number" min="1" max="64" value="2">
      <label for="pg-sweep-pruner">Pruner</label>
      <select id="pg-sweep-pruner" name="pruner"><option value="median">median</option>
        <option value="successive_halving">successive halving</option>
        <option value="hyperband">hyperband</option><option value="none">none</option></select>
      <div class="row" style="grid-column: 1 / -1">
        <button id="pg-sweep-start" type="submit">Start sweep</button></div>
      <div id="pg-sweep-error" style="grid-column: 1 / -1"></div>
    </form>
  </details>`;
}

function errorHtml(error) {
  const details = (error.details || [])
    .map((d) => `<li>${d.field ? `<code>${esc(d.field)}</code>: ` : ""}${esc(d.message)}</li>`)
    .join("");
  return `<div class="error">${esc(error.message || error)}${details ? `<ul>${details}</ul>` : ""}</div>`;
}

/**
 * Wire the form: `current()` returns the Playground's {values, spec} at this moment. The
 * defaults (model name, learning-rate range, epochs) follow the Playground's settings until
 * the user edits them.
 */
export function startSweep(root, current) {
  const $ = (sel) => root.querySelector(sel);
  const form = $("#pg-sweep-form");
  const f = form.elements;
  const edited = new Set();
  form.addEventListener("input", (event) => edited.add(event.target.name));

  function defaults() {
    const { values, spec } = current();
    const set = (name, value) => {
      if (!edited.has(name)) f[name].value = value;
    };
    set("model_name", `playground-${values.dataset}-sweep`);
    set("lr_low", +(values.lr / 10).toPrecision(3));
    set("lr_high", +Math.min(values.lr * 10, 1).toPrecision(3));
    set("epochs", values.epochs);
    // A regression (MSE) has no accuracy to maximize: its trials are judged by val_loss.
    set("objective", spec.loss === "mse" ? "val_loss" : "val_accuracy");
    const hasHidden = values.layers > 0;
    f.units_on.disabled = !hasHidden;
    f.units_low.disabled = f.units_high.disabled = !hasHidden || !f.units_on.checked;
  }

  $("#pg-sweep").addEventListener("toggle", defaults);
  $("#pg-form").addEventListener("input", defaults);
  f.units_on.addEventListener("change", defaults);
  defaults();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    defaults();
    const { values, spec } = current();
    const searchSpace = {
      "optimizer.lr": { type: "float", low: Number(f.lr_low.value), high: Number(f.lr_high.value), log: true },
    };
    if (values.layers > 0 && f.units_on.checked) {
      searchSpace["layers[0].units"] = {
        type: "int",
        low: Number(f.units_low.value),
        high: Number(f.units_high.value),
      };
    }
    const metric = f.objective.value;
    const body = {
      dataset: values.dataset,
      model_name: f.model_name.value.trim(),
      spec,
      search_space: searchSpace,
      objective: { metric, direction: OBJECTIVES[metric] },
      n_trials: Number(f.n_trials.value),
      max_parallel: Number(f.max_parallel.value),
      pruner: f.pruner.value,
      epochs: Number(f.epochs.value),
      n_samples: values.samples,
      noise: values.noise,
    };
    const button = $("#pg-sweep-start");
    button.disabled = true;
    $("#pg-sweep-error").innerHTML = "";
    try {
      const sweep = await api("/v1/sweeps", { method: "POST", body });
      location.hash = `#/sweeps/${encodeURIComponent(sweep.id)}`;
    } catch (error) {
      $("#pg-sweep-error").innerHTML = errorHtml(error);
      button.disabled = false;
    }
  });
}
