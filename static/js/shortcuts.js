// Keyboard shortcuts that work anywhere on the page; the composer handles its own keys.
function roomLinks({ unreadOnly }) {
  const items = [...document.querySelectorAll(".room-lists .room-item")];
  const current = items.findIndex((item) => item.classList.contains("active"));
  return { items, current, pick: (item) => !unreadOnly || item.classList.contains("unread") };
}

function go(step, unreadOnly) {
  const { items, current, pick } = roomLinks({ unreadOnly });
  for (let i = 1; i <= items.length; i += 1) {
    const index = (current + step * i + items.length * 2) % items.length;
    if (index !== current && pick(items[index])) {
      window.location.href = items[index].querySelector("a").href;
      return;
    }
  }
}

export function initShortcuts() {
  document.addEventListener("keydown", (event) => {
    if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      event.preventDefault();
      go(event.key === "ArrowUp" ? -1 : 1, event.shiftKey);
    } else if (event.ctrlKey && event.shiftKey && event.key.toLowerCase() === "f") {
      const search = document.getElementById("search-input");
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    }
  });
  // Delegated: the server redraws the room menu (Favorite), and its new buttons must work too.
  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open]");
    if (!opener) return;
    opener.closest("details")?.removeAttribute("open");
    document.getElementById(opener.dataset.open)?.showModal();
  });
}
