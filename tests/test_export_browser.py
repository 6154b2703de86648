"""The viewer's Export menu in a real browser: it downloads the shown run as a file."""

import pytest
from PIL import Image

from browser import click, needs_browser, open_menu, serve, text, wait
from conftest import until
from dash_app.address import address

pytestmark = [needs_browser, pytest.mark.usefixtures("blank_page")]


@pytest.fixture
def downloads(browser, tmp_path):
    """Downloads of the browser land in a folder of this test's own."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})
    yield folder
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "default"})


def downloaded(folder, suffix):
    """The finished download ending in ``suffix`` (Chromium writes to a .crdownload first)."""
    return until(lambda: [p for p in folder.iterdir() if p.suffix == suffix], timeout=120,
                 what=f"a downloaded {suffix} file")[0]


def test_the_export_menu_downloads_the_shown_run(browser, finished_run, downloads):
    url, server = serve(finished_run.uri)
    try:
        browser.get(url + address(finished_run.run_id, "watch", 25))
        wait(browser, lambda d: "finished" in text(d, "status"))
        open_menu(browser, "export-summary")
        assert browser.execute_script(  # the open menu stays inside the window
            "const r = document.querySelector('#export-menu .menu-body').getBoundingClientRect();"
            "return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth;")
        click(browser, "export-go")  # the GIF movie is the first choice
        gif = downloaded(downloads, ".gif")
        wait(browser, lambda d: text(d, "export-feedback").startswith(f"Downloaded {gif.name} ("))
        with Image.open(gif) as movie:
            assert movie.n_frames == 4 and movie.size == (960, 540)  # a frame per snapshot

        browser.find_element("css selector", "#export-format input[value='csv']").click()
        click(browser, "export-go")
        table = downloaded(downloads, ".csv")
        assert table.read_text().startswith("step,") and table.stem == gif.stem
    finally:
        server.close()
