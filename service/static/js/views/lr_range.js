// The learning-rate range test from the dashboard: submit a spec as an "lr_range_test" job,
// wait for its end on the SSE stream, then show the smoothed loss against the rate (log
// scale) and the suggested rate. Shared by the Playground and the job page.

import { api, errorBox, esc, followJob } from "../api.js";

/** Run a range test of `body` (spec, dataset, model_name ...); resolves to the ended job. */
export async function runRangeTest(body, signal) {
  const job = await api("/v1/jobs", {
    method: "POST",
    body: { ...body, kind: "lr_range_test" },
    signal,
  });
  return followJob(job.id, () => {}, { signal });
}

/** A small SVG of the smoothed loss against log10(lr), the suggestion marked. */
export function curveSvg(result, width = 320, height = 140) {
  const points = result.points.filter((p) => Number.isFinite(p.smoothed));
  if (points.length < 2) return "";
  const xs = points.map((p) => Math.log10(p.lr));
  const ys = points.map((p) => p.smoothed);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => 4 + ((x - x0) / (x1 - x0 || 1)) * (width - 8);
  const sy = (y) => height - 4 - ((y - y0) / (y1 - y0 || 1)) * (height - 8);
  const line = points.map((p, k) => `${sx(xs[k]).toFixed(1)},${sy(ys[k]).toFixed(1)}`).join(" ");
  const mark = result.suggested_lr
    ? `<line x1="${sx(Math.log10(result.suggested_lr))}" x2="${sx(Math.log10(result.suggested_lr))}"
        y1="0" y2="${height}" stroke="#f59322" stroke-dasharray="4 3"/>` : "";
  return `<svg class="lr-curve" width="${width}" height="${height}" role="img"
      aria-label="smoothed loss against learning rate">${mark}
    <polyline points="${line}" fill="none" stroke="#0877bd" stroke-width="1.5"/></svg>`;
}

/** The result as HTML; `applyLabel` adds a button (id lr-apply) to use the suggestion. */
export function resultHtml(job, applyLabel = null) {
  if (job.status !== "succeeded" || !job.lr_range) {
    const why = job.failure_reason ? `: ${job.failure_reason}` : "";
    return errorBox(`The range test ended ${job.status}${why}`);
  }
  const r = job.lr_range;
  const rate = r.suggested_lr;
  const text = rate == null
    ? "The loss never fell over this range: no rate to suggest."
    : `Suggested learning rate <b id="lr-suggested">${Number(rate.toPrecision(3))}</b>
       (steepest fall of the smoothed loss; the test ${esc(r.stop_reason)}).`;
  const button = rate != null && applyLabel
    ? ` <button type="button" id="lr-apply">${esc(applyLabel)}</button>` : "";
  return `<div class="notice">${text}${button}
    <a href="#/jobs/${encodeURIComponent(job.id)}">job</a></div>${curveSvg(r)}`;
}

/** Wire `button` to run a range test of `body()` and show the result in `out`. */
export function rangeTestButton(button, out, body, { applyLabel = null, apply = null } = {}) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.innerHTML = `<p class="muted">Running a learning-rate range test…</p>`;
    try {
      const job = await runRangeTest(body());
      out.innerHTML = resultHtml(job, applyLabel);
      out.querySelector("#lr-apply")?.addEventListener("click", () => apply(job.lr_range.suggested_lr));
    } catch (error) {
      out.innerHTML = errorBox(error);
    } finally {
      button.disabled = false;
    }
  });
}

/** The job page: a range test job shows its result; the button tests this job's spec. */
export function jobRangeTest(button, out, job) {
  if (job.lr_range) out.innerHTML = resultHtml(job);
  const h = job.hyperparameters || {};
  rangeTestButton(button, out, () => ({
    spec: job.spec,
    dataset: job.dataset,
    model_name: job.model_name,
    n_samples: h.n_samples,
    noise: h.noise,
    test_fraction: h.test_fraction,
    test_dataset: job.test_dataset ?? undefined,
  }));
}
