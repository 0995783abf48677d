// The message box. Enter sends and Shift/Alt/Ctrl+Enter add a line, or the other way round when
// the gear says so. Up-arrow edits your last message; /giphy opens the GIF chooser.
// A refused message stays in the box: nothing typed is lost.
import { initMentions } from "./mentions.js";
import { initEmojiPanel } from "./emoji.js";
import { fillMessageMenu } from "./message_menu.js";
import { attachedIds, clearAttached, uploadsBusy } from "./uploads.js";

// How long a message sent over the socket waits for its answer before going by POST instead.
const SOCKET_WAIT_MS = 5000;

export function initComposer({ roomId, me, placeMessage, csrfHeaders, sendFrame, ask }) {
  const form = document.getElementById("composer");
  if (!form) return;
  const input = document.getElementById("composer-body");
  const error = form.querySelector(".composer-error");
  const gear = form.querySelector(".enter-toggle");
  const giphyBox = document.getElementById("giphy");
  let sending = false;
  let typingSent = 0;

  const enterSends = () => form.dataset.enterSends !== "false";

  function showError(text) {
    error.textContent = text;
    error.hidden = false;
  }

  async function post(url, data) {
    const response = await fetch(url, { method: "POST", body: data, headers: csrfHeaders() });
    const reply = await response.text();
    if (!response.ok) {
      const isText = response.headers.get("Content-Type")?.startsWith("text/plain");
      const failure = new Error(isText ? reply : `Not sent (${response.status}).`);
      failure.status = response.status;
      throw failure;
    }
    return reply;
  }

  // Each message carries a token of its own; the server stores it and answers a repeat of the
  // same token with the message already stored, so a retry never posts twice.
  function newToken() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // Plain http on a name other than localhost is not a secure context: no randomUUID there.
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }
  let pending = null;  // { text, token } of the message being sent until the server has it

  // Over the open socket first; with no answer from it (closed, or silent for SOCKET_WAIT_MS)
  // the same message goes by POST with the same token, so it is stored once either way.
  // A dropped connection or a server error (a restarting process, 502/503 from the balancer)
  // is retried a few times with the same token; a refusal (4xx) is shown at once.
  async function postMessage(data) {
    const answer = await ask({
      type: "message.send",
      room: roomId,
      body: data.get("body") ?? "",
      attachments: data.getAll("attachments").map(Number),
      client_token: data.get("client_token"),
    }, SOCKET_WAIT_MS);
    if (answer?.type === "message.sent") return answer.html;
    if (answer?.type === "message.refused") {
      const failure = new Error(answer.error);
      failure.status = answer.status;
      throw failure;
    }
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await post(form.action, data);
      } catch (failure) {
        const retryable = failure instanceof TypeError || failure.status >= 500;
        if (!retryable || attempt >= 4) throw failure;
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt * (0.5 + Math.random() / 2)));
      }
    }
  }

  async function send() {
    const text = input.value;
    if (sending) return;
    if (uploadsBusy(form)) {
      showError("Wait until the files finish uploading, then send.");
      return;
    }
    if (!text.trim() && !attachedIds(form).length) {
      // The server refuses it too; say so here rather than ignore the key press.
      showError("A message cannot be empty.");
      return;
    }
    const giphy = text.trim().match(/^\/giphy\s+(.+)$/s);
    if (giphy) {
      openGiphy(giphy[1].trim());
      return;
    }
    sending = true;
    error.hidden = true;
    try {
      // The same text sent again after a failure keeps its token: it may have been stored.
      if (pending?.text !== text) pending = { text, token: newToken() };
      // URL-encoded, as htmx sends the edit form: multipart would turn each line break into CRLF.
      const data = new URLSearchParams(new FormData(form));
      data.set("client_token", pending.token);
      const reply = await postMessage(data);
      pending = null;
      if (input.value === text) input.value = "";
      clearAttached(form);
      placeMessage(reply);
    } catch (failure) {
      showError(failure instanceof TypeError
        ? "Not sent: the connection dropped. Your text is still here; press Enter to retry."
        : failure.message);
    } finally {
      sending = false;
    }
  }

  function insertAtCursor(text) {
    const { selectionStart: start, selectionEnd: end, value } = input;
    input.value = value.slice(0, start) + text + value.slice(end);
    input.selectionStart = input.selectionEnd = start + text.length;
    input.dispatchEvent(new Event("input"));
  }

  function openGiphy(query) {
    window.htmx.ajax("GET", `/rooms/${roomId}/giphy/?q=${encodeURIComponent(query)}`, { target: "#giphy", swap: "innerHTML" });
  }

  giphyBox?.addEventListener("click", async (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.classList.contains("giphy-cancel")) {
      giphyBox.innerHTML = "";
      input.focus();
    } else if (target.classList.contains("giphy-send")) {
      const data = new FormData();
      data.append("q", target.dataset.query);
      data.append("gif", target.dataset.gif);
      try {
        placeMessage(await post(`/rooms/${roomId}/giphy/`, data));
        giphyBox.innerHTML = "";
        input.value = "";
        input.focus();
      } catch (failure) {
        showError(failure.message);
      }
    }
  });

  function editLastMessage() {
    const mine = [...document.querySelectorAll(`#messages .msg[data-sender="${me}"]:not(.deleted)`)];
    const menu = mine.at(-1)?.querySelector("details.msg-menu");
    if (menu) fillMessageMenu(menu).querySelector("button[hx-get*='/edit/']")?.click();
  }

  // The mention box claims Enter, arrows and Esc while open, so it listens first.
  initMentions(input);
  initEmojiPanel(form, insertAtCursor);
  form.addEventListener("submit", (event) => { event.preventDefault(); send(); });
  input.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing) return;
    if (event.key === "Enter") {
      const plain = !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey;
      const wantsSend = enterSends() ? plain : (event.ctrlKey || event.metaKey) && !event.shiftKey;
      if (wantsSend) {
        event.preventDefault();
        send();
      } else if (!plain && !event.shiftKey) {
        // Alt/Ctrl+Enter insert nothing by themselves in a textarea.
        event.preventDefault();
        insertAtCursor("\n");
      }
    } else if (event.key === "ArrowUp" && input.value === "" && !event.altKey) {
      event.preventDefault();
      editLastMessage();
    } else if (event.key === "Escape" && giphyBox?.innerHTML) {
      giphyBox.innerHTML = "";
    }
  });
  input.addEventListener("input", () => {
    const now = Date.now();
    if (input.value && now - typingSent > 3000) {
      typingSent = now;
      sendFrame({ type: "typing", room: roomId });
    }
  });
  // Paste is always plain text in the message box; Ctrl+Shift+V says so explicitly.
  input.addEventListener("paste", (event) => {
    const text = event.clipboardData?.getData("text/plain");
    if (text === undefined || !event.clipboardData.types.includes("text/html")) return;
    event.preventDefault();
    insertAtCursor(text);
  });

  gear?.addEventListener("click", async () => {
    const next = enterSends() ? "false" : "true";
    const data = new FormData();
    data.append("enter_sends", next);
    try {
      await post("/accounts/preferences/", data);
      form.dataset.enterSends = next;
      gear.setAttribute("aria-pressed", next === "false" ? "true" : "false");
      gear.title = next === "true" ? "Enter sends (click: Enter adds a line)" : "Enter adds a line; Ctrl+Enter sends (click to swap)";
      input.placeholder = next === "true" ? "Write a message — Enter sends" : "Write a message — Ctrl+Enter sends";
    } catch (failure) {
      showError(failure.message);
    }
  });

  // Esc in an edit box cancels the edit.
  document.getElementById("messages")?.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && event.target.closest(".edit-form")) {
      event.target.closest(".edit-form").querySelector(".edit-cancel")?.click();
      input.focus();
    }
  });
  document.body.addEventListener("htmx:afterSwap", (event) => {
    const editBox = event.detail.target.querySelector?.(".edit-form textarea");
    if (editBox) {
      editBox.focus();
      editBox.selectionStart = editBox.value.length;
    }
  });

  input.placeholder = enterSends() ? "Write a message — Enter sends" : "Write a message — Ctrl+Enter sends";
  input.focus();
}
