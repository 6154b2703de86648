// The guided tour (steps come from dash_app/panels/tour.py), drawn by the vendored driver.js.
// A first visit's tour waits until the page has drawn its panels; steps whose element is not
// on the page (another tab's panels) or hidden by a read-only viewer are left out; one being
// redrawn is waited for.
window.llmbTour = (function () {
  const DONE = "llmb.tour.done";
  let active = null;

  function shown(selector) {
    const element = document.querySelector(selector);
    return element && element.getClientRects().length > 0;
  }

  function present(selector) {
    const element = document.querySelector(selector);
    return !!element && !element.closest(".read-only .writes");
  }

  function run(steps) {
    if (active && active.isActive()) { return; }
    active = window.driver.js.driver({
      steps: steps.filter(step => present(step.element)),
      skipMissingElement: true,
      waitForElement: 1500,  // a panel being redrawn is back within a moment
      showProgress: true,
      progressText: "{{current}} of {{total}}",
      nextBtnText: "Next",
      prevBtnText: "Back",
      doneBtnText: "Done",
      popoverClass: "llmb-tour",
      onPopoverRender: function (popover) {
        const skip = document.createElement("button");
        skip.textContent = "Skip tour";
        skip.className = "tour-skip";
        skip.addEventListener("click", function () { active.destroy(); });
        popover.footerButtons.prepend(skip);
      },
    });
    active.drive();
    window.localStorage.setItem(DONE, "1");  // seen once is enough: "?" brings it back
  }

  function start(steps, auto) {
    if (!auto) { run(steps); return; }
    const since = Date.now();
    const timer = setInterval(function () {  // the panels arrive after the page's first draw
      const ready = ["#loss-panel", "#attention-panel", "#bars-panel"].some(p => shown(p + " .js-plotly-plot"));
      if (ready || Date.now() - since > 15000) {
        clearInterval(timer);
        const seen = !!window.localStorage.getItem(DONE);
        document.body.dataset.tour = seen ? "seen" : "shown";  // for whoever checks the page
        if (!seen) { run(steps); }
      }
    }, 200);
  }

  return { start: start };
})();
