// The scrubber's state machine (dash_app/assets/scrubber.js) as a table of (event, view) -> view,
// without a browser: `node --test tests/js/`.
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

globalThis.window = {};
require(path.join(__dirname, "..", "..", "dash_app", "assets", "scrubber.js"));
const {nextView, nearestIndex, marks, scrub} = window.dash_clientside.scrubber;

const STEPS = [0, 10, 20, 30, 40];
const LIVE = {live: true, playing: false, step: 40};
const PINNED = {live: false, playing: false, step: 20};
const PLAYING = {live: false, playing: true, step: 20};

// [event, view before, value (slider index or clicked step), speed, view after]
const TABLE = [
  ["steps", LIVE, null, 1, LIVE],
  ["steps", PINNED, null, 1, PINNED],
  ["steps", {live: true, playing: false, step: 30}, null, 1, LIVE],  // following: the newest
  ["steps", undefined, null, 1, {live: true, playing: false, step: 40}],
  ["live", PINNED, null, 1, LIVE],
  ["slider", LIVE, 1, 1, {live: false, playing: false, step: 10}],
  ["slider", PLAYING, 3, 1, {live: false, playing: true, step: 30}],  // moving it keeps playing
  ["slider", LIVE, 99, 1, {live: false, playing: false, step: 40}],  // clamped to the last
  ["slider", LIVE, -5, 1, {live: false, playing: false, step: 0}],
  ["back", PINNED, null, 1, {live: false, playing: false, step: 10}],
  ["back", {live: false, playing: false, step: 0}, null, 1, {live: false, playing: false, step: 0}],
  ["forward", PINNED, null, 1, {live: false, playing: false, step: 30}],
  ["forward", LIVE, null, 1, {live: false, playing: false, step: 40}],
  ["back", LIVE, null, 1, {live: false, playing: false, step: 30}],
  ["click", LIVE, 14, 1, {live: false, playing: false, step: 10}],  // the nearest snapshot
  ["click", LIVE, 15, 1, {live: false, playing: false, step: 10}],  // a tie goes to the earlier
  ["click", LIVE, 16, 1, {live: false, playing: false, step: 20}],
  ["click", LIVE, 1000, 1, {live: false, playing: false, step: 40}],
  ["play", PINNED, null, 1, PLAYING],
  ["play", LIVE, null, 1, {live: false, playing: true, step: 0}],  // from the end: from the start
  ["pause", PLAYING, null, 1, PINNED],
  ["tick", PLAYING, null, 1, {live: false, playing: true, step: 30}],
  ["tick", PLAYING, null, 2, {live: false, playing: false, step: 40}],  // the end stops it
  ["tick", PLAYING, null, 10, {live: false, playing: false, step: 40}],
  ["tick", PINNED, null, 1, PINNED],  // not playing: nothing moves
  ["unknown", PINNED, null, 1, PINNED],
  ["back", {live: false, playing: false, step: 17}, null, 1, {live: false, playing: false, step: 10}],
];

for (const [event, before, value, speed, after] of TABLE) {
  test(`${event} from ${JSON.stringify(before)} (value ${value}, speed ${speed})`, () => {
    assert.deepEqual(nextView(event, before, STEPS, value, speed), after);
  });
}

test("no snapshots yet: every event leaves the view as it is", () => {
  for (const event of ["steps", "live", "slider", "back", "forward", "click", "play", "tick"]) {
    assert.deepEqual(nextView(event, PINNED, [], 3, 1), PINNED);
  }
});

test("the nearest index of a step", () => {
  assert.equal(nearestIndex(STEPS, -3), 0);
  assert.equal(nearestIndex(STEPS, 25), 2);
  assert.equal(nearestIndex(STEPS, 26), 3);
  assert.equal(nearestIndex(STEPS, 99), 4);
});

test("marks: about eight along the slider, the last always", () => {
  const many = Array.from({length: 100}, (_, i) => i * 5);
  const shown = marks(many);
  assert.ok(Object.keys(shown).length <= 10);
  assert.equal(shown[99], "495");
  assert.equal(shown[0], "0");
  assert.equal(marks([]), null);
  assert.equal(marks([3100]), null);  // a lone snapshot: its step is said beside the slider
  const keys = (steps) => Object.keys(marks(steps)).map(Number).sort((a, b) => a - b);
  for (const length of [2, 9, 17, 26, 51, 100, 101, 250]) {  // no two labels crowd each other
    const at = keys(Array.from({length}, (_, i) => i * 100));
    const every = Math.max(1, Math.floor(length / 8));
    assert.equal(at[at.length - 1], length - 1);
    at.slice(1).forEach((index, i) => assert.ok(index - at[i] >= every / 2, `${length}: ${at}`));
  }
});

function page(triggered) {
  window.dash_clientside.no_update = "no_update";
  window.dash_clientside.callback_context = {triggered: triggered.map((id) => ({prop_id: id + ".n_clicks"}))};
}

test("a malformed page state moves nothing", () => {
  page(["step-back"]);
  const nothing = Array(6).fill("no_update");
  const args = (steps, view, speed) => [steps, null, 0, 0, 0, 0, 0, 0, null, null, null, view, speed, ""];
  assert.deepEqual(scrub(...args([0, 10], {live: "yes"}, 1)), nothing);
  assert.deepEqual(scrub(...args([10, 0], PINNED, 1)), nothing);  // steps out of order
  assert.deepEqual(scrub(...args([0, 10], PINNED, 3)), nothing);  // a speed the menu lacks
});

test("a shared link's step is pinned once, and Back moves from it", () => {
  page(["step-back"]);
  const out = scrub(STEPS, null, 0, 0, 1, 0, 0, 0, null, null, null, null, 1, "?run=x&step=30");
  assert.deepEqual(out[0], {live: false, playing: false, step: 20});
  assert.equal(out[1], 2);
  assert.equal(out[2], 4);
});
