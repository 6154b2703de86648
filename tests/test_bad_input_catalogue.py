"""The bad-input catalogue in docs/bad-input.md stays true: every row names a test that exists
and checks the message the row quotes."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| (\d+) \| [^|]+ \| [^|]+ \| `(?P<message>.+?)`.*\| `(?P<file>test_\w+\.py)::(?P<test>\w+)` \|$")


def rows():
    return [ROW.match(line) for line in (ROOT / "docs" / "bad-input.md").read_text().splitlines()
            if line.startswith("| ") and line[2].isdigit()]


def test_the_catalogue_has_at_least_forty_rows_each_backed_by_its_test():
    found = rows()
    assert len(found) >= 40 and all(found), [r for r in found if not r]
    for row in found:
        source = (ROOT / "tests" / row["file"]).read_text()
        test = re.search(rf"^def {row['test']}\(.*?(?=^def |\Z)", source, re.S | re.M)
        assert test, f"{row['file']}::{row['test']} does not exist"
        before = source[:test.start()]
        params = before[before.rfind("\n\n\n"):]  # its parametrize cases, if any
        assert row["message"] in test.group(0) + params, f"{row['test']} does not check {row['message']!r}"
