"""Between two steps of a training: what its controllers ask (pause, one step, stop, a
checkpoint now, see ``library.control``), read from its tracker and acted on in one place, for
LLMBreaker's own training loop and for a training recorded with ``llmb.record`` alike."""

from __future__ import annotations

from typing import Callable

from .distributed import STOP, TRAIN, WAIT
from .tracker import Tracker
from ..run_layout import CONTROL_PAUSE, CONTROL_STOP, PAUSED, TRAINER_PAUSED, TRAINER_RUNNING, TRAINER_STOPPING

PAUSE_POLL_SECONDS = 1.0


class Gate:
    """``Gate(tracker).next(step)`` before each step: False once the training is to stop; while
    it is paused, the call waits. Requests made before the gate was made do not count.
    ``agree``: a data-parallel training's ranks agree on what to do (``distributed``)."""

    def __init__(self, tracker: Tracker, agree: Callable[[str], str] = lambda wish: wish):
        self.tracker, self.agree = tracker, agree
        seen = tracker.control()
        self.steps_done, self.checkpoints_done = seen.steps, seen.checkpoints
        self.paused = False  # marked in the run (PAUSED) when it pauses and when it resumes

    def next(self, step: int, stop_requested: Callable[[], bool] = lambda: False,
             checkpoint: Callable[[], None] | None = None) -> bool:
        """Whether the training may take the step after ``step`` (False: stop now). Calls
        ``checkpoint`` when a checkpoint is asked for; ``stop_requested``: a stop asked from
        within the training's own process (a signal)."""
        tracker = self.tracker
        while True:
            control = tracker.control()
            if control.checkpoints > self.checkpoints_done:
                self.checkpoints_done = control.checkpoints
                if checkpoint:
                    checkpoint()
            if stop_requested() or control.state == CONTROL_STOP:
                wish = STOP
            elif control.state == CONTROL_PAUSE and control.steps <= self.steps_done:
                wish = WAIT
            else:
                wish = TRAIN
            decision = self.agree(wish)
            if decision == STOP:
                tracker.report_state(TRAINER_STOPPING)
                return False
            if decision == WAIT:
                if not self.paused:
                    self.paused = True
                    tracker.log_metrics(step, {PAUSED: 1.0})
                tracker.report_state(TRAINER_PAUSED)
                tracker.wait_for_control(PAUSE_POLL_SECONDS)
                continue
            if control.state == CONTROL_PAUSE:  # one step asked for while paused
                self.steps_done += 1
            else:
                self.steps_done = control.steps
                tracker.report_state(TRAINER_RUNNING)
                if self.paused:
                    self.paused = False
                    tracker.log_metrics(step, {PAUSED: 0.0})
            return True
