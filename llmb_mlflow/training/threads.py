"""How many compute threads a training uses, so that trainings sharing a machine divide its
cores instead of spinning against each other.

PyTorch starts one compute thread per core in every process; several trainings on one machine
then fight over the cores (measured on 2 cores: three small trainings together 64 s, the same
with one thread each 12 s). A training takes its share: the cores this process may use divided
by the LLMBreaker trainings running on this host (found by their command lines), at least one.
It looks again every few seconds, as trainings start and end. An explicit thread count
(``--threads``, ``OMP_NUM_THREADS``, which torchrun sets for its ranks) is kept as given.
"""

from __future__ import annotations

import os
import threading

from ..processes import trainings_here, usable_cores

CHECK_SECONDS = 5.0


def explicit_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


class ThreadShare:
    """Keeps this process's compute threads at its share of the machine: a background thread
    counts the trainings every CHECK_SECONDS, ``update`` (between two steps) applies a change."""

    def __init__(self, threads: int | None = None):
        self.fixed = threads or explicit_threads()
        self.cores = usable_cores()
        self.threads: int | None = None
        self._wanted = self.fixed or self.share()
        self._stop = threading.Event()
        if not self.fixed:
            threading.Thread(target=self._watch, name="llmb-thread-share", daemon=True).start()

    def share(self) -> int:
        return max(1, self.cores // max(1, trainings_here()))

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            self._wanted = self.share()

    def close(self) -> None:
        self._stop.set()

    def update(self, *_) -> None:
        if self._wanted != self.threads:
            import torch

            torch.set_num_threads(self._wanted)
            self.threads = self._wanted
