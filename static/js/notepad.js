// The personal notepad: autosaves a moment after typing stops; a save over a newer version
// (another tab) is refused by the server and the text here is kept, with a warning.
export function initNotepad(panel, csrfHeaders) {
  const input = panel.querySelector("#notepad-body");
  const saved = panel.querySelector(".saved");
  const preview = panel.querySelector(".notepad-preview");
  const toggle = panel.querySelector(".notepad-toggle");
  const error = panel.querySelector(".notepad-error");
  let timer = null;
  let saving = null;

  async function save() {
    const data = new URLSearchParams({ body: input.value, version: panel.dataset.version });
    saved.textContent = "Saving…";
    const response = await fetch(`/rooms/${panel.dataset.room}/notepad/`, { method: "POST", body: data, headers: csrfHeaders() });
    if (response.ok) {
      const reply = await response.json();
      panel.dataset.version = reply.version;
      preview.innerHTML = reply.html;
      saved.textContent = "Saved";
      error.hidden = true;
    } else {
      saved.textContent = "Not saved";
      error.textContent = await response.text();
      error.hidden = false;
    }
  }

  input.addEventListener("input", () => {
    saved.textContent = "Editing…";
    clearTimeout(timer);
    timer = setTimeout(() => { saving = save(); }, 800);
  });
  toggle.addEventListener("click", async () => {
    if (timer) { clearTimeout(timer); timer = null; await save(); }
    await saving;
    const showing = preview.hidden;
    preview.hidden = !showing;
    input.hidden = showing;
    toggle.textContent = showing ? "Edit" : "Preview";
    toggle.setAttribute("aria-pressed", String(showing));
  });
  input.focus();
}
