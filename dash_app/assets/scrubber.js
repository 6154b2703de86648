// The scrubber's state machine, run in the page, so a click is applied at once and in order,
// whatever the server's polls bring meanwhile (tests/js/scrubber.test.js is its table).
//
// view = {live, playing, step}. Events: "steps" (a new snapshot list), "slider" (moved to index
// value), "live", "back", "forward", "tick" (playback), "play", "pause", "click" (a chart click at
// step value).
//
// Following a training moves the view at most once every FOLLOW_EVERY_MS: a small model makes
// several snapshots a second, more than a page can draw (and a person read); a snapshot that
// comes sooner is shown when that time is up ("follow-due").
(function () {
  const SPEEDS = [1, 2, 5, 10];
  const MARKS = 8;
  const FOLLOW_EVERY_MS = 1000;
  const EVENTS = {"steps": "steps", "follow-due": "steps", "scrubber": "slider", "live": "live",
                  "switch-run": "live", "step-back": "back", "step-forward": "forward", "play-tick": "tick"};
  let followed = 0, followTimer = null;

  // Whether a new snapshot may be shown now; if not, it is shown when FOLLOW_EVERY_MS is up.
  function mayFollow() {
    const wait = followed + FOLLOW_EVERY_MS - Date.now();
    if (wait <= 0) {
      followed = Date.now();
      return true;
    }
    if (followTimer === null) {
      followTimer = setTimeout(function () {
        followTimer = null;
        window.dash_clientside.set_props("follow-due", {data: Date.now()});
      }, wait);
    }
    return false;
  }

  function isStep(value) {
    return Number.isSafeInteger(value) && value >= 0;
  }

  function nearestIndex(steps, step) {
    let lo = 0, hi = steps.length;
    while (lo < hi) {  // the first index whose step is >= step
      const mid = (lo + hi) >> 1;
      if (steps[mid] < step) { lo = mid + 1; } else { hi = mid; }
    }
    if (lo === steps.length) { return steps.length - 1; }
    if (lo > 0 && step - steps[lo - 1] <= steps[lo] - step) { return lo - 1; }
    return lo;
  }

  function nextView(event, view, steps, value, speed) {
    view = Object.assign({live: true, playing: false, step: null}, view || {});
    if (!steps.length) { return view; }
    const last = steps.length - 1;
    const current = view.step === null ? last : nearestIndex(steps, view.step);
    const clamp = function (index) { return Math.min(Math.max(index, 0), last); };
    switch (event) {
      case "steps": return Object.assign({}, view, {step: steps[view.live ? last : current]});
      case "live": return {live: true, playing: false, step: steps[last]};
      case "slider": return {live: false, playing: view.playing, step: steps[clamp(value)]};
      case "back": return {live: false, playing: false, step: steps[clamp(current - 1)]};
      case "forward": return {live: false, playing: false, step: steps[clamp(current + 1)]};
      case "click": return {live: false, playing: false, step: steps[nearestIndex(steps, value)]};
      case "play": return {live: false, playing: true, step: steps[current === last ? 0 : current]};
      case "pause": return Object.assign({}, view, {playing: false});
      case "tick": {
        if (!view.playing) { return view; }
        const index = Math.min(current + (speed || 1), last);
        return Object.assign({}, view, {step: steps[index], playing: index < last});
      }
      default: return view;
    }
  }

  // About MARKS labels along the slider, the last step always; none nearer the last than half
  // the spacing (their labels would run into each other), and none for a lone snapshot (a
  // slider of one position puts its label and its handle at opposite ends; the step is said
  // beside the slider).
  function marks(steps) {
    if (steps.length < 2) { return null; }  // (an empty object has Dash make up marks of its own)
    const chosen = {};
    const last = steps.length - 1;
    const every = Math.max(1, Math.floor(steps.length / MARKS));
    for (let i = 0; i < last; i += every) {
      if (i === 0 || last - i >= every / 2) { chosen[i] = String(steps[i]); }
    }
    chosen[last] = String(steps[last]);
    return chosen;
  }

  // What the page holds, checked: anything malformed leaves the view as it is (null).
  function checkedSteps(steps) {
    if (!Array.isArray(steps) || !steps.every(isStep)) { return null; }
    return steps.every(function (s, i) { return i === 0 || steps[i - 1] < s; }) ? steps : null;
  }

  function checkedView(view) {
    if (view === null || view === undefined) { return {live: true, playing: false, step: null}; }
    if (typeof view !== "object" || Array.isArray(view)) { return null; }
    const live = view.live === undefined ? true : view.live;
    const playing = view.playing === undefined ? false : view.playing;
    const step = view.step === undefined ? null : view.step;
    if (typeof live !== "boolean" || typeof playing !== "boolean" || !(step === null || isStep(step))) {
      return null;
    }
    return {live: live, playing: playing, step: step};
  }

  function stepInAddress(search) {
    const value = new URLSearchParams(typeof search === "string" ? search : "").get("step") || "";
    return /^[0-9]{1,15}$/.test(value) ? Number(value) : null;
  }

  function clickedStep(click) {
    const x = click && Array.isArray(click.points) && click.points.length ? click.points[0].x : null;
    return typeof x === "number" && x >= 0 && x < 2 ** 52 ? Math.floor(x) : null;
  }

  function button(icon, words) {
    return [{namespace: "dash_html_components", type: "Span",
             props: {className: "icon icon-" + icon, "aria-hidden": "true"}}, words];
  }

  function scrub(rawSteps, _due, slider, _live, _back, _forward, _play, _tick, click, entropyClick, _switch,
                 rawView, rawSpeed, search) {
    const nothing = Array(6).fill(window.dash_clientside.no_update);
    const steps = checkedSteps(rawSteps || []);
    let view = checkedView(rawView);
    const speed = SPEEDS.includes(rawSpeed) ? rawSpeed : (rawSpeed ? null : 1);
    if (steps === null || view === null || speed === null) { return nothing; }
    // A shared link pins its step, once; the address is read, not listened to, since the
    // panels write the shown step into it.
    const wanted = stepInAddress(search);
    if (view.step === null && wanted !== null) { view = {live: false, playing: false, step: wanted}; }
    // While a poll's request is out, a click waits for it and is then merged with the new
    // snapshot list into one call: the click is the event (applied to the newest list).
    const triggers = window.dash_clientside.callback_context.triggered.map(function (t) {
      return t.prop_id.split(".")[0];
    });
    // switch-run is emptied once the run it names is shown: that is no event.
    if (!_switch && triggers.length && triggers.every(function (t) { return t === "switch-run"; })) {
      return nothing;
    }
    const trigger = triggers.find(function (t) {
      return t !== "steps" && t !== "follow-due" && t !== "" && !(t === "switch-run" && !_switch);
    }) || "steps";
    let event = EVENTS[trigger] || "steps", value = slider;
    if (trigger === "loss-chart" || trigger === "attn-entropy") {  // a chart click at step x
      event = "click";
      value = clickedStep(trigger === "loss-chart" ? click : entropyClick);
      if (value === null) { return nothing; }
    } else if (trigger === "play") {
      event = view.playing ? "pause" : "play";
    } else if (event === "slider" && !Number.isSafeInteger(slider)) {
      return nothing;
    }
    const next = nextView(event, view, steps, value, speed);
    if (!triggers.length && !steps.length) { return nothing; }  // the page's first call: nothing to show yet
    if (event === "steps" && view.live && view.step !== null && next.step !== view.step && !mayFollow()) {
      return nothing;
    }
    const index = steps.length && next.step !== null ? nearestIndex(steps, next.step) : 0;
    return [next, index, Math.max(steps.length - 1, 0), marks(steps), !next.playing,
            next.playing ? button("pause", "Pause") : button("play", "Play")];
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.scrubber = {scrub: scrub, nextView: nextView, marks: marks, nearestIndex: nearestIndex};
})();
