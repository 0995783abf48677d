// Parley's live updates: one websocket per tab, replay from the last seen id after a drop,
// and no message shown twice. The server renders every fragment; this file only places them.
import { initComposer } from "./composer.js";
import { initShortcuts } from "./shortcuts.js";
import { initNotepad } from "./notepad.js";
import "./capture.js";  // Record screen and Take screenshot, in the attach menu
import { handleCallError, handleCallFrame, initCalls } from "./calls.js";
import { initMessageMenus } from "./message_menu.js";

const body = document.body;
const me = Number(body.dataset.me);
const myUsername = body.dataset.username;
let lastId = Number(body.dataset.lastId || 0);
let since = Number(body.dataset.since || 0);
// Everything up to this id was in the database when the page was made (see LiveCursorMiddleware).
const loadedUpTo = lastId;
// Ids received since then, and the newest per room: a new message names its room's previous
// one (`prev`), and a tab that never got that one lost a frame on the way (a process or Redis
// restarting) and asks for a replay, once per gap.
const received = new Set();
const newestInRoom = new Map();
const gapsAsked = new Set();
let socket = null;
let retry = 0;
// Set once this page starts leaving (a link followed, a form posted: its own Log out).
let leaving = false;
window.addEventListener("beforeunload", () => { leaving = true; });

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
  noteReceived(openRoomId(), id);
  const existing = document.getElementById(incoming.id);
  if (existing) {
    if (existing.querySelector(".edit-form") && !incoming.classList.contains("deleted")) {
      // Someone is editing this message here: keep their form, refresh the rest later.
      return existing;
    }
    existing.replaceWith(incoming);
  } else if (document.querySelector("#messages .newer")) {
    // Reading older history: newer messages arrive through the loader, in order.
    return null;
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

function setBadge(item, count, mentions = null) {
  const badge = item.querySelector(".badge");
  if (!badge) return;
  badge.textContent = count;
  badge.hidden = count === 0;
  item.classList.toggle("unread", count > 0);
  const mentionBadge = item.querySelector(".mention-badge");
  if (mentionBadge && mentions !== null) {
    mentionBadge.textContent = `@${mentions}`;
    mentionBadge.hidden = mentions === 0;
  }
}

function counts(item) {
  return {
    unread: Number(item.querySelector(".badge")?.textContent || 0),
    mentions: Number((item.querySelector(".mention-badge")?.textContent || "@0").slice(1)),
  };
}

function noteReceived(roomId, id) {
  lastId = Math.max(lastId, id);
  received.add(id);
  newestInRoom.set(roomId, Math.max(newestInRoom.get(roomId) || 0, id));
}

function resume(fromId) {
  // A few seconds of margin: replaying a change twice is harmless, missing one is not.
  sendFrame({ type: "resume", last_id: fromId, since: Math.max(0, since - 5) });
}

function checkForGap(frame) {
  const prev = frame.prev || 0;
  if (prev <= loadedUpTo || received.has(prev) || gapsAsked.has(prev)) return;
  gapsAsked.add(prev);
  resume(Math.min(newestInRoom.get(frame.room) ?? loadedUpTo, prev - 1));
}

export function sendFrame(frame) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

// Frames the server answers (message.send), by their client_token, until the answer comes.
const awaiting = new Map();

// Send a frame that carries a client_token and resolve with the server's answer to it, or with
// null when there is none: the socket is not open, it closes first, or `waitMs` pass.
export function ask(frame, waitMs) {
  if (socket?.readyState !== WebSocket.OPEN) return Promise.resolve(null);
  return new Promise((resolve) => {
    const timer = setTimeout(() => answer(frame.client_token, null), waitMs);
    awaiting.set(frame.client_token, { resolve, timer });
    socket.send(JSON.stringify(frame));
  });
}

function answer(token, frame) {
  const waiting = awaiting.get(token);
  if (!waiting) return;
  awaiting.delete(token);
  clearTimeout(waiting.timer);
  waiting.resolve(frame);
}

function reportVisibility() {
  sendFrame({ type: "ping", away: document.visibilityState !== "visible" });
}

// The list is rendered by the server; a change of shape (favorite, category) reloads it.
function refreshSidebar() {
  window.htmx?.ajax("GET", "/rooms/list/", { target: "#room-lists-wrapper", swap: "innerHTML" });
}

// A fresh list does not know which room is open, and Alt+Up/Down start from that one. After
// settling: htmx's settle step resets the class that an element with the same id had before.
body.addEventListener("htmx:afterSettle", (event) => {
  if (event.detail.target.id === "room-lists-wrapper") {
    document.getElementById(`room-item-${openRoomId()}`)?.classList.add("active");
  }
});

// The list loads page by page as it is scrolled; a room that moved to the top meanwhile (a
// new message) is already listed there, so its older copy from a later page is dropped.
body.addEventListener("htmx:load", (event) => {
  const item = event.target;
  if (item.classList?.contains("room-item") && document.getElementById(item.id) !== item) item.remove();
});

function placeRoomItem(roomId, html, { toTop }) {
  const list = document.getElementById("room-list");
  const old = document.getElementById(`room-item-${roomId}`);
  if (!old) {
    // A room not listed here may be new, or hidden or archived for this person: the
    // fragment is the same for every member, so ask the server for this person's list.
    refreshSidebar();
    return null;
  }
  const { unread, mentions } = old ? counts(old) : { unread: 0, mentions: 0 };
  const item = fragment(html);
  if (item.hasAttribute("data-archived")) {
    // Archived rooms leave every list, for every member.
    old.remove();
    return null;
  }
  const home = old ? old.parentElement : list;
  if (old) old.replaceWith(item);
  if (!old || toTop) home.prepend(item);
  home.querySelector(".empty")?.remove();
  setBadge(item, unread, mentions);
  item.classList.toggle("active", roomId === openRoomId());
  return item;
}

const handlers = {
  "message.new"(frame) {
    checkForGap(frame);
    const isOpen = frame.room === openRoomId();
    if (isOpen) {
      const seen = document.getElementById(`msg-${frame.id}`);
      placeMessage(frame.html);
      if (!seen && frame.sender !== me) markRead(frame.room, frame.id);
    }
    noteReceived(frame.room, frame.id);
    if (frame.room_html) {
      const item = placeRoomItem(frame.room, frame.room_html, { toTop: true });
      if (item && !isOpen && frame.sender !== me) {
        const mentioned = frame.html.includes(`data-username="${myUsername}"`);
        const now = counts(item);
        setBadge(item, now.unread + 1, now.mentions + (mentioned ? 1 : 0));
      }
    }
    if (frame.sender !== me) clearTyping(frame.sender);
  },
  "message.changed"(frame) {
    if (frame.room === openRoomId() && document.getElementById(`msg-${frame.id}`)) {
      placeMessage(frame.html);
    }
    if (frame.room_html) placeRoomItem(frame.room, frame.room_html, { toTop: false });
  },
  "room.updated"(frame) {
    if (!document.getElementById(`room-item-${frame.room}`) && document.getElementById("room-lists")?.dataset.view === "categorized") {
      refreshSidebar();
      return;
    }
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
    if (item) setBadge(item, frame.unread, frame.mentions);
  },
  "membership.changed"() {
    refreshSidebar();
  },
  "person.renamed"(frame) {
    for (const name of document.querySelectorAll(`[data-person-name="${frame.user}"]`)) {
      name.textContent = frame.name;
    }
  },
  typing(frame) {
    if (frame.room !== openRoomId()) return;
    typists.set(frame.user, { name: frame.name, until: Date.now() + 5000 });
    showTyping();
  },
  presence(frame) {
    for (const [user, state] of Object.entries(frame.states)) {
      for (const dot of document.querySelectorAll(`[data-presence-user="${user}"]`)) {
        dot.dataset.state = state;
        dot.title = state;
      }
    }
  },
  // The server lost its Redis connection for a while: live frames of the gap are gone.
  resync() {
    resume(lastId);
  },
  "resume.done"(frame) {
    if (frame.truncated) window.location.reload();
  },
  error(frame) {
    handleCallError(frame);
    console.warn("Parley:", frame.error);
  },
  pong() {},
  notice(frame) {
    toast(frame.text);
  },
};

const typists = new Map();
function showTyping() {
  const line = document.getElementById("typing");
  if (!line) return;
  const now = Date.now();
  for (const [user, entry] of typists) if (entry.until < now) typists.delete(user);
  const names = [...typists.values()].map((entry) => entry.name);
  line.textContent = names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
  if (names.length) setTimeout(showTyping, 1000);
}
function clearTyping(user) {
  typists.delete(user);
  showTyping();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/`);
  socket.addEventListener("open", () => {
    retry = 0;
    document.getElementById("connection").hidden = true;
    resume(lastId);
    // A new socket starts out online: a hidden page says it is away.
    if (document.visibilityState !== "visible") reportVisibility();
    body.dataset.live = "connected";
    document.dispatchEvent(new CustomEvent("parley:connected"));
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.ts) since = Math.max(since, frame.ts);
    if (frame.client_token) answer(frame.client_token, frame);
    handlers[frame.type]?.(frame);
    if (frame.type?.startsWith("call.")) handleCallFrame(frame);
    // Other modules (desktop notifications) listen without live.js knowing them.
    document.dispatchEvent(new CustomEvent("parley:frame", { detail: frame }));
  });
  socket.addEventListener("close", (event) => {
    body.dataset.live = "disconnected";
    for (const token of [...awaiting.keys()]) answer(token, null);
    if (event.code === 4401 || event.code === 4403) {
      // Signed out or suspended: reloading shows the sign-in page. A page already on its way
      // elsewhere (its own Log out) gets there first; one that stayed (a download) reloads.
      setTimeout(() => window.location.reload(), leaving ? 3000 : 0);
      return;
    }
    document.getElementById("connection").hidden = false;
    const delay = Math.min(5000, 250 * 2 ** retry) * (0.5 + Math.random() / 2);
    retry += 1;
    setTimeout(connect, delay);
  });
}

// A menu closes once one of its items is chosen, or on a click elsewhere, as menus do: an open
// message menu would otherwise stay over the edit box that its Edit item just opened.
document.addEventListener("click", (event) => {
  const item = event.target.closest("[role=menuitem]");
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    if (!menu.contains(event.target) || (item && menu.contains(item))) menu.open = false;
  }
});

// Tests and the reconnect button use this to drop the socket as a network failure would.
window.parleyLive = { drop: () => socket?.close(), get lastId() { return lastId; } };

document.addEventListener("DOMContentLoaded", () => {
  localizeTimes(document);
  const around = document.getElementById("room")?.dataset.around;
  const target = around && document.getElementById(`msg-${around}`);
  if (target) {
    target.scrollIntoView({ block: "center" });
    target.classList.add("target");
  } else {
    scrollToBottom();
  }
  const roomId = openRoomId();
  document.getElementById(`room-item-${roomId}`)?.classList.add("active");
  document.getElementById("messages")?.addEventListener("click", (event) => {
    const reveal = event.target.closest("[data-reveal]");
    if (reveal) reveal.closest(".msg").classList.add("revealed");
  });
  const showConversations = document.querySelector(".show-conversations");
  showConversations?.addEventListener("click", () => {
    const open = document.body.toggleAttribute("data-conversations");
    showConversations.setAttribute("aria-expanded", String(open));
    showConversations.setAttribute("aria-label", open ? "Hide conversations" : "Show conversations");
  });
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
  document.body.addEventListener("htmx:afterSwap", (event) => {
    const panel = event.detail.target.querySelector?.("#notepad-panel");
    if (panel) initNotepad(panel, csrfHeaders);
  });
  document.body.addEventListener("htmx:oobAfterSwap", (event) => localizeTimes(event.detail.target));
  document.body.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    const isText = (xhr.getResponseHeader("Content-Type") || "").startsWith("text/plain");
    toast(isText ? xhr.responseText : `Something went wrong (${xhr.status}).`);
  });
  if (roomId) initComposer({ roomId, me, placeMessage, csrfHeaders, sendFrame, ask });
  if (roomId) initCalls({ roomId, me, csrfHeaders, sendFrame, toast });
  initShortcuts();
  initMessageMenus();
  connect();
  // A hidden tab counts as away. No timer: the server keeps an open tab's presence fresh, and
  // The server's protocol pings (answered by the browser) keep the connection alive.
  document.addEventListener("visibilitychange", reportVisibility);
});
