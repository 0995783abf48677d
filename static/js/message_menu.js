// Each message's options menu is filled when it opens, from the one set of items the room page
// holds (#msg-menu-items, where "0" stands for the message's id): a message's markup stays
// small, and a live message needs no per-viewer menu.

const ATTRIBUTES = ["hx-get", "hx-post", "hx-target"];

function itemsFor(messageId) {
  const template = document.getElementById("msg-menu-items");
  if (!template) return null;
  const items = template.content.firstElementChild.cloneNode(true);
  for (const el of items.querySelectorAll(ATTRIBUTES.map((name) => `[${name}]`).join(","))) {
    for (const name of ATTRIBUTES) {
      const value = el.getAttribute(name);
      if (value) {
        el.setAttribute(name, value.replace("/0/", `/${messageId}/`).replace("#msg-0", `#msg-${messageId}`));
      }
    }
  }
  return items;
}

// Puts the options into a message's menu, once; returns the menu.
export function fillMessageMenu(menu) {
  if (menu.querySelector(".menu-items")) return menu;
  const messageId = menu.closest(".msg")?.dataset.id;
  const items = messageId && itemsFor(messageId);
  if (items) {
    menu.append(items);
    window.htmx?.process(items);
  }
  return menu;
}

export function initMessageMenus() {
  // "toggle" does not bubble: listen while it is captured on its way down.
  document.addEventListener(
    "toggle",
    (event) => {
      if (event.target.matches?.("details.msg-menu") && event.target.open) fillMessageMenu(event.target);
    },
    true,
  );
}
