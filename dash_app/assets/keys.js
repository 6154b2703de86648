// Arrow keys step the scrubber (unless typing in a field); Escape cancels a model rename, else
// closes an open menu; a click outside a menu closes it; an opened menu stays in the window.
function closeMenus(clickPath) {
  document.querySelectorAll("details.menu[open], details.info[open]").forEach(function (menu) {
    if (!clickPath || !clickPath.includes(menu)) { menu.open = false; }
  });
}

// An opened menu opens towards the wider side of its button and never leaves the window (its
// contents arrive after it opens, so it is placed by its button, not by its size).
document.addEventListener("toggle", function (event) {
  const menu = event.target;
  if (!menu.matches || !menu.matches("details.menu") || !menu.open) { return; }
  const body = menu.querySelector(".menu-body");
  if (!body) { return; }
  const button = menu.getBoundingClientRect();
  const leftwards = button.left + button.width / 2 > window.innerWidth / 2;
  body.style.left = leftwards ? "auto" : "0px";
  body.style.right = leftwards ? "0px" : "auto";
  body.style.maxWidth = (leftwards ? button.right : window.innerWidth - button.left) - 8 + "px";
}, true);  // toggle does not bubble: caught on its way down

// The path, not the target: a dropdown option is gone from the page once it is chosen.
document.addEventListener("click", function (event) { closeMenus(event.composedPath()); });

document.addEventListener("keydown", function (event) {
  const target = event.target;
  if (event.key === "Escape" && target.closest && target.closest(".rename-input")) {
    const cancel = document.getElementById("rename-cancel");
    if (cancel) { cancel.click(); event.preventDefault(); }
    return;
  }
  if (event.key === "Escape" && document.querySelector("details.menu[open], details.info[open]")) {
    closeMenus(null);
    event.preventDefault();
    return;
  }
  const tag = (target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea") { return; }
  if (document.body.classList.contains("driver-active")) { return; }  // the tour's own arrows
  const id = event.key === "ArrowLeft" ? "step-back" : event.key === "ArrowRight" ? "step-forward" : null;
  const button = id && document.getElementById(id);
  if (button) { button.click(); event.preventDefault(); }
});
