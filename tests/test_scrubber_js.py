"""The scrubber's state machine (``dash_app/assets/scrubber.js``) as a table, run by Node's own
test runner in milliseconds (``tests/js/scrubber.test.js``); the browser tests drive the same
code through the page."""

import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).parent / "js"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_scrubber_state_machine_table():
    run = subprocess.run(["node", "--test", str(JS_TESTS)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass 0\n" not in run.stdout
