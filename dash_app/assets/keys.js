// Arrow keys step the scrubber (unless typing in a field); Escape cancels a model rename, else
// closes an open menu; a click outside a menu closes it.
function closeMenus(clickPath) {
  document.querySelectorAll("details.menu[open]").forEach(function (menu) {
    if (!clickPath || !clickPath.includes(menu)) { menu.open = false; }
  });
}

// The path, not the target: a dropdown option is gone from the page once it is chosen.
document.addEventListener("click", function (event) { closeMenus(event.composedPath()); });

document.addEventListener("keydown", function (event) {
  const target = event.target;
  if (event.key === "Escape" && target.closest && target.closest(".rename-input")) {
    const cancel = document.getElementById("rename-cancel");
    if (cancel) { cancel.click(); event.preventDefault(); }
    return;
  }
  if (event.key === "Escape" && document.querySelector("details.menu[open]")) {
    closeMenus(null);
    event.preventDefault();
    return;
  }
  const tag = (target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea") { return; }
  const id = event.key === "ArrowLeft" ? "step-back" : event.key === "ArrowRight" ? "step-forward" : null;
  const button = id && document.getElementById(id);
  if (button) { button.click(); event.preventDefault(); }
});
