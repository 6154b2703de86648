"""This machine's processes as LLMBreaker needs them: which process a record names (its id and
the moment it started), whether that process still runs, which LLMBreaker trainings run here,
and how many cores this process may use.

A process id alone does not name a process: once it has ended, the system gives its id to
another. A record therefore keeps the process's start time too, and a process whose start
differs from the recorded one is another. psutil reads a start time as the boot time plus the
ticks from boot to the start, and the boot time as the clock now minus the time since boot, in
whole seconds: two readings of one process's start may differ by a second, more if the clock is
stepped meanwhile. Starts within SAME_START of each other are taken for the same process; for
another process to have the id by then, the system would have had to hand out every other id
within those two seconds.
"""

from __future__ import annotations

import os

from .numbers import whole_number

SAME_START = 2.0  # seconds
TRAINING_COMMANDS = ("train", "resume")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def identity(pid: int | None = None) -> tuple[int, float]:
    """(pid, start time in seconds since the epoch) of process ``pid``, else of this one."""
    import psutil

    process = psutil.Process(pid)
    return process.pid, process.create_time()


def process_id(value) -> int | None:
    """``value`` (an int, or its digits as read from a record) as a process id, or None if it is
    no number that could be one."""
    if isinstance(value, str):
        value = whole_number(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def find(pid, started: float | None = None):
    """The psutil Process ``pid`` if it runs and, when ``started`` is given, started then (within
    SAME_START); None if it has ended (a zombie has), if its id now belongs to another process,
    or if ``pid`` is no process id. A process this user may not inspect is taken to run."""
    import psutil

    pid = process_id(pid)
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        if started is not None and abs(process.create_time() - started) > SAME_START:
            return None
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:  # another user's: it runs, whichever process it is
        pass
    return process


def is_alive(pid, started: float | None = None) -> bool:
    """Whether process ``pid`` (the one that started at ``started``, if given) still runs."""
    return find(pid, started) is not None


def is_training(cmdline: list[str]) -> bool:
    """Whether a command line is an LLMBreaker training: ``llmb train|resume`` or
    ``python [options] -m llmb_mlflow train|resume``. A process that only waits on one (torchrun's
    launcher, ``timeout``, ``/usr/bin/time``, a script given the command as arguments) is not."""
    for i, part in enumerate(cmdline[:-1]):
        if os.path.basename(part) in ("llmb", "llmb_mlflow") and cmdline[i + 1] in TRAINING_COMMANDS:
            runner = cmdline[:i]  # nothing (the ``llmb`` script), or Python and its options
            return not runner or (os.path.basename(runner[0]).startswith("python")
                                  and all(option.startswith("-") for option in runner[1:]))
    return False


def training_commands() -> list[list[str]]:
    """The command lines of the LLMBreaker trainings running on this machine, this one included."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            command = process.info["cmdline"] or []
        except psutil.Error:
            continue
        if is_training(command):
            found.append(command)
    return found


def trainings_here() -> int:
    """How many LLMBreaker trainings run on this machine, this one included."""
    return len(training_commands())
