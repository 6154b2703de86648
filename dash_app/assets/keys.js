// Arrow keys step the scrubber (unless typing in a field).
document.addEventListener("keydown", function (event) {
  const tag = (event.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea") { return; }
  const id = event.key === "ArrowLeft" ? "step-back" : event.key === "ArrowRight" ? "step-forward" : null;
  const button = id && document.getElementById(id);
  if (button) { button.click(); event.preventDefault(); }
});
