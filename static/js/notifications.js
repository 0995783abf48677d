// Desktop notifications: asks the browser's permission when the setting is turned on, and shows
// a notification for a new message in another room (or while the tab is hidden).
//
// Live frames arrive through live.js, which is expected to re-dispatch each one as
// `document.dispatchEvent(new CustomEvent("parley:frame", { detail: frame }))`.

const settingsUrl = "/settings/notifications/desktop.json";
let preferences = null;

async function loadPreferences() {
  try {
    const response = await fetch(settingsUrl, { credentials: "same-origin" });
    preferences = response.ok ? await response.json() : { enabled: false, muted_rooms: [] };
  } catch {
    preferences = { enabled: false, muted_rooms: [] };
  }
}

function openRoomId() {
  const match = window.location.pathname.match(/^\/rooms\/(\d+)\//);
  return match ? Number(match[1]) : null;
}

function textOf(html) {
  const box = document.createElement("div");
  box.innerHTML = html;
  const body = box.querySelector(".body, .msg-body") || box;
  return (body.textContent || "").trim().replace(/\s+/g, " ").slice(0, 140);
}

function notify(frame) {
  if (!preferences?.enabled || !("Notification" in window)) return;
  if (Notification.permission !== "granted") return;
  if (frame.type !== "message.new" || String(frame.sender) === document.body.dataset.me) return;
  if (preferences.muted_rooms.includes(frame.room)) return;
  if (frame.room === openRoomId() && document.visibilityState === "visible") return;
  const shown = new Notification("New message in Parley", {
    body: textOf(frame.html),
    tag: `parley-room-${frame.room}`,
  });
  shown.onclick = () => {
    window.focus();
    window.location.assign(`/rooms/${frame.room}/`);
  };
}

function wirePermissionPrompt() {
  const box = document.querySelector('#notification-settings-form input[name="desktop"]');
  const note = document.getElementById("desktop-permission");
  if (!box || !note) return;
  const explain = () => {
    if (!("Notification" in window)) {
      note.textContent = "This browser cannot show desktop notifications.";
    } else if (Notification.permission === "denied") {
      note.textContent = "The browser blocks notifications from Parley; allow them in its site settings.";
    } else {
      note.textContent = "";
    }
    note.hidden = note.textContent === "";
  };
  box.addEventListener("change", async () => {
    if (box.checked && "Notification" in window && Notification.permission === "default") {
      await Notification.requestPermission();
    }
    explain();
  });
  explain();
}

document.addEventListener("parley:frame", (event) => notify(event.detail));
wirePermissionPrompt();
loadPreferences();
