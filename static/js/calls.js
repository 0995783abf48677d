// Voice and video calls (issue 8). Each person in a call holds one RTCPeerConnection to every
// other person (a mesh, at most 6 people). The browsers signal through Parley's websocket: the
// server relays an SDP description or an ICE candidate only from one seat of a call to another
// seat of the same call. Negotiation follows the "perfect negotiation" pattern: the newer joiner
// offers, the one already in the call is the polite side and gives way when offers cross.
// Recording composites the grid's videos on a canvas and mixes everyone's audio with WebAudio
// into a WebM (MediaRecorder), which goes up through the resumable chunk API of Files & Links.
import { uploadBlob } from "./uploads.js";

// The recording's bitrates: at most 1 Mbit/s of VP8 for a 1280x720 grid is plenty for faces
// and slides, and keeps an hour's meeting under 0.5 GB (at most 8 MB a minute with the audio;
// a still picture costs far less: see docs/BENCHMARKS.md).
export const RECORDING_VIDEO_BITS_PER_SECOND = 1_000_000;
export const RECORDING_AUDIO_BITS_PER_SECOND = 64_000;
const CANVAS_WIDTH = 1280;
const CANVAS_HEIGHT = 720;
const FRAMES_PER_SECOND = 25;

let ctx = null;        // what live.js hands over: roomId, me, sendFrame, csrfHeaders, toast
let call = null;       // the call this tab sits in: {id, kind, peer, startedBy}
let joining = null;    // {kind} while waiting for the server's welcome
let local = null;      // this tab's microphone (and camera) stream
let screenTrack = null;
let muted = false;
let cameraOff = false;
let recording = null;  // {recorder, timer, audio, started, callId}
let connections = 0;   // socket (re)connections seen
const peers = new Map(); // peer id -> {info, tile, pc, polite, makingOffer, ignoreOffer, queue}
// For tests and bench/calls.py: when Join was clicked and when the first remote frame showed.
const stats = { joinClicked: null, firstRemoteFrame: null };

const $ = (selector, root = document) => root.querySelector(selector);

function iceServers() {
  try {
    return JSON.parse($("#call-ice-servers")?.textContent || "[]");
  } catch {
    return [];
  }
}

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

function showError(text) {
  const box = $("#call-panel .call-error");
  if (call && box) {
    box.textContent = text;
    box.hidden = false;
  } else {
    ctx.toast(text);
  }
}

function setStatus(text) {
  const line = $("#call-panel .call-status");
  if (line) line.textContent = text;
}

// Media ---------------------------------------------------------------------------------------

function explainRefusal(error) {
  if (error.name === "NotAllowedError") {
    return "Parley may not use your camera or microphone: the permission was refused. Allow them for this site (the icon in the address bar) and try again.";
  }
  if (error.name === "NotFoundError") return "No microphone was found: connect one and try again.";
  if (error.name === "NotReadableError") return "Your camera or microphone is busy in another program.";
  return `Your camera or microphone could not be started (${error.name}).`;
}

async function openMedia(kind) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("This browser cannot use a camera or microphone (it lacks getUserMedia), so it cannot join calls. Open Parley in a current Chrome, Edge, Firefox or Safari.");
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: kind === "video" ? { width: { ideal: 640 }, height: { ideal: 360 } } : false,
    });
  } catch (error) {
    if (kind !== "video" || !["NotFoundError", "NotReadableError", "OverconstrainedError", "NotAllowedError"].includes(error.name)) {
      throw new Error(explainRefusal(error));
    }
  }
  // No usable camera: join with the microphone alone, and say so.
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    ctx.toast("Your camera could not be used, so you joined with your microphone only.");
    return stream;
  } catch (error) {
    throw new Error(explainRefusal(error));
  }
}

const cameraTrack = () => local?.getVideoTracks()[0] || null;
const outgoingVideo = () => screenTrack || cameraTrack();

// Joining and leaving ---------------------------------------------------------------------------

async function enter(frame) {
  if (call || joining) return;
  if (document.body.dataset.live !== "connected") {
    ctx.toast("Parley is reconnecting; try again in a moment.");
    return;
  }
  joining = { kind: frame.kind || "video" };
  try {
    local = await openMedia(joining.kind);
  } catch (error) {
    joining = null;
    ctx.toast(error.message);
    return;
  }
  ctx.sendFrame(frame);
}

function startCall(kind) {
  enter({ type: "call.start", room: ctx.roomId, kind });
}

function joinCall(callId, kind) {
  stats.joinClicked = performance.now();
  stats.firstRemoteFrame = null;
  enter({ type: "call.join", call: callId, kind });
}

function onWelcome(frame) {
  if (!joining || frame.room !== ctx.roomId) return;
  joining = null;
  call = { id: frame.call, kind: frame.kind, peer: frame.peer, startedBy: frame.started_by };
  if (!cameraTrack()) cameraOff = true;
  document.body.dataset.inCall = "true";
  showPanel();
  for (const info of frame.participants) {
    if (info.peer === call.peer) continue;
    connect(entryFor(info), { polite: false });  // the newer joiner offers
  }
  updateTiles(frame.participants);
  sendState();
}

function leaveCall() {
  if (!call) return;
  ctx.sendFrame({ type: "call.leave", call: call.id });
  teardown("");
}

function releaseMedia() {
  for (const track of local?.getTracks() || []) track.stop();
  screenTrack?.stop();
  local = null;
  screenTrack = null;
}

function closePeers() {
  for (const entry of peers.values()) {
    entry.pc?.close();
    entry.tile.remove();
  }
  peers.clear();
}

function teardown(reason) {
  if (recording) stopRecording();
  closePeers();
  releaseMedia();
  call = null;
  joining = null;
  muted = false;
  cameraOff = false;
  delete document.body.dataset.inCall;
  const panel = $("#call-panel");
  if (panel) {
    panel.hidden = true;
    $("#call-grid").replaceChildren();
    $(".call-error", panel).hidden = true;
    setStatus("");
  }
  if (reason) ctx.toast(reason);
}

// The grid -----------------------------------------------------------------------------------

function makeTile(name, { mine = false } = {}) {
  const tile = $("#call-tile").content.firstElementChild.cloneNode(true);
  $(".call-name", tile).textContent = name;
  const video = $("video", tile);
  video.muted = mine;  // never play your own microphone back to yourself
  if (mine) tile.classList.add("mine");
  $("#call-grid").append(tile);
  return tile;
}

function showPanel() {
  const panel = $("#call-panel");
  panel.hidden = false;
  $("#call-grid").replaceChildren();
  $(".call-title", panel).textContent = call.kind === "video" ? "Video call" : "Voice call";
  $('[data-call-action="camera"]', panel).hidden = !cameraTrack();
  const canEnd = call.startedBy === ctx.me || Number(panel.dataset.role) >= 2;
  $('[data-call-action="end"]', panel).hidden = !canEnd;
  const tile = makeTile("You", { mine: true });
  tile.dataset.user = ctx.me;
  $("video", tile).srcObject = local;
  refreshControls();
}

function entryFor(info) {
  let entry = peers.get(info.peer);
  if (!entry) {
    entry = { info, tile: makeTile(info.name), pc: null, queue: Promise.resolve() };
    entry.tile.dataset.peer = info.peer;
    entry.tile.dataset.user = info.user;
    peers.set(info.peer, entry);
  }
  return entry;
}

function updateTiles(participants) {
  let anyRecording = false;
  for (const info of participants) {
    anyRecording ||= info.recording;
    const entry = info.peer === call.peer ? null : entryFor(info);
    if (!entry) continue;
    entry.info = info;
    entry.tile.dataset.user = info.user;
    $(".call-name", entry.tile).textContent = info.name;
    $(".call-muted", entry.tile).hidden = !info.muted;
    $(".call-camera-off", entry.tile).hidden = info.camera || info.screen;
    $(".call-sharing", entry.tile).hidden = !info.screen;
    entry.tile.dataset.video = info.camera || info.screen ? "on" : "off";
  }
  $("#call-panel .call-recording").hidden = !anyRecording;
}

function onCallEvent(frame) {
  if (frame.room !== ctx.roomId) return;
  const banner = $("#call-banner");
  if (banner) banner.replaceWith(fragment(frame.html));
  if (!call || frame.call !== call.id) return;
  if (frame.type === "call.ended") {
    teardown("The call ended.");
    return;
  }
  const present = new Set(frame.participants.map((info) => info.peer));
  if (!present.has(call.peer)) {
    teardown("You left the call: you joined it in another tab, or the connection dropped.");
    return;
  }
  for (const [peer, entry] of peers) {
    if (present.has(peer)) continue;
    entry.pc?.close();
    entry.tile.remove();
    peers.delete(peer);
  }
  updateTiles(frame.participants);
}

// Peer connections (perfect negotiation) ---------------------------------------------------------

function signal(to, data) {
  ctx.sendFrame({ type: "call.signal", call: call.id, to, data });
}

function connect(entry, { polite }) {
  if (entry.pc) return entry;
  const pc = new RTCPeerConnection({ iceServers: iceServers() });
  Object.assign(entry, { pc, polite, makingOffer: false, ignoreOffer: false });
  const peer = entry.info.peer;
  pc.onnegotiationneeded = async () => {
    try {
      entry.makingOffer = true;
      await pc.setLocalDescription();
      signal(peer, { description: pc.localDescription.toJSON() });
    } catch (error) {
      console.warn("Parley call: offer failed", error);
    } finally {
      entry.makingOffer = false;
    }
  };
  pc.onicecandidate = ({ candidate }) => {
    if (candidate) signal(peer, { candidate: candidate.toJSON() });
  };
  pc.oniceconnectionstatechange = () => {
    if (pc.iceConnectionState === "failed") pc.restartIce();
  };
  pc.ontrack = ({ track, streams }) => {
    const video = $("video", entry.tile);
    if (streams[0]) {
      if (video.srcObject !== streams[0]) video.srcObject = streams[0];
    } else {
      if (!video.srcObject) video.srcObject = new MediaStream();
      video.srcObject.addTrack(track);
    }
    entry.stream = video.srcObject;
    if (track.kind === "video") watchFirstFrame(video);
    video.play().catch(() => {});
  };
  for (const track of local.getTracks()) {
    if (track.kind === "video") {
      entry.videoSender = pc.addTrack(outgoingVideo(), local);
    } else {
      pc.addTrack(track, local);
    }
  }
  if (screenTrack && !entry.videoSender) entry.videoSender = pc.addTrack(screenTrack, local);
  return entry;
}

function watchFirstFrame(video) {
  const seen = () => {
    if (stats.firstRemoteFrame === null) stats.firstRemoteFrame = performance.now();
  };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(seen);
  else video.addEventListener("loadeddata", seen, { once: true });
}

async function handleSignal(entry, data) {
  const { pc } = entry;
  if (data.description) {
    const description = data.description;
    const collision = description.type === "offer" && (entry.makingOffer || pc.signalingState !== "stable");
    entry.ignoreOffer = !entry.polite && collision;
    if (entry.ignoreOffer) return;
    await pc.setRemoteDescription(description);
    if (description.type === "offer") {
      await pc.setLocalDescription();
      signal(entry.info.peer, { description: pc.localDescription.toJSON() });
    }
  } else if (data.candidate) {
    try {
      await pc.addIceCandidate(data.candidate);
    } catch (error) {
      if (!entry.ignoreOffer) throw error;
    }
  }
}

function onSignal(frame) {
  if (!call || frame.call !== call.id) return;
  // The first signal from someone newer may overtake the event that they joined.
  const entry = entryFor(peers.get(frame.peer)?.info || { peer: frame.peer, user: 0, name: "…" });
  connect(entry, { polite: true });
  // One signal at a time per peer: a candidate must not overtake its description.
  entry.queue = entry.queue
    .then(() => handleSignal(entry, frame.data))
    .catch((error) => console.warn("Parley call: signaling failed", error));
}

// Controls ------------------------------------------------------------------------------------

function sendState() {
  if (!call) return;
  ctx.sendFrame({
    type: "call.state",
    call: call.id,
    muted,
    camera: Boolean(cameraTrack()) && !cameraOff,
    screen: Boolean(screenTrack),
    recording: Boolean(recording),
  });
}

function refreshControls() {
  const panel = $("#call-panel");
  const set = (action, pressed, label) => {
    const button = $(`[data-call-action="${action}"]`, panel);
    button.setAttribute("aria-pressed", String(pressed));
    button.textContent = label;
  };
  set("mute", muted, muted ? "Unmute" : "Mute");
  set("camera", cameraOff, cameraOff ? "Camera on" : "Camera off");
  set("screen", Boolean(screenTrack), screenTrack ? "Stop sharing" : "Share screen");
  set("record", Boolean(recording), recording ? "Stop recording" : "Record");
  const mine = $("#call-grid .call-tile.mine");
  if (mine) {
    $(".call-muted", mine).hidden = !muted;
    $(".call-camera-off", mine).hidden = !(cameraOff && !screenTrack);
    $(".call-sharing", mine).hidden = !screenTrack;
    mine.dataset.video = outgoingVideo() && !(cameraOff && !screenTrack) ? "on" : "off";
  }
}

function toggleMute() {
  muted = !muted;
  for (const track of local.getAudioTracks()) track.enabled = !muted;
  refreshControls();
  sendState();
}

function toggleCamera() {
  const track = cameraTrack();
  if (!track) return;
  cameraOff = !cameraOff;
  track.enabled = !cameraOff;
  refreshControls();
  sendState();
}

async function replaceOutgoingVideo(track) {
  for (const entry of peers.values()) {
    if (!entry.pc) continue;
    if (entry.videoSender) {
      await entry.videoSender.replaceTrack(track);
    } else if (track) {
      entry.videoSender = entry.pc.addTrack(track, local);  // a voice call: renegotiates
    }
  }
  $("#call-grid .call-tile.mine video").srcObject = track && track === screenTrack
    ? new MediaStream([track, ...local.getAudioTracks()])
    : local;
}

async function toggleScreen() {
  if (screenTrack) {
    stopSharing();
    return;
  }
  if (!navigator.mediaDevices?.getDisplayMedia) {
    showError("This browser cannot share a screen (it lacks getDisplayMedia); screen sharing needs a desktop browser.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (error) {
    if (error.name !== "NotAllowedError" && error.name !== "AbortError") {
      showError(`Your screen could not be shared (${error.name}).`);
    }
    return;  // choosing nothing is not an error
  }
  if (!call) {
    for (const track of stream.getTracks()) track.stop();
    return;
  }
  screenTrack = stream.getVideoTracks()[0];
  screenTrack.addEventListener("ended", stopSharing);  // the browser's own "Stop sharing"
  await replaceOutgoingVideo(screenTrack);
  refreshControls();
  sendState();
}

async function stopSharing() {
  if (!screenTrack) return;
  const track = screenTrack;
  screenTrack = null;
  track.stop();
  if (!call) return;
  await replaceOutgoingVideo(cameraTrack());
  refreshControls();
  sendState();
}

async function endForEveryone() {
  if (!call || !window.confirm("End the call for everyone?")) return;
  const response = await fetch(`/calls/${call.id}/end/`, { method: "POST", headers: ctx.csrfHeaders() });
  if (!response.ok) showError(await response.text());
}

// Recording -----------------------------------------------------------------------------------

function recordingType() {
  const types = ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm"];
  return types.find((type) => MediaRecorder.isTypeSupported(type));
}

function drawGrid(canvas, audio, mixed) {
  const g = canvas.getContext("2d");
  const tiles = [...document.querySelectorAll("#call-grid .call-tile")];
  const columns = Math.ceil(Math.sqrt(tiles.length || 1));
  const rows = Math.ceil((tiles.length || 1) / columns);
  const width = CANVAS_WIDTH / columns;
  const height = CANVAS_HEIGHT / rows;
  g.fillStyle = "#1b1f24";
  g.fillRect(0, 0, CANVAS_WIDTH, CANVAS_HEIGHT);
  tiles.forEach((tile, index) => {
    const x = (index % columns) * width;
    const y = Math.floor(index / columns) * height;
    const video = $("video", tile);
    const stream = video.srcObject;
    if (stream && !mixed.has(stream.id) && stream.getAudioTracks().length) {
      audio.createMediaStreamSource(stream).connect(audio.destinationNode);
      mixed.add(stream.id);
    }
    if (video.videoWidth && tile.dataset.video !== "off") {
      const scale = Math.min(width / video.videoWidth, height / video.videoHeight);
      const w = video.videoWidth * scale;
      const h = video.videoHeight * scale;
      g.drawImage(video, x + (width - w) / 2, y + (height - h) / 2, w, h);
    }
    g.fillStyle = "rgba(0, 0, 0, 0.6)";
    g.fillRect(x + 8, y + height - 36, Math.min(width - 16, 260), 28);
    g.fillStyle = "#fff";
    g.font = "16px system-ui, sans-serif";
    g.fillText($(".call-name", tile).textContent, x + 16, y + height - 16, width - 32);
  });
}

function startRecording() {
  if (!window.MediaRecorder || !HTMLCanvasElement.prototype.captureStream || !window.AudioContext) {
    showError("This browser cannot record calls (it lacks MediaRecorder or canvas capture).");
    return;
  }
  const mimeType = recordingType();
  if (!mimeType) {
    showError("This browser cannot record WebM video, so it cannot record the call.");
    return;
  }
  const canvas = document.createElement("canvas");
  canvas.width = CANVAS_WIDTH;
  canvas.height = CANVAS_HEIGHT;
  const audio = new AudioContext();
  audio.destinationNode = audio.createMediaStreamDestination();
  const mixed = new Set();
  // Your own microphone, even while the grid shows your screen.
  audio.createMediaStreamSource(local).connect(audio.destinationNode);
  mixed.add(local.id);
  drawGrid(canvas, audio, mixed);
  // A timer, not requestAnimationFrame: the recording goes on while the tab is in the background.
  const timer = setInterval(() => drawGrid(canvas, audio, mixed), 1000 / FRAMES_PER_SECOND);
  const stream = new MediaStream([
    ...canvas.captureStream(FRAMES_PER_SECOND).getVideoTracks(),
    ...audio.destinationNode.stream.getAudioTracks(),
  ]);
  const recorder = new MediaRecorder(stream, {
    mimeType,
    videoBitsPerSecond: RECORDING_VIDEO_BITS_PER_SECOND,
    audioBitsPerSecond: RECORDING_AUDIO_BITS_PER_SECOND,
  });
  const chunks = [];
  const callId = call.id;
  recorder.addEventListener("dataavailable", (event) => {
    if (event.data.size) chunks.push(event.data);
  });
  recorder.addEventListener("stop", () => {
    const seconds = (performance.now() - started) / 1000;
    clearInterval(timer);
    audio.close();
    postRecording(callId, new Blob(chunks, { type: "video/webm" }), seconds);
  });
  const started = performance.now();
  recorder.start(1000);
  recording = { recorder };
  audio.resume();
  refreshControls();
  sendState();
}

function stopRecording() {
  const { recorder } = recording;
  recording = null;
  recorder.stop();
  if (call) {
    refreshControls();
    sendState();
  }
}

function recordingName() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `Call recording ${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}.${pad(now.getMinutes())}.webm`;
}

async function postRecording(callId, blob, seconds) {
  const say = (text) => (call ? setStatus(text) : ctx.toast(text));
  say("Uploading the recording…");
  try {
    // MediaRecorder leaves the WebM's Duration out: without it a player shows no length and
    // cannot seek. static/vendor/fix-webm-duration (loaded with the attach menu) writes it.
    const withLength = window.ysFixWebmDuration;
    const file = withLength && blob.size ? await withLength(blob, seconds * 1000, { logger: false }) : blob;
    const attachment = await uploadBlob(ctx.roomId, file, recordingName(), {
      onProgress: (done) => say(`Uploading the recording… ${Math.floor(done * 100)}%`),
    });
    const data = new FormData();
    data.append("attachment", attachment);
    data.append("seconds", Math.round(seconds));
    const response = await fetch(`/calls/${callId}/recordings/`, { method: "POST", body: data, headers: ctx.csrfHeaders() });
    if (!response.ok) throw new Error(await response.text());
    say("The recording is posted in the room.");
  } catch (error) {
    showError(`The recording could not be posted: ${error.message}`);
  }
}

// Wiring ---------------------------------------------------------------------------------------

const actions = {
  mute: toggleMute,
  camera: toggleCamera,
  screen: toggleScreen,
  record: () => (recording ? stopRecording() : startRecording()),
  leave: leaveCall,
  end: endForEveryone,
};

export function handleCallFrame(frame) {
  if (!ctx) return;
  if (frame.type === "call.welcome") onWelcome(frame);
  else if (frame.type === "call.signal") onSignal(frame);
  else onCallEvent(frame);
}

export function handleCallError(frame) {
  if (!ctx || !frame.frame?.startsWith("call.")) return;
  if (joining && (frame.frame === "call.join" || frame.frame === "call.start")) {
    joining = null;
    const rejoining = call;
    if (rejoining) teardown("");
    else releaseMedia();
    ctx.toast(frame.error);
    return;
  }
  // A signal to someone who left a moment ago is refused: their leaving is news enough.
  if (call && frame.frame !== "call.signal") showError(frame.error);
}

// The socket came back: a seat belongs to a socket, so the old one was given up. Sit down
// again in the same call with the same camera, and bring the banner up to date.
function onReconnect() {
  connections += 1;
  if (connections === 1 || !ctx) return;
  fetch(`/rooms/${ctx.roomId}/call/`, { headers: ctx.csrfHeaders() })
    .then((response) => (response.ok ? response.text() : null))
    .then((html) => html && $("#call-banner")?.replaceWith(fragment(html)));
  if (!call || joining) return;
  closePeers();
  joining = { kind: call.kind };
  ctx.sendFrame({ type: "call.join", call: call.id });
}

export function initCalls(options) {
  if (!$("#call-panel")) return;
  ctx = options;
  document.addEventListener("click", (event) => {
    const start = event.target.closest("[data-call-start]");
    if (start) startCall(start.dataset.callStart);
    const join = event.target.closest("[data-call-join]");
    if (join) joinCall(Number(join.dataset.callJoin), join.dataset.kind);
    const action = event.target.closest("[data-call-action]");
    if (action && call) actions[action.dataset.callAction]();
  });
  document.addEventListener("parley:connected", onReconnect);
  window.addEventListener("beforeunload", (event) => {
    if (recording) event.preventDefault();  // closing the tab would lose the recording
  });
  window.parleyCalls = {
    stats,
    get call() { return call; },
    RECORDING_VIDEO_BITS_PER_SECOND,
  };
}
