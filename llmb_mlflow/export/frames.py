"""The frames of a run's training movie: at one snapshot, the step, the loss curve up to it with
a marker, the sample, the probability tower and the attention grid (or one of these alone).

Pure drawing: a run's loss curves and a ``Snapshot`` in, an RGB image (numpy, uint8) out. No
torch. Matplotlib (its object API on the Agg canvas: no pyplot, no display, safe in a server
thread) draws the axes once per movie and, each frame, only the curves and images over them
(blitting); Pillow writes each frame's text, which is ten times faster than matplotlib's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image, ImageDraw, ImageFont

from ..formats.attention_image import GAP, attention_grid
from .movie import PANELS
from ..formats.snapshot import Snapshot

SIZE = (960, 540)  # pixels; even sides, as MP4's yuv420p needs
DPI = 100
TOWER_ROWS = 5  # the five likeliest next characters ...
TOWER_COLUMNS = {"all": 48, "tower": 32}  # ... at the sample's first positions
TRAIN, SMOOTH, VAL, MARK, INK, LIGHT_INK = "#9ecae1", "#1f77b4", "#ff7f0e", "#d62728", "#222222", "#ffffff"
LIGHT_TEXT = 0.55  # a tower cell at least this likely is dark: its character is written in white


@dataclass(frozen=True)
class MovieRun:
    """What every frame of a run's movie shares: its name, its loss curves (steps, values:
    ascending numpy arrays) and the step the time axis ends at."""

    name: str
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    last_step: int


def smooth(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    """An exponential moving average (TensorBoard's smoothing)."""
    out = np.empty(len(values), dtype=np.float64)
    last = values[0] if len(values) else 0.0
    for i, value in enumerate(values):
        last = weight * last + (1 - weight) * value
        out[i] = last
    return out


def wrapped(text: str, width: int, lines: int) -> str:
    """``text`` cut into at most ``lines`` lines of at most ``width`` characters."""
    out = []
    for line in text.split("\n"):
        out += [line[i:i + width] for i in range(0, max(len(line), 1), width)]
    return "\n".join(out[:lines]) + ("\n…" if len(out) > lines else "")


def value_at(steps: np.ndarray, values: np.ndarray, step: int) -> float | None:
    """The value at the last of ``steps`` at or before ``step``."""
    i = int(np.searchsorted(steps, step, side="right"))
    return float(values[i - 1]) if i else None


@lru_cache(maxsize=32)
def font(pixels: int, family: str = "DejaVu Sans Mono", weight: str = "normal") -> ImageFont.FreeTypeFont:
    """A font matplotlib ships (so every machine has it), for Pillow."""
    path = font_manager.findfont(font_manager.FontProperties(family=family, weight=weight))
    return ImageFont.truetype(path, max(pixels, 6))


class FrameBuilder:
    """The movie's figure; ``frame(snapshot)`` draws it at that snapshot."""

    def __init__(self, run: MovieRun, panel: str = "all", size: tuple[int, int] = SIZE):
        if panel not in PANELS:
            raise ValueError(f"unknown panel {panel!r}")
        self.run, self.panel, self.size = run, panel, size
        self.figure = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI, facecolor="white")
        self.canvas = FigureCanvasAgg(self.figure)
        self._updates, self._moving, self._texts = [], [], []  # what each frame changes
        self._background, self._shape = None, None
        self._texts.append(self._title)
        self._layout()

    def _layout(self) -> None:
        top = 0.9
        if self.panel == "all":
            grid = self.figure.add_gridspec(3, 2, width_ratios=(3, 2), height_ratios=(1.25, 1.15, 0.8),
                                            left=0.06, right=0.985, bottom=0.04, top=top, wspace=0.12, hspace=0.4)
            self._loss(self.figure.add_subplot(grid[0, 0]))
            self._sample(self.figure.add_subplot(grid[1, 0]), pixels=11)
            self._tower(self.figure.add_subplot(grid[2, 0]))
            self._attention(self.figure.add_subplot(grid[:, 1]))
            return
        full = {"loss": (0.07, 0.1, 0.9, top - 0.16), "sample": (0.03, 0.04, 0.94, top - 0.1),
                "tower": (0.07, 0.2, 0.9, top - 0.4), "attention": (0.05, 0.02, 0.9, top - 0.1)}
        axes = self.figure.add_axes(full[self.panel])
        {"loss": self._loss, "sample": lambda ax: self._sample(ax, pixels=18), "tower": self._tower,
         "attention": self._attention}[self.panel](axes)

    def frame(self, snapshot: Snapshot) -> np.ndarray:
        """The RGB image (height, width, 3) of the movie at ``snapshot``."""
        for update in self._updates:
            update(snapshot)
        if self._shape != snapshot.attention.shape:  # axes, ticks, labels: drawn once per model shape
            self._shape = snapshot.attention.shape
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self.canvas.restore_region(self._background)
        for artist in self._moving:
            self.figure.draw_artist(artist)
        image = Image.fromarray(np.array(self.canvas.buffer_rgba())[..., :3])
        draw = ImageDraw.Draw(image)
        for write in self._texts:
            write(snapshot, draw)
        return np.asarray(image)

    # -- helpers -----------------------------------------------------------------------------

    def _moves(self, artist):
        """An artist each frame redraws over the figure's unchanging rest (matplotlib's blitting)."""
        artist.set_animated(True)
        self._moving.append(artist)
        return artist

    def _pixel(self, transform, x: float, y: float) -> tuple[float, float]:
        """Where a point of ``transform``'s coordinates lands in the image (y down)."""
        px, py = transform.transform((x, y))
        return float(px), self.size[1] - float(py)

    def _title(self, snap, draw) -> None:
        losses = [f"{label} {value:.3f}" for label, series in (("train loss", self.run.train),
                                                                 ("val loss", self.run.val))
                  if (value := value_at(*series, snap.step)) is not None]
        words = "  ·  ".join([self.run.name, f"step {snap.step:,} of {self.run.last_step:,}", *losses])
        draw.text((12, 10), words, fill=INK, font=font(17, "DejaVu Sans", "bold"))

    # -- panels: each lays out its axes once and adds what each frame changes ----------------

    def _loss(self, ax) -> None:
        steps, values = self.run.train
        val_steps, val_values = self.run.val
        smoothed = smooth(values)
        ax.set_xlim(0, max(self.run.last_step, 1))
        known = np.concatenate([values, val_values])
        if len(known):
            low, high = float(known.min()), float(known.max())
            pad = 0.05 * (high - low) or 0.05
            ax.set_ylim(low - pad, high + pad)
        ax.set_xlabel("step", fontsize=8, labelpad=1)
        ax.set_ylabel("loss", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        raw, line, val, dot = (self._moves(ax.plot([], [], *style, label=label, **kw)[0]) for style, label, kw in (
            ((), "train", {"color": TRAIN, "lw": 0.8}), ((), "train (smoothed)", {"color": SMOOTH, "lw": 1.6}),
            (("o",), "validation", {"color": VAL, "ms": 3.5}), (("o",), None, {"color": MARK, "ms": 5})))
        marker = self._moves(ax.axvline(0, color=MARK, lw=1.2))
        ax.legend(handles=[raw, line, val], loc="upper right", fontsize=7, frameon=False)

        def update(snap):
            i = int(np.searchsorted(steps, snap.step, side="right"))
            j = int(np.searchsorted(val_steps, snap.step, side="right"))
            raw.set_data(steps[:i], values[:i])
            line.set_data(steps[:i], smoothed[:i])
            val.set_data(val_steps[:j], val_values[:j])
            marker.set_xdata([snap.step, snap.step])
            dot.set_data([snap.step] if i else [], [smoothed[i - 1]] if i else [])

        self._updates.append(update)

    def _sample(self, ax, pixels: int) -> None:
        ax.set_axis_off()
        ax.set_title("what it writes", loc="left", fontsize=9, color="#555")
        mono = font(pixels)
        left, top = self._pixel(ax.transAxes, 0, 1)
        right, bottom = self._pixel(ax.transAxes, 1, 0)
        width = int((right - left) // mono.getlength("m"))
        lines = int((bottom - top) // (pixels * 1.25))

        def write(snap, draw):
            draw.multiline_text((left, top + 4), wrapped(snap.prompt + snap.sample, width, lines - 1),
                                fill=INK, font=mono, spacing=pixels // 4)

        self._texts.append(write)

    def _tower(self, ax) -> None:
        columns = TOWER_COLUMNS[self.panel]
        ax.set_title("the five likeliest next characters (red: the one it drew)", loc="left", fontsize=9,
                     color="#555")
        image = self._moves(ax.imshow(np.zeros((TOWER_ROWS, columns)), cmap="Blues", vmin=0, vmax=1,
                                      aspect="auto", interpolation="nearest"))
        ax.set_yticks(range(TOWER_ROWS), [f"#{r + 1}" for r in range(TOWER_ROWS)], fontsize=7)
        ax.set_xticks([])
        ax.set_xlim(-0.5, columns - 0.5)
        picked = [self._moves(ax.add_patch(Rectangle((c - 0.5, -0.5), 1, 1, fill=False, ec=MARK, lw=1.3,
                                                     visible=False))) for c in range(columns)]
        centres = [[self._pixel(ax.transData, c, r) for c in range(columns)] for r in range(TOWER_ROWS)]
        cell = centres[0][1][0] - centres[0][0][0] if columns > 1 else 20
        mono = font(int(min(cell * 0.9, abs(centres[1][0][1] - centres[0][0][1]) * 0.7)))
        shown = {}

        def update(snap):
            n, rows = min(columns, len(snap.sample_ids)), min(TOWER_ROWS, snap.topk_ids.shape[1])
            probs = np.zeros((TOWER_ROWS, columns))
            probs[:rows, :n] = np.asarray(snap.topk_probs[:n, :rows], dtype=np.float64).T
            image.set_data(probs)
            for c, box in enumerate(picked):
                found = np.flatnonzero(snap.topk_ids[c, :rows] == snap.sample_ids[c]) if c < n else []
                box.set_visible(len(found) > 0)
                if len(found):
                    box.set_y(found[0] - 0.5)
            shown.update(probs=probs, chars=[snap.vocab.labels(snap.topk_ids[c, :rows], limit=4) for c in range(n)])

        def write(snap, draw):
            for c, chars in enumerate(shown["chars"]):
                for r, ch in enumerate(chars):
                    ink = LIGHT_INK if shown["probs"][r, c] > LIGHT_TEXT else INK
                    draw.text(centres[r][c], ch, fill=ink, font=mono, anchor="mm")

        self._updates.append(update)
        self._texts.append(write)

    def _attention(self, ax) -> None:
        ax.set_title("attention on a fixed text", loc="left", fontsize=9, color="#555")
        image = self._moves(ax.imshow(np.full((2, 2, 3), 255, dtype=np.uint8), interpolation="nearest"))
        ax.tick_params(length=0, labelsize=7)
        ax.xaxis.tick_top()
        for side in ax.spines.values():
            side.set_visible(False)

        def update(snap):
            layers, heads, t, _ = snap.attention.shape
            grid = attention_grid(snap.attention, cell=t)  # one pixel per weight: the axes scale it
            image.set_data(grid)
            if self._shape != snap.attention.shape:  # the labels follow the model's shape
                image.set_extent((-0.5, grid.shape[1] - 0.5, grid.shape[0] - 0.5, -0.5))
                ax.set_xticks([GAP + (t + GAP) * h + t / 2 for h in range(heads)],
                              [f"head {h + 1}" for h in range(heads)])
                ax.set_yticks([GAP + (t + GAP) * layer + t / 2 for layer in range(layers)],
                              [f"layer {layer + 1}" for layer in range(layers)])

        self._updates.append(update)


def frame(run: MovieRun, snapshot: Snapshot, panel: str = "all", size: tuple[int, int] = SIZE) -> np.ndarray:
    """One frame on its own (a movie uses one ``FrameBuilder`` for all of them)."""
    return FrameBuilder(run, panel, size).frame(snapshot)
