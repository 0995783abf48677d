// The message box: Enter sends, Shift+Enter adds a line. A refused message stays in the box.
export function initComposer({ placeMessage, csrfHeaders }) {
  const form = document.getElementById("composer");
  const input = document.getElementById("composer-body");
  const error = form.querySelector(".composer-error");
  let sending = false;

  async function send() {
    const text = input.value;
    if (sending) return;
    if (!text.trim()) {
      // The server refuses it too; say so here rather than ignore the key press.
      error.textContent = "A message cannot be empty.";
      error.hidden = false;
      return;
    }
    sending = true;
    error.hidden = true;
    try {
      // URL-encoded, as htmx sends the edit form: multipart would turn each line break into CRLF.
      const data = new URLSearchParams(new FormData(form));
      const response = await fetch(form.action, { method: "POST", body: data, headers: csrfHeaders() });
      const reply = await response.text();
      if (response.ok) {
        if (input.value === text) input.value = "";
        placeMessage(reply);
      } else {
        error.textContent = response.headers.get("Content-Type")?.startsWith("text/plain") ? reply : `Not sent (${response.status}).`;
        error.hidden = false;
      }
    } catch {
      error.textContent = "Not sent: the connection dropped. Your text is still here; press Enter to retry.";
      error.hidden = false;
    } finally {
      sending = false;
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); send(); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  input.focus();
}
