// The preview of an upload before it is sent: the first rows and columns of a CSV or
// label<TAB>text file, read from its first 64 KB in the browser, and whether its first row
// looks like a header. Binary formats (.npz, IDX, anything compressed) get no preview.
// The formats follow the server's choice by file name (service/dataset_files.py).

export const PREVIEW_BYTES = 64 * 1024;
export const PREVIEW_ROWS = 10;
/** Rows after the first that header detection looks at (as the server does). */
const HEADER_SAMPLE_ROWS = 50;

const BINARY = [
  [/\.(gz|zip|bz2|xz)$/, "a compressed file"],
  [/\.npz$/, "an .npz archive"],
  [/(\.idx|\.ubyte|-ubyte)$/, "an IDX file"],
];

/** The format the server will infer from the name: "csv", "text", "binary" (with why), or
 * null when the name does not tell (the content is sniffed then). */
export function formatOf(name) {
  const lower = name.toLowerCase();
  for (const [pattern, what] of BINARY) {
    if (pattern.test(lower)) return { format: "binary", what };
  }
  if (lower.endsWith(".csv")) return { format: "csv" };
  if (/\.(tsv|txt|text)$/.test(lower)) return { format: "text" };
  return { format: null };
}

/** Rows of delimited text (RFC 4180 quoting: "a ""b""" is one cell); blank lines skipped. */
export function parseDelimited(text, delimiter) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  const endRow = () => {
    row.push(cell);
    if (row.length > 1 || row[0].trim()) rows.push(row);
    row = [];
    cell = "";
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && !cell.trim()) {
      quoted = true;
      cell = "";
    } else if (c === delimiter) {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      endRow();
    } else cell += c;
  }
  if (cell || row.length) endRow();
  return rows;
}

/** label<TAB>text lines as [label, text] rows (the text is everything after the first tab). */
function parseTextLines(text) {
  return text
    .split("\n")
    .map((line) => line.replace(/\r$/, ""))
    .filter((line) => line.trim())
    .map((line) => {
      const tab = line.indexOf("\t");
      return tab < 0 ? [line] : [line.slice(0, tab), line.slice(tab + 1)];
    });
}

const isNumber = (cell) => cell.trim() !== "" && Number.isFinite(Number(cell.trim()));

/** Whether the first row names the columns (the server's rule, nn_core/datasets/loaders.py):
 * in every column whose later cells are all numbers, the first row's cell is not a number,
 * and there is at least one such column. A lone row is a header when any cell is not a number.
 */
export function looksLikeHeader(rows) {
  if (!rows.length) return false;
  const [first, ...rest] = rows;
  if (!rest.length) return first.some((cell) => cell.trim() && !isNumber(cell));
  const numeric = first
    .map((_, j) => j)
    .filter((j) => rest.every((row) => j < row.length && isNumber(row[j])));
  return numeric.length > 0 && numeric.every((j) => !isNumber(first[j]));
}

/** The start of a file as text, without a partial last line; null when it is not text. */
async function headText(file) {
  const bytes = new Uint8Array(await file.slice(0, PREVIEW_BYTES).arrayBuffer());
  if (bytes.includes(0)) return null;
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: file.size <= PREVIEW_BYTES }).decode(bytes);
  } catch {
    return null;
  }
  text = text.replace(/^\uFEFF/, "");
  if (file.size > PREVIEW_BYTES) text = text.slice(0, text.lastIndexOf("\n") + 1);
  return text;
}

/**
 * The preview of `file`:
 * - { format: "binary", what } when it cannot be previewed (still uploadable);
 * - { format: "csv" | "text", rows, width, header, truncated, sniffed } otherwise, where
 *   `rows` are the first PREVIEW_ROWS + 1 rows read (a header row among them), `width` the widest row, `header`
 *   whether the first row looks like column names, `truncated` whether the file goes on past
 *   what was read, and `sniffed` whether the format came from the content, not the name.
 */
export async function previewFile(file) {
  const named = formatOf(file.name);
  if (named.format === "binary") return named;
  const text = await headText(file);
  if (text === null) return { format: "binary", what: "not a text file" };
  let format = named.format;
  const sniffed = format === null;
  if (sniffed) {
    const firstLine = text.split("\n", 1)[0];
    format = firstLine.includes("\t") && !firstLine.includes(",") ? "text" : "csv";
  }
  const all = format === "csv" ? parseDelimited(text, ",") : parseTextLines(text);
  const header = format === "csv" && looksLikeHeader(all.slice(0, HEADER_SAMPLE_ROWS + 1));
  return {
    format,
    sniffed,
    header,
    rows: all.slice(0, PREVIEW_ROWS + 1),
    rowsRead: all.length,
    width: Math.max(0, ...all.slice(0, PREVIEW_ROWS + 1).map((row) => row.length)),
    truncated: file.size > PREVIEW_BYTES,
  };
}
