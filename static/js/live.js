// Parley's live updates: one websocket per tab, replay from the last seen id after a drop,
// and no message shown twice. The server renders every fragment; this file only places them.
import { initComposer } from "./composer.js";

const body = document.body;
const me = Number(body.dataset.me);
let lastId = Number(body.dataset.lastId || 0);
let since = Number(body.dataset.since || 0);
let socket = null;
let retry = 0;

function openRoomId() {
  const room = document.getElementById("room");
  return room ? Number(room.dataset.room) : null;
}

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

export function toast(text) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.hidden = true), 6000);
}

export function localizeTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      el.textContent = when.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
      el.title = when.toLocaleString();
    }
  }
}

function nearBottom(timeline) {
  return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 120;
}

function scrollToBottom() {
  const timeline = document.getElementById("timeline");
  if (timeline) timeline.scrollTop = timeline.scrollHeight;
}

let readTimer = null;
function markRead(roomId, upTo) {
  if (document.visibilityState !== "visible") return;
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const data = new FormData();
    data.append("up_to", upTo);
    fetch(`/rooms/${roomId}/read/`, { method: "POST", body: data, headers: csrfHeaders() });
  }, 300);
}

export function csrfHeaders() {
  const raw = body.getAttribute("hx-headers");
  return raw ? JSON.parse(raw) : {};
}

// Insert or replace a message element, keeping the list in id order; returns the element.
export function placeMessage(html) {
  const incoming = fragment(html);
  const id = Number(incoming.dataset.id);
  lastId = Math.max(lastId, id);
  const existing = document.getElementById(incoming.id);
  if (existing) {
    if (existing.querySelector(".edit-form") && !incoming.classList.contains("deleted")) {
      // Someone is editing this message here: keep their form, refresh the rest later.
      return existing;
    }
    existing.replaceWith(incoming);
  } else {
    const list = document.getElementById("messages");
    const timeline = document.getElementById("timeline");
    const stick = nearBottom(timeline);
    let after = null;
    for (const el of list.querySelectorAll(".msg")) {
      if (Number(el.dataset.id) > id) { after = el; break; }
    }
    list.insertBefore(incoming, after);
    if (stick || Number(incoming.dataset.sender) === me) scrollToBottom();
  }
  localizeTimes(incoming);
  if (window.htmx) window.htmx.process(incoming);
  return incoming;
}

function setBadge(item, count) {
  const badge = item.querySelector(".badge");
  if (!badge) return;
  badge.textContent = count;
  badge.hidden = count === 0;
  item.classList.toggle("unread", count > 0);
}

function placeRoomItem(roomId, html, { toTop }) {
  const list = document.getElementById("room-list");
  if (!list) return null;
  const old = document.getElementById(`room-item-${roomId}`);
  const count = old ? Number(old.querySelector(".badge")?.textContent || 0) : 0;
  const item = fragment(html);
  if (old) old.replaceWith(item);
  if (!old || toTop) list.prepend(item);
  list.querySelector(".empty")?.remove();
  setBadge(item, count);
  item.classList.toggle("active", roomId === openRoomId());
  return item;
}

const handlers = {
  "message.new"(frame) {
    const isOpen = frame.room === openRoomId();
    if (isOpen) {
      const seen = document.getElementById(`msg-${frame.id}`);
      placeMessage(frame.html);
      if (!seen && frame.sender !== me) markRead(frame.room, frame.id);
    } else {
      lastId = Math.max(lastId, frame.id);
    }
    if (frame.room_html) {
      const item = placeRoomItem(frame.room, frame.room_html, { toTop: true });
      if (item && !isOpen && frame.sender !== me) {
        setBadge(item, Number(item.querySelector(".badge").textContent || 0) + 1);
      }
    }
  },
  "message.changed"(frame) {
    if (frame.room === openRoomId() && document.getElementById(`msg-${frame.id}`)) {
      placeMessage(frame.html);
    }
    if (frame.room_html) placeRoomItem(frame.room, frame.room_html, { toTop: false });
  },
  "room.updated"(frame) {
    placeRoomItem(frame.room, frame.html, { toTop: false });
    if (frame.room === openRoomId() && window.htmx) {
      window.htmx.ajax("GET", `/rooms/${frame.room}/members/`, { target: "#members-panel", swap: "outerHTML" });
    }
  },
  "room.removed"(frame) {
    document.getElementById(`room-item-${frame.room}`)?.remove();
    if (frame.room === openRoomId()) {
      const composer = document.getElementById("composer");
      composer?.querySelectorAll("textarea, button").forEach((el) => (el.disabled = true));
      toast("You are no longer a member of this room.");
    }
  },
  "room.read"(frame) {
    const item = document.getElementById(`room-item-${frame.room}`);
    if (item) setBadge(item, 0);
  },
  "resume.done"(frame) {
    if (frame.truncated) window.location.reload();
  },
  error(frame) {
    console.warn("Parley:", frame.error);
  },
  pong() {},
};

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/`);
  socket.addEventListener("open", () => {
    retry = 0;
    document.getElementById("connection").hidden = true;
    // A few seconds of margin: replaying a change twice is harmless, missing one is not.
    socket.send(JSON.stringify({ type: "resume", last_id: lastId, since: Math.max(0, since - 5) }));
    body.dataset.live = "connected";
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.ts) since = Math.max(since, frame.ts);
    handlers[frame.type]?.(frame);
  });
  socket.addEventListener("close", (event) => {
    body.dataset.live = "disconnected";
    if (event.code === 4401) { window.location.reload(); return; }
    document.getElementById("connection").hidden = false;
    const delay = Math.min(5000, 250 * 2 ** retry) * (0.5 + Math.random() / 2);
    retry += 1;
    setTimeout(connect, delay);
  });
}

// Tests and the reconnect button use this to drop the socket as a network failure would.
window.parleyLive = { drop: () => socket?.close(), get lastId() { return lastId; } };

document.addEventListener("DOMContentLoaded", () => {
  localizeTimes(document);
  scrollToBottom();
  const roomId = openRoomId();
  document.getElementById(`room-item-${roomId}`)?.classList.add("active");
  for (const button of document.querySelectorAll("[data-toggle]")) {
    button.addEventListener("click", () => {
      const panel = document.getElementById(button.dataset.toggle);
      panel.hidden = !panel.hidden;
    });
  }
  // Older messages arrive above what is being read: keep the reader's place.
  let fromBottom = null;
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    const timeline = document.getElementById("timeline");
    if (timeline && event.detail.target.classList?.contains("older")) {
      fromBottom = timeline.scrollHeight - timeline.scrollTop;
    }
  });
  document.body.addEventListener("htmx:afterSwap", (event) => {
    localizeTimes(document.getElementById("messages") || document);
    const timeline = document.getElementById("timeline");
    if (fromBottom !== null && timeline) {
      timeline.scrollTop = timeline.scrollHeight - fromBottom;
      fromBottom = null;
    }
  });
  document.body.addEventListener("htmx:oobAfterSwap", (event) => localizeTimes(event.detail.target));
  document.body.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    const isText = (xhr.getResponseHeader("Content-Type") || "").startsWith("text/plain");
    toast(isText ? xhr.responseText : `Something went wrong (${xhr.status}).`);
  });
  if (roomId) initComposer({ placeMessage, csrfHeaders });
  connect();
});
