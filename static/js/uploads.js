// Files for the message being written. The paperclip, a drop onto the room and a pasted image
// attach them, several at once. Each file goes up in chunks (PUT /uploads/<id>/chunks/<n>/)
// that survive a dropped connection or a reload: the upload's id is kept in localStorage and the
// server says which chunks it has, so only the missing ones are sent. A finished file becomes a
// hidden `attachments` input of the composer form, sent with the message.
// The Files & Links panel tabs and the preview dialog are wired here too.

const STORE_KEY = "parley.uploads";
const MAX_RETRY_DELAY = 15000;
// Chunks in flight at once per file: the server writes one while the next arrives.
const PARALLEL_CHUNKS = 2;
const ACTIVE = '.upload[data-state="uploading"], .upload[data-state="retrying"]';

const items = new WeakMap();  // upload element -> its state
let tray = null;
let form = null;
let roomId = null;
let maxBytes = Infinity;

function csrfHeaders() {
  const raw = document.body.getAttribute("hx-headers");
  return raw ? JSON.parse(raw) : {};
}

export function humanSize(bytes) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const fingerprint = (file) => `${file.name}|${file.size}|${file.lastModified}`;

// Uploads started in this browser and not sent yet: {id, room, fingerprint, name, size}.
function saved() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY) || "[]");
  } catch {
    return [];
  }
}
function remember(entry) {
  localStorage.setItem(STORE_KEY, JSON.stringify([...saved().filter((e) => e.id !== entry.id), entry]));
}
function forget(id) {
  localStorage.setItem(STORE_KEY, JSON.stringify(saved().filter((e) => e.id !== id)));
}

class Refused extends Error {
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

async function refusal(response) {
  const text = await response.text();
  const isText = response.headers.get("Content-Type")?.startsWith("text/plain");
  return new Refused(response.status, isText ? text : `The upload failed (${response.status}).`);
}

async function call(method, url, body = null) {
  const response = await fetch(url, { method, body, headers: csrfHeaders() });
  if (!response.ok) throw await refusal(response);
  return response.status === 204 ? null : response.json();
}

// Refusals worth no retry: the server looked at the request and said no.
const isFinal = (error) => error instanceof Refused && error.status < 500 && ![408, 429].includes(error.status);

function putChunk(item, index, blob) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const url = `/uploads/${item.id}/chunks/${index}/`;
    const done = () => {
      item.xhrs.delete(xhr);
      item.inFlight.delete(index);
    };
    item.xhrs.add(xhr);
    xhr.open("PUT", url);
    for (const [name, value] of Object.entries(csrfHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (event) => {
      item.inFlight.set(index, event.loaded);
      showProgress(item);
    };
    xhr.onload = () => {
      done();
      if (xhr.responseURL && new URL(xhr.responseURL).pathname !== url) {
        // Sent to the sign-in page: the session ended.
        reject(new Refused(401, "You were signed out; sign in and attach the file again to resume."));
      } else if (xhr.status >= 200 && xhr.status < 300) {
        resolve();
      } else {
        const isText = (xhr.getResponseHeader("Content-Type") || "").startsWith("text/plain");
        reject(new Refused(xhr.status, isText ? xhr.responseText : `The upload failed (${xhr.status}).`));
      }
    };
    xhr.onerror = () => { done(); reject(new TypeError("The connection dropped.")); };
    xhr.onabort = () => { done(); reject(new DOMException("Cancelled", "AbortError")); };
    xhr.send(blob);
  });
}

function chunkLength(item, index) {
  return Math.min(item.chunkSize, item.size - index * item.chunkSize);
}

function storedBytes(item) {
  let total = 0;
  for (const index of item.received) total += chunkLength(item, index);
  return total;
}

function setStatus(item, text) {
  item.el.querySelector(".upload-status").textContent = text;
}

function showProgress(item) {
  let inFlight = 0;
  for (const [index, sent] of item.inFlight || []) {
    if (!item.received.has(index)) inFlight += sent;
  }
  const done = storedBytes(item) + inFlight;
  const percent = item.size ? Math.floor((100 * done) / item.size) : 100;
  item.el.querySelector("progress").value = percent;
  const seconds = (performance.now() - item.started) / 1000;
  const speed = seconds > 0 ? (done - item.storedAtStart) / seconds : 0;
  setStatus(item, `${percent}% · ${humanSize(Math.max(0, speed))}/s`);
}

function syncComposer() {
  // The box may be empty when files go with the message.
  const input = document.getElementById("composer-body");
  if (input) input.required = attachedIds(form).length === 0;
}

function itemElement(name, size) {
  const el = document.createElement("div");
  el.className = "upload";
  el.innerHTML = `<span class="file-icon" aria-hidden="true"></span>
    <span class="upload-name"></span> <span class="upload-size"></span>
    <progress max="100" value="0"></progress>
    <span class="upload-status" role="status"></span>
    <button type="button" class="link upload-cancel">Cancel</button>`;
  el.querySelector(".upload-name").textContent = name;
  el.querySelector(".upload-size").textContent = humanSize(size);
  el.querySelector("progress").setAttribute("aria-label", `Upload of ${name}`);
  el.querySelector(".upload-cancel").setAttribute("aria-label", `Cancel upload of ${name}`);
  tray.append(el);
  return el;
}

function markReady(item, attachmentId) {
  item.el.dataset.state = "ready";
  item.el.querySelector("progress").value = 100;
  setStatus(item, "100% · Ready to send");
  const hidden = document.createElement("input");
  hidden.type = "hidden";
  hidden.name = "attachments";
  hidden.value = attachmentId;
  item.el.append(hidden);
  const button = item.el.querySelector(".upload-cancel");
  button.textContent = "Remove";
  button.setAttribute("aria-label", `Remove ${item.name}`);
  syncComposer();
}

function fail(item, message) {
  item.el.dataset.state = "failed";
  setStatus(item, message);
  item.el.querySelector(".upload-status").setAttribute("role", "alert");
  const button = item.el.querySelector(".upload-cancel");
  button.textContent = "Dismiss";
  button.setAttribute("aria-label", `Dismiss ${item.name}`);
  if (item.id) forget(item.id);
}

// Sends the chunks the server does not have yet, PARALLEL_CHUNKS at a time, in any order (the
// server takes them so). A dropped chunk is retried after a pause and asking what arrived; a
// refusal stops every chunk of the file.
async function sendChunks(item) {
  const count = Math.ceil(item.size / item.chunkSize);
  const pending = [];
  for (let index = 0; index < count; index += 1) {
    if (!item.received.has(index)) pending.push(index);
  }
  let failures = 0;
  let stopped = null;
  const worker = async () => {
    while (pending.length && !stopped) {
      const index = pending.shift();
      if (item.received.has(index)) continue;
      const start = index * item.chunkSize;
      try {
        await putChunk(item, index, item.file.slice(start, start + chunkLength(item, index)));
        item.received.add(index);
        failures = 0;
        showProgress(item);
      } catch (error) {
        if (stopped) return;
        if (item.cancelled || isFinal(error)) throw error;
        failures += 1;
        item.el.dataset.state = "retrying";
        setStatus(item, "Connection lost — retrying…");
        await sleep(Math.min(MAX_RETRY_DELAY, 500 * 2 ** (failures - 1)));
        // The chunk may have been stored before the connection dropped: ask, then go on.
        try {
          item.received = new Set((await call("GET", `/uploads/${item.id}/`)).received);
        } catch (refused) {
          if (isFinal(refused)) throw refused;
        }
        if (item.cancelled) throw error;
        item.el.dataset.state = "uploading";
        pending.unshift(index);
      }
    }
  };
  const stopAll = (error) => {
    stopped ??= error;
    for (const xhr of [...item.xhrs]) xhr.abort();
    throw error;
  };
  const workers = Math.min(PARALLEL_CHUNKS, pending.length);
  await Promise.all(Array.from({ length: workers }, () => worker().catch(stopAll)));
}

async function run(item) {
  item.el.dataset.state = "uploading";
  const button = item.el.querySelector(".upload-cancel");
  button.textContent = "Cancel";
  button.setAttribute("aria-label", `Cancel upload of ${item.name}`);
  try {
    let state = null;
    if (item.id) {
      try {
        state = await call("GET", `/uploads/${item.id}/`);
      } catch (error) {
        if (!isFinal(error)) throw error;
        forget(item.id);  // expired or cancelled elsewhere: start again
        item.id = null;
      }
    }
    if (!state) {
      const data = new FormData();
      data.append("name", item.name);
      data.append("size", item.size);
      data.append("type", item.file.type);
      state = await call("POST", `/rooms/${roomId}/uploads/`, data);
      item.id = state.id;
      remember({ id: item.id, room: roomId, fingerprint: fingerprint(item.file), name: item.name, size: item.size });
    }
    item.el.dataset.upload = item.id;
    item.chunkSize = state.chunk_size;
    item.received = new Set(state.received);
    item.xhrs = new Set();
    item.inFlight = new Map();
    item.started = performance.now();
    item.storedAtStart = storedBytes(item);
    showProgress(item);
    if (state.attachment === null) await sendChunks(item);
    const done = await call("POST", `/uploads/${item.id}/finish/`);
    markReady(item, done.attachment);
  } catch (error) {
    if (!item.cancelled) fail(item, error instanceof TypeError ? "Not uploaded: the connection dropped." : error.message);
  }
}

function refuseTooBig(file) {
  const el = itemElement(file.name, file.size);
  el.dataset.state = "failed";
  const status = el.querySelector(".upload-status");
  status.setAttribute("role", "alert");
  status.textContent = `${file.name} is ${humanSize(file.size)}; files can be at most ${humanSize(maxBytes)}.`;
  el.querySelector(".upload-cancel").textContent = "Dismiss";
  el.querySelector(".upload-cancel").setAttribute("aria-label", `Dismiss ${file.name}`);
}

export function attachFiles(files) {
  if (!tray) return;
  for (const file of files) {
    if (file.size > maxBytes) {
      refuseTooBig(file);  // before a single byte goes out
      continue;
    }
    const entry = saved().find((e) => e.room === roomId && e.fingerprint === fingerprint(file));
    const paused = entry && tray.querySelector(`.upload[data-upload="${entry.id}"][data-state="paused"]`);
    const item = { file, name: file.name, size: file.size, id: entry?.id ?? null, received: new Set() };
    item.el = paused || itemElement(file.name, file.size);
    items.set(item.el, item);
    run(item);
  }
}

async function cancel(el) {
  const item = items.get(el);
  const id = item?.id ?? Number(el.dataset.upload || 0);
  if (item) {
    item.cancelled = true;
    for (const xhr of [...(item.xhrs || [])]) xhr.abort();
  }
  el.remove();
  syncComposer();
  if (id) {
    forget(id);
    try {
      await call("DELETE", `/uploads/${id}/`);
    } catch {
      // Already gone; the server sweeps what is left over.
    }
  }
}

// Uploads left by an earlier page: finished ones are ready again, the rest wait for their file.
async function restore() {
  for (const entry of saved().filter((e) => e.room === roomId)) {
    const el = itemElement(entry.name, entry.size);
    el.dataset.upload = entry.id;
    el.dataset.state = "paused";
    const item = { name: entry.name, size: entry.size, id: entry.id, el, received: new Set() };
    try {
      const state = await call("GET", `/uploads/${entry.id}/`);
      item.chunkSize = state.chunk_size;
      item.received = new Set(state.received);
      if (state.attachment !== null) {
        items.set(el, item);
        markReady(item, state.attachment);
        continue;
      }
      const percent = entry.size ? Math.floor((100 * storedBytes(item)) / entry.size) : 0;
      el.querySelector("progress").value = percent;
      setStatus(item, `Paused at ${percent}%. Attach ${entry.name} again to resume.`);
      el.querySelector(".upload-cancel").textContent = "Discard";
      el.querySelector(".upload-cancel").setAttribute("aria-label", `Discard upload of ${entry.name}`);
    } catch (error) {
      el.remove();
      if (isFinal(error)) forget(entry.id);
    }
  }
}

// A Blob made in the page (a call recording) sent through the same resumable chunk API, without
// the composer's tray: resolves with the finished file's id, ready to post. A dropped chunk is
// retried after asking the server what it has; a refusal rejects with the server's reason.
export async function uploadBlob(room, blob, name, { onProgress = () => {} } = {}) {
  const data = new FormData();
  data.append("name", name);
  data.append("size", blob.size);
  data.append("type", blob.type);
  let state = await call("POST", `/rooms/${room}/uploads/`, data);
  const id = state.id;
  const count = Math.ceil(blob.size / state.chunk_size);
  let received = new Set(state.received);
  let failures = 0;
  for (let index = 0; index < count; index += 1) {
    if (received.has(index)) continue;
    const start = index * state.chunk_size;
    const response = await fetch(`/uploads/${id}/chunks/${index}/`, {
      method: "PUT",
      body: blob.slice(start, start + state.chunk_size),
      headers: { ...csrfHeaders(), "Content-Type": "application/octet-stream" },
    }).catch((error) => error);
    if (response instanceof Response && !response.ok) {
      const refused = await refusal(response);
      if (isFinal(refused)) throw refused;
    }
    if (!(response instanceof Response) || !response.ok) {
      failures += 1;
      if (failures > 8) throw new Error("The recording could not be uploaded: the connection keeps dropping.");
      await sleep(Math.min(MAX_RETRY_DELAY, 500 * 2 ** (failures - 1)));
      state = await call("GET", `/uploads/${id}/`);
      received = new Set(state.received);
      index -= 1;
      continue;
    }
    failures = 0;
    received.add(index);
    onProgress(Math.min(blob.size, (index + 1) * state.chunk_size) / blob.size);
  }
  return (await call("POST", `/uploads/${id}/finish/`)).attachment;
}

// For the composer: what goes with the message, and whether it can go yet.
export function attachedIds(composer) {
  return [...(composer?.querySelectorAll('input[name="attachments"]') || [])].map((input) => input.value);
}

export function uploadsBusy(composer) {
  return Boolean(composer?.querySelector(ACTIVE));
}

export function clearAttached(composer) {
  for (const el of composer?.querySelectorAll('.upload[data-state="ready"]') || []) {
    forget(Number(el.dataset.upload));
    el.remove();
  }
  syncComposer();
}

function hasFiles(event) {
  return [...(event.dataTransfer?.types || [])].includes("Files");
}

function initDropAndPaste(room, input) {
  const zone = document.getElementById("drop-zone");
  let depth = 0;
  room.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    zone.hidden = false;
  });
  room.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.hidden = true;
  });
  room.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  room.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    zone.hidden = true;
    attachFiles([...event.dataTransfer.files]);
  });
  input.addEventListener("paste", (event) => {
    const pasted = [...(event.clipboardData?.files || [])];
    if (!pasted.length) return;
    // An image alone is attached; with text beside it, the text is pasted as usual too.
    if (!event.clipboardData.types.includes("text/plain")) event.preventDefault();
    attachFiles(pasted);
  });
}

function initAttachMenu(composer, input) {
  const picker = document.getElementById("attach-input");
  composer.querySelector("[data-attach-pick]")?.addEventListener("click", () => picker.click());
  picker?.addEventListener("change", () => {
    attachFiles([...picker.files]);
    picker.value = "";
  });
  composer.querySelector("[data-attach-dropbox]")?.addEventListener("click", () => {
    const error = composer.querySelector(".composer-error");
    if (!window.Dropbox?.choose) {
      error.textContent = "Dropbox could not be reached; try again in a moment.";
      error.hidden = false;
      return;
    }
    window.Dropbox.choose({
      linkType: "preview",
      multiselect: true,
      success(chosen) {
        const links = chosen.map((file) => file.link).join("\n");
        input.value = input.value.trim() ? `${input.value.trim()}\n${links}` : links;
        composer.requestSubmit();
      },
    });
  });
  tray.addEventListener("click", (event) => {
    const button = event.target.closest(".upload-cancel");
    if (button) cancel(button.closest(".upload"));
  });
}

function initPanel() {
  for (const tab of document.querySelectorAll("[data-panel-tab]")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll("[data-panel-tab]")) {
        const on = other === tab;
        other.setAttribute("aria-pressed", String(on));
        document.getElementById(other.dataset.panelTab).hidden = !on;
      }
    });
  }
  const preview = document.getElementById("file-preview");
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target !== preview) return;
    const dialog = preview.querySelector("dialog");
    if (!dialog) return;
    dialog.addEventListener("close", () => { preview.innerHTML = ""; });
    dialog.querySelector(".preview-close")?.addEventListener("click", () => dialog.close());
    dialog.showModal();
  });
  document.body.addEventListener("parley:file-deleted", (event) => {
    const id = event.detail.id;
    document.getElementById(`file-item-${id}`)?.remove();
    const dialog = preview?.querySelector(`dialog[data-file="${id}"]`);
    if (dialog?.open) dialog.close();
  });
}

function init() {
  const room = document.getElementById("room");
  if (!room) return;
  initPanel();
  form = document.getElementById("composer");
  tray = document.getElementById("attachments");
  if (!form || !tray) return;
  roomId = Number(tray.dataset.room);
  maxBytes = Number(tray.dataset.maxBytes) || Infinity;
  const input = document.getElementById("composer-body");
  initDropAndPaste(room, input);
  initAttachMenu(form, input);
  restore();
}

// Tests read the limit the page was given.
window.parleyUploads = { attachFiles, uploadBlob, get maxBytes() { return maxBytes; } };

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", init);
} else {
  init();
}
