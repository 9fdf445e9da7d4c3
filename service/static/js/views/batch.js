// Batch-prediction jobs in the job views: the kind badge, their one-line summary and the
// result download. The download goes through fetch() with the key (a plain link cannot send
// the Authorization header), then hands the file to the browser.

import { ApiError, esc, getKey } from "../api.js";

const KIND_LABELS = { batch_predict: "batch", lr_range_test: "lr test" };

/** A badge naming the job's kind; nothing for an ordinary training job. */
export function kindBadge(job) {
  const label = KIND_LABELS[job.kind];
  return label ? `<span class="badge kind-${esc(job.kind)}">${esc(label)}</span>` : "";
}

/** The download link of a succeeded batch (handled by onDownloadClick), else "". */
export function downloadLink(job) {
  if (job.kind !== "batch_predict" || job.status !== "succeeded" || !job.batch) return "";
  const name = `${job.model_name}-v${job.batch.version}-${job.id}.${job.batch.format}`;
  return `<a href="${esc(job.batch.result)}" class="batch-download"
    data-name="${esc(name)}">Download ${esc(job.batch.format.toUpperCase())}</a>`;
}

/** The model cell of a batch: badge, model and version, and its result once succeeded. */
export function batchSummary(job) {
  const rows = job.batch?.rows != null ? ` · ${job.batch.rows} rows` : "";
  const link = downloadLink(job);
  return `${kindBadge(job)} ${esc(job.model_name)} v${esc(job.batch?.version ?? "?")}${rows}
    ${link ? `· ${link}` : ""}`;
}

async function download(path, name) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${getKey()}` } });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * Click handler for a container holding download links: fetches the file with the key; on
 * failure (e.g. 410 once the result expired) shows the server's message in the link's place.
 * Returns true when the click was on such a link.
 */
export function onDownloadClick(event) {
  const link = event.target.closest("a.batch-download");
  if (!link) return false;
  event.preventDefault();
  download(link.getAttribute("href"), link.dataset.name).catch((error) => {
    const note = document.createElement("span");
    note.className = "batch-error";
    note.textContent = error.message;
    link.replaceWith(note);
  });
  return true;
}
