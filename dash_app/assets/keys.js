// Arrow keys step the scrubber (unless typing in a field); Escape cancels a model rename.
document.addEventListener("keydown", function (event) {
  const target = event.target;
  if (event.key === "Escape" && target.closest && target.closest(".rename-input")) {
    const cancel = document.getElementById("rename-cancel");
    if (cancel) { cancel.click(); event.preventDefault(); }
    return;
  }
  const tag = (target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea") { return; }
  const id = event.key === "ArrowLeft" ? "step-back" : event.key === "ArrowRight" ? "step-forward" : null;
  const button = id && document.getElementById(id);
  if (button) { button.click(); event.preventDefault(); }
});
