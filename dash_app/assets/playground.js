// The Token Playground's moves, kept in the page: every Step, Play tick and picked bar is appended
// at once and in order, and the server applies the moves its state has not applied yet. (With the
// text travelling in each request, a Step sent while the previous answer was on its way carried
// the old text, Dash dropped that answer, and a character was lost.)
//
// moves = {prompt, seed, turn, moves, step, tick}: moves holds -1 (draw a token) or the id of a
// picked token; a new prompt or Regenerate starts a new turn with no moves; step and tick
// are the counts of Step clicks and Play ticks already turned into moves, so clicks that reach
// this function together are each counted.
(function () {
  const DRAW = -1;
  const MAX_MOVES = 2000;  // the text stops at 2000 tokens anyway

  function count(value) {
    return Number.isSafeInteger(value) && value >= 0 ? value : 0;
  }

  function picked(click) {
    const point = click && Array.isArray(click.points) && click.points.length ? click.points[0] : null;
    const value = point ? point.customdata : null;
    return Number.isSafeInteger(value) && value >= 0 && value < 1048576 ? value : null;  // checks.MAX_TOKEN_ID
  }

  function checked(moves, prompt) {
    const fresh = {prompt: typeof prompt === "string" ? prompt : "", seed: 0, turn: 0, moves: [], step: 0, tick: 0};
    if (!moves || typeof moves !== "object" || !Array.isArray(moves.moves)) { return fresh; }
    return {prompt: typeof moves.prompt === "string" ? moves.prompt : fresh.prompt, seed: count(moves.seed),
            turn: count(moves.turn), moves: moves.moves.slice(0, MAX_MOVES), step: count(moves.step),
            tick: count(moves.tick)};
  }

  function move(step, tick, regenerate, click, prompt, rawMoves) {
    const state = checked(rawMoves, prompt);
    const triggered = window.dash_clientside.callback_context.triggered.map(function (t) {
      return t.prop_id.split(".")[0];
    });
    step = Math.max(count(step), state.step);
    tick = Math.max(count(tick), state.tick);
    if (triggered.includes("pg-prompt") || triggered.includes("pg-regenerate")) {
      return {prompt: typeof prompt === "string" ? prompt : state.prompt, seed: count(regenerate),
              turn: state.turn + 1, moves: [], step: step, tick: tick};
    }
    const added = [];
    for (let i = state.step + state.tick; i < step + tick; i++) { added.push(DRAW); }
    if (triggered.includes("pg-bars") && picked(click) !== null) { added.push(picked(click)); }
    if (!added.length) { return window.dash_clientside.no_update; }
    return Object.assign({}, state, {moves: state.moves.concat(added).slice(0, MAX_MOVES), step: step, tick: tick});
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.playground = {move: move};
})();
