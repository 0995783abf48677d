// Record screen and Take screenshot, from the attach menu. Both ask the browser for a screen,
// window or tab (getDisplayMedia). A recording is made with MediaRecorder to WebM, watched in a
// preview, then attached; a screenshot is one frame, cropped if the person wants, attached as a
// PNG. Either goes up through uploads.js like any other file: with progress, in resumable
// chunks, and sent with the message being written. Where the browser cannot capture (phones),
// or the person cancels the browser's picker, the composer's error line says so and nothing
// is attached.
import { attachFiles, humanSize } from "./uploads.js";

// WebM in order of preference; the first that this browser can record is used.
const RECORDING_TYPES = ["video/webm;codecs=vp9,opus", "video/webm;codecs=vp8,opus", "video/webm"];
// Screen content compresses well: at most about 7.5 MB of video a minute, plus 0.5 MB of sound.
const VIDEO_BITS_PER_SECOND = 1_000_000;
const AUDIO_BITS_PER_SECOND = 64_000;
const MIC_CHOICE_KEY = "parley.capture.microphone";
// A drag shorter than this (in screenshot pixels) is a click, not a crop.
const MIN_CROP = 4;

const pad = (n) => String(n).padStart(2, "0");

function fileStamp(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}-${pad(date.getHours())}${pad(date.getMinutes())}`;
}

function clock(seconds) {
  const whole = Math.floor(seconds);
  const hours = Math.floor(whole / 3600);
  const rest = `${pad(Math.floor((whole % 3600) / 60))}:${pad(whole % 60)}`;
  return hours ? `${hours}:${rest}` : rest.replace(/^0/, "");
}

function spokenLength(seconds) {
  const plural = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (seconds % 3600 === 0) return plural(seconds / 3600, "hour");
  if (seconds % 60 === 0) return plural(seconds / 60, "minute");
  return plural(seconds, "second");
}

const canCaptureScreen = () => typeof navigator.mediaDevices?.getDisplayMedia === "function";

function recordingType() {
  if (typeof window.MediaRecorder !== "function") return null;
  return RECORDING_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || null;
}

// The composer's error line: the one place a person looks when something was not attached.
let shownError = null;
function showError(text) {
  const line = document.querySelector("#composer .composer-error");
  if (!line) return;
  line.textContent = text;
  line.hidden = false;
  shownError = text;
}
function clearError() {
  const line = document.querySelector("#composer .composer-error");
  if (line && shownError !== null && line.textContent === shownError) line.hidden = true;
  shownError = null;
}

function whyNot(error, what) {
  switch (error?.name) {
    case "NotAllowedError":
    case "AbortError":
      return `${what} cancelled: no screen, window or tab was shared, so nothing was attached.`;
    case "NotFoundError":
      return `${what}: there is no screen, window or tab to capture here; nothing was attached.`;
    case "NotReadableError":
      return `${what}: the screen could not be read (another program may hold it); nothing was attached.`;
    default:
      return `${what} failed (${error?.message || error}); nothing was attached.`;
  }
}

const UNSUPPORTED = "This browser cannot capture the screen (phones and tablets cannot); use “Upload from this device” instead.";

function stopTracks(...streams) {
  for (const stream of streams) for (const track of stream?.getTracks() || []) track.stop();
}

function askForScreen(audio) {
  // The current tab is offered too: people often want to show the conversation itself.
  return navigator.mediaDevices.getDisplayMedia({ video: true, audio, selfBrowserSurface: "include" });
}

// Record screen ------------------------------------------------------------------------------

function initRecorder(dialog) {
  const steps = [...dialog.querySelectorAll("[data-step]")];
  const micBox = dialog.querySelector("[data-capture-mic]");
  const timer = dialog.querySelector(".capture-timer");
  const ofLimit = dialog.querySelector(".capture-of");
  const preview = dialog.querySelector(".capture-preview");
  const startButton = dialog.querySelector("[data-capture-start]");
  const note = dialog.querySelector('[data-step="preview"] .capture-note');
  let session = null;  // the recording being made or previewed

  const show = (name) => { for (const step of steps) step.hidden = step.dataset.step !== name; };
  const limitSeconds = () => Math.max(1, Number(dialog.dataset.maxSeconds) || 1800);

  function open() {
    clearError();
    if (!canCaptureScreen()) return showError(UNSUPPORTED);
    if (!recordingType()) return showError("This browser cannot record video (no WebM MediaRecorder); use “Upload from this device” instead.");
    micBox.checked = localStorage.getItem(MIC_CHOICE_KEY) === "on";
    dialog.querySelector("[data-capture-limit]").textContent = spokenLength(limitSeconds());
    show("setup");
    dialog.showModal();
  }

  function mixSound(display, mic) {
    const tracks = [...display.getAudioTracks(), ...(mic?.getAudioTracks() || [])];
    if (tracks.length < 2) return { track: tracks[0] || null, context: null };
    const context = new AudioContext();
    const mix = context.createMediaStreamDestination();
    for (const track of tracks) context.createMediaStreamSource(new MediaStream([track])).connect(mix);
    return { track: mix.stream.getAudioTracks()[0], context };
  }

  function release(current) {
    if (current.released) return;
    current.released = true;
    clearInterval(current.ticker);
    clearTimeout(current.deadline);
    stopTracks(current.display, current.mic);
    current.context?.close();
  }

  async function start() {
    localStorage.setItem(MIC_CHOICE_KEY, micBox.checked ? "on" : "off");
    startButton.disabled = true;  // one picker at a time
    const current = { chunks: [], notes: [], startedAt: new Date(), limit: limitSeconds() };
    try {
      current.display = await askForScreen(true);
      if (micBox.checked) {
        try {
          current.mic = await navigator.mediaDevices.getUserMedia({ audio: true });
        } catch (error) {
          current.notes.push(error?.name === "NotAllowedError"
            ? "The microphone was not allowed, so it is not in the recording."
            : "No microphone could be opened, so it is not in the recording.");
        }
      }
    } catch (error) {
      dialog.close();
      showError(whyNot(error, "Screen recording"));
      return;
    } finally {
      startButton.disabled = false;
    }
    if (!dialog.open) {  // cancelled while the browser was asking
      stopTracks(current.display, current.mic);
      return;
    }
    const [video] = current.display.getVideoTracks();
    const sound = mixSound(current.display, current.mic);
    current.context = sound.context;
    const stream = new MediaStream(sound.track ? [video, sound.track] : [video]);
    const type = recordingType();
    try {
      current.recorder = new MediaRecorder(stream, {
        mimeType: type,
        videoBitsPerSecond: VIDEO_BITS_PER_SECOND,
        audioBitsPerSecond: AUDIO_BITS_PER_SECOND,
      });
    } catch (error) {
      release(current);
      dialog.close();
      showError(`Screen recording failed (${error.message}); nothing was attached.`);
      return;
    }
    session = current;
    current.recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size) current.chunks.push(event.data);
      tick(current);
    });
    current.recorder.addEventListener("stop", () => finished(current));
    current.recorder.addEventListener("error", () => stop(current, "Recording failed, so it stopped here."));
    video.addEventListener("ended", () => stop(current, "Sharing ended, so the recording stopped."));
    current.recorder.start(1000);
    current.began = performance.now();
    ofLimit.textContent = `of ${clock(current.limit)}`;
    timer.textContent = clock(0);
    show("recording");
    current.ticker = setInterval(() => tick(current), 250);
    current.deadline = setTimeout(() => tick(current), current.limit * 1000);
  }

  function tick(current) {
    if (current.recorder.state === "inactive") return;
    const seconds = (performance.now() - current.began) / 1000;
    timer.textContent = clock(Math.min(seconds, current.limit));
    if (seconds >= current.limit) {
      stop(current, `Stopped at the ${spokenLength(current.limit)} limit.`);
    }
  }

  function stop(current, why = "") {
    if (current.recorder.state !== "inactive") {
      if (why) current.notes.push(why);
      current.seconds = (performance.now() - current.began) / 1000;
      current.recorder.stop();
    }
    release(current);
  }

  async function finished(current) {
    release(current);
    if (session !== current || !dialog.open) return;  // discarded meanwhile
    current.seconds ??= (performance.now() - current.began) / 1000;  // it stopped by itself
    const recorded = new Blob(current.chunks, { type: "video/webm" });
    current.chunks = [];
    // static/vendor/fix-webm-duration: without it a player shows no length and cannot seek.
    const withLength = window.ysFixWebmDuration;
    current.blob = withLength && recorded.size
      ? await withLength(recorded, current.seconds * 1000, { logger: false })
      : recorded;
    if (session !== current || !dialog.open) return;
    if (!current.blob.size) {
      dialog.close();
      showError("Nothing was recorded, so nothing was attached.");
      return;
    }
    current.url = URL.createObjectURL(current.blob);
    preview.src = current.url;
    note.textContent = [
      `${clock(current.seconds)} recorded · ${humanSize(current.blob.size)}.`,
      ...current.notes,
    ].join(" ");
    show("preview");
    dialog.querySelector("[data-capture-send]").focus();
  }

  function send() {
    const current = session;
    if (!current?.blob) return;
    const name = `screen-recording-${fileStamp(current.startedAt)}.webm`;
    attachFiles([new File([current.blob], name, { type: "video/webm", lastModified: Date.now() })]);
    dialog.close();
    document.getElementById("composer-body")?.focus();
  }

  // Closing the dialog in any way (Discard, Cancel, Esc, Send) ends what it held.
  dialog.addEventListener("close", () => {
    const current = session;
    session = null;
    if (!current) return;
    if (current.recorder?.state === "recording") current.recorder.stop();
    release(current);
    preview.removeAttribute("src");
    preview.load();
    if (current.url) URL.revokeObjectURL(current.url);
  });
  // Esc while recording would throw the recording away: Stop first.
  dialog.addEventListener("cancel", (event) => {
    if (session?.recorder?.state === "recording") event.preventDefault();
  });
  startButton.addEventListener("click", start);
  dialog.querySelector("[data-capture-stop]").addEventListener("click", () => session && stop(session));
  dialog.querySelector("[data-capture-send]").addEventListener("click", send);
  dialog.querySelector("[data-capture-discard]").addEventListener("click", () => dialog.close());
  dialog.querySelector("[data-capture-close]").addEventListener("click", () => dialog.close());
  return open;
}

// Take screenshot ----------------------------------------------------------------------------

async function grabFrame(stream) {
  const [track] = stream.getVideoTracks();
  if (typeof window.ImageCapture === "function") {
    try {
      return await new ImageCapture(track).grabFrame();
    } catch {
      // Some browsers refuse screen tracks here; a video element always works.
    }
  }
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  await video.play();
  if (!video.videoWidth || video.readyState < 2) {
    await new Promise((resolve) => video.addEventListener("loadeddata", resolve, { once: true }));
  }
  return video;
}

function initScreenshot(dialog) {
  const canvas = dialog.querySelector(".crop-image");
  const box = dialog.querySelector(".crop-box");
  const note = dialog.querySelector(".capture-note");
  const reset = dialog.querySelector("[data-capture-reset]");
  let takenAt = null;
  let crop = null;  // {x, y, width, height} in screenshot pixels, or null for the whole picture
  let dragFrom = null;
  let asking = false;

  function showCrop() {
    box.hidden = !crop;
    reset.disabled = !crop;
    if (crop) {
      box.style.left = `${(100 * crop.x) / canvas.width}%`;
      box.style.top = `${(100 * crop.y) / canvas.height}%`;
      box.style.width = `${(100 * crop.width) / canvas.width}%`;
      box.style.height = `${(100 * crop.height) / canvas.height}%`;
    }
    const { width, height } = crop || canvas;
    note.textContent = crop
      ? `Cropped to ${width} × ${height} pixels.`
      : `Whole picture, ${width} × ${height} pixels.`;
    dialog.dataset.size = `${width}x${height}`;
  }

  function pixelAt(event) {
    const rect = canvas.getBoundingClientRect();
    const clamp = (value, most) => Math.round(Math.min(most, Math.max(0, value)));
    return {
      x: clamp(((event.clientX - rect.left) * canvas.width) / rect.width, canvas.width),
      y: clamp(((event.clientY - rect.top) * canvas.height) / rect.height, canvas.height),
    };
  }

  function cropTo(from, to) {
    const width = Math.abs(to.x - from.x);
    const height = Math.abs(to.y - from.y);
    crop = width >= MIN_CROP && height >= MIN_CROP
      ? { x: Math.min(from.x, to.x), y: Math.min(from.y, to.y), width, height }
      : null;
    showCrop();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    dragFrom = pixelAt(event);
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (dragFrom) cropTo(dragFrom, pixelAt(event));
  });
  const endDrag = (event) => {
    if (!dragFrom) return;
    cropTo(dragFrom, pixelAt(event));
    dragFrom = null;
  };
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", () => { dragFrom = null; });

  // From the keyboard: arrows move the crop (starting from the middle half), Shift+arrows
  // resize it, by a fiftieth of the picture a press.
  canvas.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const stepX = Math.max(1, Math.round(canvas.width / 50));
    const stepY = Math.max(1, Math.round(canvas.height / 50));
    let { x, y, width, height } = crop || {
      x: Math.round(canvas.width / 4),
      y: Math.round(canvas.height / 4),
      width: Math.round(canvas.width / 2),
      height: Math.round(canvas.height / 2),
    };
    if (event.shiftKey) {
      width = Math.min(canvas.width - x, Math.max(MIN_CROP, width + move[0] * stepX));
      height = Math.min(canvas.height - y, Math.max(MIN_CROP, height + move[1] * stepY));
    } else if (crop) {
      x = Math.min(canvas.width - width, Math.max(0, x + move[0] * stepX));
      y = Math.min(canvas.height - height, Math.max(0, y + move[1] * stepY));
    }
    crop = { x, y, width, height };
    showCrop();
  });

  async function open() {
    clearError();
    if (!canCaptureScreen()) return showError(UNSUPPORTED);
    if (asking) return;  // the browser's picker is already up
    let stream;
    asking = true;
    try {
      stream = await askForScreen(false);
    } catch (error) {
      showError(whyNot(error, "Screenshot"));
      return;
    } finally {
      asking = false;
    }
    try {
      const frame = await grabFrame(stream);
      canvas.width = frame.videoWidth || frame.width;
      canvas.height = frame.videoHeight || frame.height;
      canvas.getContext("2d").drawImage(frame, 0, 0, canvas.width, canvas.height);
      frame.close?.();
    } catch (error) {
      showError(`Screenshot failed (${error?.message || error}); nothing was attached.`);
      return;
    } finally {
      stopTracks(stream);  // one frame is all that was asked for
    }
    takenAt = new Date();
    crop = null;
    showCrop();
    dialog.showModal();
  }

  function attach() {
    const { x, y, width, height } = crop || { x: 0, y: 0, width: canvas.width, height: canvas.height };
    const out = document.createElement("canvas");
    out.width = width;
    out.height = height;
    out.getContext("2d").drawImage(canvas, x, y, width, height, 0, 0, width, height);
    out.toBlob((blob) => {
      if (!blob) {
        showError("The screenshot could not be made into a PNG; nothing was attached.");
      } else {
        const name = `screenshot-${fileStamp(takenAt)}.png`;
        attachFiles([new File([blob], name, { type: "image/png", lastModified: Date.now() })]);
        document.getElementById("composer-body")?.focus();
      }
      dialog.close();
    }, "image/png");
  }

  dialog.addEventListener("close", () => {
    canvas.width = canvas.height = 0;  // let the picture go
    crop = null;
    dragFrom = null;
  });
  dialog.querySelector("[data-capture-attach]").addEventListener("click", attach);
  reset.addEventListener("click", () => { crop = null; showCrop(); });
  dialog.querySelector("[data-capture-close]").addEventListener("click", () => dialog.close());
  return open;
}

function init() {
  const composer = document.getElementById("composer");
  const recorder = document.getElementById("screen-recorder");
  const screenshot = document.getElementById("screenshot");
  if (!composer || !recorder || !screenshot) return;
  // Out of the composer form, so that Enter in a dialog never sends the message.
  document.body.append(recorder, screenshot);
  const actions = { record: initRecorder(recorder), screenshot: initScreenshot(screenshot) };
  for (const item of composer.querySelectorAll("[data-capture]")) {
    item.addEventListener("click", () => {
      item.closest("details")?.removeAttribute("open");
      actions[item.dataset.capture]();
    });
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", init);
} else {
  init();
}
