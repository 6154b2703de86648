"""The page as a person sees it, in headless Chromium at common screen sizes: panels that do not
overlap or leave the window, a two-row header, a samples list of fixed height, icons that
render, the attention grid's click, the first-visit tour, and the words for live and pinned."""

from io import BytesIO

import pytest

from browser import click, graph_data, needs_browser, serve, text, wait

pytestmark = [needs_browser, pytest.mark.usefixtures("blank_page")]

SIZES = [(1366, 768), (1600, 1000), (1920, 1080)]

# Every visible panel's box, the header rows' heights, the samples list's height, the page's width.
GEOMETRY_JS = """
const box = e => { const r = e.getBoundingClientRect(); return [e.id, r.left, r.top, r.right, r.bottom]; };
return {
    panels: [...document.querySelectorAll('.panel')].filter(e => e.getClientRects().length).map(box),
    rows: [...document.querySelectorAll('header > .header-row')].map(e => e.getBoundingClientRect().height),
    samples: (document.getElementById('samples') || {}).clientHeight,
    width: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
};"""

STAR_SCENE_JS = """
const canvas = document.querySelector('#stars .gl-container canvas'), panel = document.getElementById('stars');
if (!canvas || document.querySelector('#stars .no-webgl')) { return false; }
const c = canvas.getBoundingClientRect(), p = panel.getBoundingClientRect();
return c.width > 100 && c.height > 100 && c.left >= p.left - 1 && c.right <= p.right + 1;"""


@pytest.fixture(scope="module")
def drawing_browser():
    """A Chromium that draws the star map's 3-D scene (WebGL), as a person's browser does: the
    session's leaves it out."""
    from conftest import chromium

    driver = chromium(webgl=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def viewer(finished_run):
    url, server = serve(finished_run.uri)
    yield url
    server.close()


def sizer(driver):
    def resize(width, height):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return resize


@pytest.fixture
def window(browser):
    """Set the viewport to an exact size (the session's browser gets its own back after)."""
    yield sizer(browser)
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def overlap(a, b) -> float:
    width = min(a[3], b[3]) - max(a[1], b[1])
    height = min(a[4], b[4]) - max(a[2], b[2])
    return max(width, 0) * max(height, 0)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_panels_fit_the_window_without_overlapping(drawing_browser, viewer, size):
    browser = drawing_browser
    sizer(browser)(*size)
    for tab, panels in (("watch", 4), ("attention", 4)):  # attention: grid, detail, evolution, entropy
        browser.get(f"{viewer}?tab={tab}&step=10")
        wait(browser, lambda d: text(d, "shown-step") == "step 10")
        wait(browser, lambda d: len(d.execute_script(GEOMETRY_JS)["panels"]) == panels)
        geometry = browser.execute_script(GEOMETRY_JS)
        boxes = geometry["panels"]
        for i, a in enumerate(boxes):
            assert 0 <= a[1] and a[3] <= geometry["width"], f"{a[0]} leaves the window: {a}"
            for b in boxes[i + 1:]:
                assert overlap(a, b) < 1, f"{a[0]} overlaps {b[0]} on {tab}"
        assert geometry["scrollWidth"] <= geometry["width"]
        assert len(geometry["rows"]) == 2 and all(row <= 44 for row in geometry["rows"]), geometry["rows"]
        if tab == "watch":  # the star map's scene is drawn, inside its panel
            wait(browser, lambda d: d.execute_script(STAR_SCENE_JS))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_samples_list_keeps_its_height_and_shows_the_shown_step(browser, viewer, window, size):
    window(*size)
    heights = {}
    for step in (0, 25):
        browser.get(f"{viewer}?step={step}")
        wait(browser, lambda d: text(d, "shown-step") == f"step {step}")
        wait(browser, lambda d: d.find_elements("css selector", ".sample.current"))
        heights[step] = browser.execute_script(GEOMETRY_JS)["samples"]
    assert heights[0] == heights[25] == 350
    browser.execute_script("document.getElementById('samples').scrollTop = 10000;")  # read further down
    click(browser, "step-back")
    wait(browser, lambda d: text(d, "shown-step") == "step 20")
    shown_in_list = ("const list = document.getElementById('samples').getBoundingClientRect();"
                     "const shown = document.querySelector('.sample.current .sample-step');"
                     "return shown && shown.textContent === 'step 20' && "
                     "shown.getBoundingClientRect().top >= list.top - 1 && shown.getBoundingClientRect().top < list.bottom;")
    wait(browser, lambda d: d.execute_script(shown_in_list))


def test_control_icons_render_without_an_emoji_font(browser, viewer):
    from PIL import Image

    browser.get(viewer)
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    for button in ("ctl-pause", "ctl-step", "ctl-stop", "ctl-fail", "play", "step-back", "step-forward"):
        png = wait(browser, lambda d: d.find_element("css selector", f"#{button} .icon").screenshot_as_png)
        pixels = Image.open(BytesIO(png)).convert("L").tobytes()  # one byte per pixel
        background = max(pixels)  # the button's own colour around the shape
        inked = sum(1 for p in pixels if background - p > 40)
        assert inked >= 0.2 * len(pixels), f"the icon of {button} is blank ({inked} of {len(pixels)} pixels)"


def test_a_click_on_a_grid_tile_selects_its_head(browser, viewer):
    from selenium.webdriver.common.action_chains import ActionChains

    browser.get(f"{viewer}?tab=attention&step=20")
    title = "return ((document.querySelector('#attention-detail .js-plotly-plot') || {}).layout || {}).title?.text;"
    wait(browser, lambda d: graph_data(d, "attention-grid") and d.execute_script(title) == "layer 1, head 1 at step 20")
    grid = browser.find_element("css selector", "#attention-grid .js-plotly-plot")
    labels = browser.execute_script("return arguments[0].layout.annotations.map(a => a.text);", grid)
    layer, head = sum("layer" in a for a in labels), sum("head" in a for a in labels)  # the last tile
    side = _side(browser)
    # The middle of that tile, from the chart's own axes, relative to the element's centre.
    x, y = browser.execute_script("""
        const gd = arguments[0], layout = gd._fullLayout, side = arguments[1], t = side - 3;
        const rect = gd.getBoundingClientRect();
        const px = layout._size.l + layout.xaxis.l2p((arguments[3] - 1) * side + t / 2);
        const py = layout._size.t + layout.yaxis.l2p((arguments[2] - 1) * side + t / 2);
        return [px - rect.width / 2, py - rect.height / 2];""", grid, side, layer, head)
    ActionChains(browser).move_to_element_with_offset(grid, int(x), int(y)).click().perform()
    wait(browser, lambda d: d.execute_script(title) == f"layer {layer}, head {head} at step 20")
    outline = browser.execute_script("return arguments[0].layout.shapes[0];", grid)
    assert outline["x0"] < (head - 1) * side < outline["x1"] and outline["y0"] < (layer - 1) * side < outline["y1"]


def _side(browser) -> int:
    """The grid's tile size in cells, from where its first two head labels were drawn."""
    return browser.execute_script(
        "const labels = document.querySelector('#attention-grid .js-plotly-plot').layout.annotations;"
        "return labels[1].x - labels[0].x;")


def test_the_tour_opens_on_a_first_visit_can_be_skipped_and_stays_skipped(browser, viewer):
    browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": browser.tour_script})
    try:
        browser.get(viewer)
        browser.execute_script("localStorage.removeItem('llmb.tour.done');")
        browser.refresh()
        title = "return (document.querySelector('.driver-popover-title') || {}).textContent;"
        wait(browser, lambda d: d.execute_script(title) == "Which training")
        wait(browser, lambda d: d.find_element("css selector", ".driver-popover-next-btn").click() or True)
        wait(browser, lambda d: d.execute_script(title) == "What the training does")
        wait(browser, lambda d: d.find_element("css selector", ".tour-skip").click() or True)
        wait(browser, lambda d: not d.find_elements("css selector", ".driver-popover"))
        browser.refresh()
        wait(browser, lambda d: d.execute_script("return document.body.dataset.tour") == "seen")
        assert not browser.find_elements("css selector", ".driver-popover")
        click(browser, "tour-open")  # "?" brings it back
        wait(browser, lambda d: d.execute_script(title) == "Which training")
        wait(browser, lambda d: d.find_element("css selector", ".driver-popover-close-btn").click() or True)
        wait(browser, lambda d: not d.find_elements("css selector", ".driver-popover"))
    finally:
        from conftest import skip_tour

        skip_tour(browser)


def test_a_panel_says_what_it_shows(browser, viewer):
    browser.get(viewer)
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    browser.find_element("css selector", "#loss-panel .info summary").click()
    wait(browser, lambda d: "surprised" in d.find_element("css selector", "#loss-panel .info-body").text)


def test_live_and_pinned_are_said_apart_from_what_the_training_does(browser, viewer):
    browser.get(viewer)
    wait(browser, lambda d: text(d, "shown-step") == "step 25")
    assert text(browser, "status") == "finished"
    wait(browser, lambda d: text(d, "live") == "Showing the last step" and text(d, "view-mode") == "")
    click(browser, "step-back")
    wait(browser, lambda d: text(d, "live") == "Go to the last step" and text(d, "view-mode") == "pinned")
    assert text(browser, "status") == "finished"
