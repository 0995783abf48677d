// The message box: Enter sends, Shift+Enter adds a line. A refused message stays in the box.
export function initComposer({ placeMessage, csrfHeaders }) {
  const form = document.getElementById("composer");
  const input = document.getElementById("composer-body");
  const error = form.querySelector(".composer-error");
  let sending = false;

  async function send() {
    const text = input.value;
    if (sending || !text.trim()) return;
    sending = true;
    error.hidden = true;
    try {
      const response = await fetch(form.action, { method: "POST", body: new FormData(form), headers: csrfHeaders() });
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
