// The @ box: room members filtered as you type, chosen with arrows and Enter or a click.
export function initMentions(input) {
  const box = document.createElement("ul");
  box.className = "mention-box";
  box.setAttribute("role", "listbox");
  box.setAttribute("aria-label", "Mention someone");
  box.hidden = true;
  input.closest("form").append(box);
  let matches = [];
  let active = 0;

  function members() {
    return [...document.querySelectorAll("#members-panel li[data-username]")].map((li) => ({
      username: li.dataset.username,
      name: li.querySelector(".member-name")?.textContent.trim() || li.dataset.username,
    }));
  }

  function query() {
    const before = input.value.slice(0, input.selectionStart);
    const found = before.match(/(^|\s)@([\w.-]*)$/);
    return found ? found[2].toLowerCase() : null;
  }

  function render() {
    box.replaceChildren(...matches.map((person, index) => {
      const item = document.createElement("li");
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", index === active ? "true" : "false");
      item.dataset.username = person.username;
      item.textContent = `${person.name} (@${person.username})`;
      return item;
    }));
    box.hidden = matches.length === 0;
  }

  function close() {
    matches = [];
    box.hidden = true;
  }

  function choose(person) {
    const caret = input.selectionStart;
    const before = input.value.slice(0, caret).replace(/@[\w.-]*$/, `@${person.username} `);
    input.value = before + input.value.slice(caret);
    input.selectionStart = input.selectionEnd = before.length;
    close();
    input.focus();
  }

  input.addEventListener("input", () => {
    const typed = query();
    if (typed === null) return close();
    const me = document.body.dataset.username;
    matches = members()
      .filter((p) => p.username !== me)
      .filter((p) => p.username.toLowerCase().startsWith(typed) || p.name.toLowerCase().includes(typed))
      .slice(0, 8);
    active = 0;
    render();
  });
  input.addEventListener("keydown", (event) => {
    if (box.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
      render();
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      choose(matches[active]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  box.addEventListener("mousedown", (event) => {
    const item = event.target.closest("li");
    if (!item) return;
    event.preventDefault();
    choose(matches.find((p) => p.username === item.dataset.username));
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
}
