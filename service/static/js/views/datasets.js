// Datasets: upload a file (drop it or pick it), check its first rows and columns, choose the
// label column, and see what the server stored: rows, train/test split, classes and their
// balance. Below, the caller's uploads (delete one with a click) and the built-in names.
// The preview is parsed here in the browser (table_preview.js); the server is the judge:
// its errors are shown next to the form field they name.

import { api, errorBox, esc, when } from "../api.js";
import { PREVIEW_BYTES, PREVIEW_ROWS, previewFile } from "../table_preview.js";

/** Which form control an API error's field belongs to ("body.name", "file.x3", "label_column"). */
function controlOf(field) {
  const name = String(field || "").replace(/^body\./, "").split(".")[0];
  if (["file", "labels", "format"].includes(name)) return "file";
  if (["name", "label_column", "test_fraction", "header"].includes(name)) return name;
  return null;
}

/** The elements outlined for an error in each control. */
const CONTROLS = {
  file: "#ds-drop",
  name: "#ds-name",
  label_column: "#ds-label, #ds-label-text",
  test_fraction: "#ds-test",
  header: "#ds-header",
};

/** The stem of a file name, as the server names an upload by default ("iris.csv" → "iris"). */
function stem(filename) {
  return filename.split(/[\\/]/).pop().split(".")[0].trim();
}

function columnNames(preview, header) {
  const width = preview.width;
  if (preview.format === "text") return ["label", "text"];
  if (!header) return Array.from({ length: width }, (_, j) => `column ${j}`);
  return Array.from({ length: width }, (_, j) => (preview.rows[0][j] ?? "").trim());
}

function previewTable(preview, header, names, labelAt) {
  const skip = header ? 1 : 0;
  const body = preview.rows.slice(skip, skip + PREVIEW_ROWS);
  const th = names
    .map((n, j) => `<th class="${j === labelAt ? "label-col" : ""}">${esc(n)}</th>`)
    .join("");
  const trs = body
    .map(
      (row) =>
        `<tr>${names
          .map((_, j) => `<td class="${j === labelAt ? "label-col" : ""}">${esc(row[j] ?? "")}</td>`)
          .join("")}</tr>`,
    )
    .join("");
  return `<div class="table-scroll"><table id="ds-preview-table">
    <thead><tr>${th}</tr></thead><tbody>${trs}</tbody></table></div>`;
}

function balanceHtml(balance) {
  const entries = Object.entries(balance || {});
  const total = entries.reduce((sum, [, n]) => sum + n, 0) || 1;
  return `<div class="balance" id="ds-sum-balance">${entries
    .map(([label, n]) => {
      const pct = ((100 * n) / total).toFixed(1);
      return `<span data-class="${esc(label)}">${esc(label)}</span>
        <div class="bar"><div style="width:${pct}%"></div></div>
        <span class="muted" data-count="${n}">${n} (${pct}%)</span>`;
    })
    .join("")}</div>`;
}

function summaryHtml(ds) {
  const row = (label, id, value) => `<tr><th>${label}</th><td id="${id}">${value}</td></tr>`;
  const classes = ds.classes ? ds.classes.map((c) => esc(c)).join(", ") : "– (no classes)";
  return `<table class="summary">
    ${row("Id", "ds-sum-id", `<code>${esc(ds.id)}</code>`)}
    ${row("Name", "ds-sum-name", esc(ds.name))}
    ${row("Task", "ds-sum-task", esc(ds.task))}
    ${row("Format", "ds-sum-format", esc(ds.format ?? "–"))}
    ${row("Rows", "ds-sum-rows", ds.n_rows)}
    ${row("Train / test", "ds-sum-split", `<span id="ds-sum-train">${ds.n_train ?? "–"}</span> /
      <span id="ds-sum-test">${ds.n_test ?? "–"}</span>
      <span class="muted">(test fraction ${ds.test_fraction ?? "–"})</span>`)}
    ${row("Features", "ds-sum-features", ds.n_features ?? "–")}
    ${row("Classes", "ds-sum-classes", classes)}
    </table>
    ${ds.class_balance ? `<h2 style="margin-top:0.8rem">Class balance</h2>${balanceHtml(ds.class_balance)}` : ""}
    <p class="muted">Train on it with <code>"dataset": "${esc(ds.id)}"</code> in a job.</p>`;
}

function listRow(ds) {
  return `<tr class="clickable" data-id="${esc(ds.id)}">
    <td>${esc(ds.name)}</td><td><code>${esc(ds.id)}</code></td><td>${esc(ds.task)}</td>
    <td>${esc(ds.format ?? "")}</td><td>${ds.n_rows}</td><td>${ds.n_train ?? "–"} / ${ds.n_test ?? "–"}</td>
    <td>${ds.classes ? ds.classes.length : "–"}</td><td>${when(ds.created_at)}</td>
    <td><button class="secondary" data-delete="${esc(ds.id)}">Delete</button></td></tr>`;
}

export async function render(root) {
  root.innerHTML = `
    <div class="grid">
      <div class="card">
        <h1>Upload a dataset</h1>
        <div id="ds-drop" class="drop-zone">
          <div>Drop a file here, or <label class="file-pick">choose one
            <input id="ds-file" type="file" accept=".csv,.tsv,.txt,.text,.npz,.gz,.zip,.idx,.ubyte"></label></div>
          <div class="muted">CSV (header row optional), label&lt;TAB&gt;text (.tsv, .txt), .npz, IDX;
            .gz too</div>
          <div id="ds-file-name" class="muted"></div>
        </div>
        <div class="field-error" data-field="file"></div>
        <form id="ds-form" class="form-grid" novalidate style="margin-top:0.8rem">
          <label for="ds-name">Name</label>
          <div><input id="ds-name" name="name" maxlength="100" placeholder="from the file name">
            <div class="field-error" data-field="name"></div></div>
          <label for="ds-label">Label column</label>
          <div><select id="ds-label" name="label_column" disabled></select>
            <input id="ds-label-text" name="label_column_text" hidden
              placeholder="column name or 0-based index (CSV only)">
            <div class="field-error" data-field="label_column"></div></div>
          <label for="ds-header">Header row</label>
          <div><label class="muted"><input id="ds-header" type="checkbox" disabled>
            the first row holds column names</label>
            <div class="field-error" data-field="header"></div></div>
          <label for="ds-test">Test fraction</label>
          <div><input id="ds-test" name="test_fraction" type="number" min="0" max="0.95" step="0.05"
            value="0.2"><div class="field-error" data-field="test_fraction"></div></div>
          <span></span>
          <div class="row"><button id="ds-upload" type="submit" disabled>Upload</button>
            <span id="ds-status" class="muted"></span></div>
        </form>
        <div id="ds-error"></div>
      </div>
      <div class="card">
        <h2>Preview</h2>
        <div id="ds-preview-note" class="muted">Pick a file to see its first rows and columns.</div>
        <div id="ds-preview"></div>
      </div>
    </div>
    <div class="card" id="ds-summary-card" hidden>
      <h2>Stored dataset <span id="ds-summary-title"></span></h2>
      <div id="ds-summary"></div>
    </div>
    <div class="card">
      <div class="row"><h1 style="margin:0">Your datasets</h1><span id="ds-total" class="muted"></span></div>
      <div id="ds-list-error"></div>
      <table><thead><tr><th>Name</th><th>Id</th><th>Task</th><th>Format</th><th>Rows</th>
        <th>Train / test</th><th>Classes</th><th>Uploaded</th><th></th></tr></thead>
        <tbody id="ds-list"><tr><td colspan="9" class="muted">Loading…</td></tr></tbody></table>
      <p id="ds-builtins" class="muted"></p>
    </div>`;
  const $ = (sel) => root.querySelector(sel);
  const form = $("#ds-form");
  let file = null;
  let preview = null;
  let uploads = [];
  let shownId = null;

  function clearErrors() {
    $("#ds-error").innerHTML = "";
    for (const el of root.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of root.querySelectorAll(".invalid")) el.classList.remove("invalid");
  }

  function showError(error) {
    const details = error.details || [];
    const lines = details.map((d) => `<div><b>${esc(d.field)}</b>: ${esc(d.message)}</div>`);
    $("#ds-error").innerHTML = `<div class="error"><div>${esc(error.message)}</div>${lines.join("")}</div>`;
    for (const detail of details) {
      const control = controlOf(detail.field);
      const slot = control && root.querySelector(`.field-error[data-field="${control}"]`);
      if (!slot) continue;
      slot.textContent = slot.textContent ? `${slot.textContent}; ${detail.message}` : detail.message;
      for (const el of root.querySelectorAll(CONTROLS[control])) el.classList.add("invalid");
    }
  }

  function labelIndex() {
    return Number($("#ds-label").value);
  }

  function drawPreview() {
    const select = $("#ds-label");
    const headerBox = $("#ds-header");
    const note = $("#ds-preview-note");
    select.hidden = false;
    $("#ds-label-text").hidden = true;
    if (!preview || preview.format === "binary") {
      $("#ds-preview").innerHTML = "";
      select.innerHTML = "";
      select.disabled = true;
      headerBox.disabled = true;
      headerBox.checked = false;
      if (preview) {
        note.textContent = `No preview: this is ${preview.what}. It can still be uploaded; the server reads it.`;
        select.hidden = true;
        $("#ds-label-text").hidden = false;
      }
      return;
    }
    const header = preview.format === "csv" && headerBox.checked;
    const names = columnNames(preview, header);
    const previous = select.value;
    select.innerHTML = names
      .map((n, j) => `<option value="${j}">${esc(n || `column ${j}`)}</option>`)
      .join("");
    select.value = previous && Number(previous) < names.length ? previous : String(names.length - 1);
    if (preview.format === "text") select.value = "0";
    select.disabled = preview.format !== "csv";
    headerBox.disabled = preview.format !== "csv";
    const shownRows = Math.min(PREVIEW_ROWS, preview.rows.length - (header ? 1 : 0));
    const kind = preview.format === "csv" ? "CSV" : "label<TAB>text lines";
    const extent = preview.truncated
      ? `the first ${shownRows} of the rows in its first ${PREVIEW_BYTES / 1024} KB`
      : `the first ${shownRows} of ${preview.rowsRead - (header ? 1 : 0)} rows`;
    note.textContent = `${kind}, ${names.length} columns; ${extent}. ${
      preview.format === "csv" ? (header ? "The first row names the columns." : "No header row: columns are numbered.") : ""
    }`;
    $("#ds-preview").innerHTML = previewTable(preview, header, names, labelIndex());
  }

  async function setFile(picked) {
    clearErrors();
    file = picked;
    preview = null;
    $("#ds-file-name").textContent = `${picked.name} · ${(picked.size / 1024).toFixed(1)} KiB`;
    $("#ds-name").value = stem(picked.name);
    $("#ds-upload").disabled = false;
    $("#ds-preview-note").textContent = "Reading…";
    try {
      const read = await previewFile(picked);
      if (file !== picked) return; // another file was picked meanwhile
      preview = read;
      $("#ds-header").checked = Boolean(read.header);
      $("#ds-label").innerHTML = ""; // a new file starts with its last column as the label
      drawPreview();
    } catch (error) {
      $("#ds-preview-note").textContent = `No preview: ${error.message}`;
    }
  }

  function formData() {
    const data = new FormData();
    data.append("file", file, file.name);
    const name = $("#ds-name").value.trim();
    if (name) data.append("name", name);
    data.append("test_fraction", $("#ds-test").value.trim());
    if (preview?.format === "csv") {
      const at = labelIndex();
      if ($("#ds-header").checked) {
        data.append("label_column", preview.rows[0][at].trim());
        // Detected: the server detects it too. Ticked by hand: say so.
        if (!preview.header) data.append("header", "true");
      } else {
        data.append("label_column", String(at));
        data.append("header", "false");
      }
    }
    if (preview?.sniffed) data.append("format", preview.format);
    if (preview?.format === "binary" && $("#ds-label-text").value.trim()) {
      data.append("label_column", $("#ds-label-text").value.trim());
    }
    return data;
  }

  async function refreshList() {
    try {
      const { datasets } = await api("/v1/datasets");
      uploads = datasets.filter((ds) => ds.source === "upload");
      const builtins = datasets.filter((ds) => ds.source === "builtin").map((ds) => ds.name);
      $("#ds-list").innerHTML = uploads.length
        ? uploads.map(listRow).join("")
        : `<tr><td colspan="9" class="muted">No uploads yet.</td></tr>`;
      $("#ds-total").textContent = `${uploads.length} uploaded`;
      $("#ds-builtins").textContent = builtins.length ? `Built in: ${builtins.join(", ")}.` : "";
      $("#ds-list-error").innerHTML = "";
    } catch (error) {
      $("#ds-list-error").innerHTML = errorBox(error);
    }
  }

  function showSummary(ds) {
    shownId = ds.id;
    $("#ds-summary-card").hidden = false;
    $("#ds-summary-title").textContent = ds.name;
    $("#ds-summary").innerHTML = summaryHtml(ds);
  }

  const drop = $("#ds-drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const picked = event.dataTransfer?.files?.[0];
    if (picked) setFile(picked);
  });
  $("#ds-file").addEventListener("change", (event) => {
    const picked = event.target.files[0];
    if (picked) setFile(picked);
  });
  $("#ds-header").addEventListener("change", drawPreview);
  $("#ds-label").addEventListener("change", drawPreview);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file) return;
    clearErrors();
    const button = $("#ds-upload");
    button.disabled = true;
    $("#ds-status").textContent = "Uploading…";
    try {
      const stored = await api("/v1/datasets", { method: "POST", body: formData() });
      $("#ds-status").textContent = `Stored as ${stored.id}.`;
      showSummary(stored);
      await refreshList();
    } catch (error) {
      $("#ds-status").textContent = "";
      showError(error);
      if (error.status === 409) await refreshList(); // show the dataset holding the name
    } finally {
      button.disabled = false;
    }
  });

  $("#ds-list").addEventListener("click", async (event) => {
    const id = event.target.dataset?.delete;
    if (id) {
      try {
        await api(`/v1/datasets/${encodeURIComponent(id)}`, { method: "DELETE" });
        if (shownId === id) $("#ds-summary-card").hidden = true;
      } catch (error) {
        $("#ds-list-error").innerHTML = errorBox(error);
      }
      await refreshList();
      return;
    }
    const row = event.target.closest("tr[data-id]");
    const ds = row && uploads.find((d) => d.id === row.dataset.id);
    if (ds) showSummary(ds);
  });

  await refreshList();
}
