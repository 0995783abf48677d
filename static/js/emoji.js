// The emoticon panel: searchable, inserts at the cursor, Esc closes.
let catalogue = null;

async function loadCatalogue() {
  catalogue ??= fetch("/emoji/").then((response) => response.json());
  return catalogue;
}

export function initEmojiPanel(form, insert) {
  const button = form.querySelector(".emoji-toggle");
  const panel = document.getElementById("emoji-panel");
  if (!button || !panel) return;
  const search = panel.querySelector("input");
  const grid = panel.querySelector(".emoji-grid");

  async function show(filter) {
    const all = await loadCatalogue();
    const words = filter.trim().toLowerCase();
    const shown = (words ? all.filter(([name]) => name.includes(words)) : all).slice(0, 160);
    grid.replaceChildren(...shown.map(([name, char]) => {
      const choice = document.createElement("button");
      choice.type = "button";
      choice.textContent = char;
      choice.title = `:${name}:`;
      choice.setAttribute("aria-label", name.replaceAll("_", " "));
      return choice;
    }));
  }

  function close() {
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
  }

  button.addEventListener("click", async () => {
    if (!panel.hidden) return close();
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    search.value = "";
    await show("");
    search.focus();
  });
  search.addEventListener("input", () => show(search.value));
  grid.addEventListener("click", (event) => {
    const choice = event.target.closest("button");
    if (!choice) return;
    insert(choice.textContent);
    close();
    document.getElementById("composer-body").focus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) {
      close();
      document.getElementById("composer-body").focus();
    }
  });
}
