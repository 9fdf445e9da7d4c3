// The API client: the key from localStorage on every request, the service's error shape,
// and Server-Sent Events read with fetch() (EventSource cannot send an Authorization header,
// and the key must not go into a URL).

const KEY_STORAGE = "nns.apiKey";

export const getKey = () => localStorage.getItem(KEY_STORAGE) || "";

export function setKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error;
    super(error ? error.message : `HTTP ${status}`);
    this.status = status;
    this.type = error ? error.type : "http_error";
    this.details = error ? error.details || [] : [];
  }

  /** True when the server has no such route at all (not merely no such model or job). */
  get routeMissing() {
    return this.status === 404 && this.message.startsWith("no such resource:");
  }
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${getKey()}`, ...extra };
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (body instanceof FormData) {
    init.body = body; // multipart: the browser sets Content-Type with its boundary
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Every page of a job's per-epoch history. */
export async function jobHistory(jobId, signal) {
  const items = [];
  let after = 0;
  for (;;) {
    const page = await api(`/v1/jobs/${jobId}/metrics?after_epoch=${after}&limit=1000`, { signal });
    items.push(...page.items);
    if (page.next_after_epoch == null) return items;
    after = page.next_after_epoch;
  }
}

function parseBlock(block) {
  const event = { event: "message", data: "", id: null };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event.event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") event.id = value;
  }
  event.data = data.length ? JSON.parse(data.join("\n")) : null;
  return event;
}

/**
 * Read one SSE stream, calling onEvent({event, data, id}) per event. Resolves when the server
 * closes the stream; rejects on HTTP errors or a dropped connection.
 */
export async function readEvents(path, onEvent, { lastEventId = null, signal } = {}) {
  const extra = { Accept: "text/event-stream" };
  if (lastEventId != null) extra["Last-Event-ID"] = String(lastEventId);
  const response = await fetch(path, { headers: headers(extra), signal });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // Normalise line ends, but keep a trailing \r: its \n may come in the next chunk.
    const cut = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
    buffer = buffer.slice(0, cut).replace(/\r\n?/g, "\n") + buffer.slice(cut);
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (block.trim()) onEvent(parseBlock(block));
    }
  }
}

/**
 * Follow a job until its `end` event, reconnecting (with Last-Event-ID) if the connection
 * drops. Returns the final job.
 */
export async function followJob(jobId, onEvent, { lastEventId = null, signal } = {}) {
  let cursor = lastEventId;
  let finalJob = null;
  while (!finalJob) {
    try {
      await readEvents(
        `/v1/jobs/${jobId}/events`,
        (event) => {
          if (event.event === "progress" && event.id != null) cursor = event.id;
          if (event.event === "end") finalJob = event.data;
          onEvent(event);
        },
        { lastEventId: cursor, signal },
      );
    } catch (error) {
      if (signal?.aborted || error instanceof ApiError) throw error;
    }
    if (!finalJob) await new Promise((resolve) => setTimeout(resolve, 1000));
    if (signal?.aborted) throw new DOMException("aborted", "AbortError");
  }
  return finalJob;
}

// ------------------------------------------------------------------ small DOM helpers

/** Escape text for innerHTML. */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function fmt(value, digits = 4) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
}

export function duration(seconds) {
  if (seconds == null) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

export function errorBox(error) {
  return `<div class="error">${esc(error.message || error)}</div>`;
}
