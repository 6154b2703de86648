"""A run's training movie as a file: its formats, frame rates and panels, and the encoders of
its frames (RGB numpy images, all one size): GIF with Pillow, MP4 (H.264) with imageio's ffmpeg
plugin, whose wheel brings its own ffmpeg. Pillow and imageio load when a movie is written."""

from __future__ import annotations

from typing import Iterable

import numpy as np

MOVIES = ("gif", "mp4")
PANELS = ("all", "loss", "sample", "tower", "attention")  # what a frame shows: all, or one panel
DEFAULT_FPS = 5.0
MIN_FPS, MAX_FPS = 0.1, 50.0  # a GIF counts time in hundredths of a second; browsers slow faster ones
HOLD_LAST_MS = 2000  # a GIF loops: its last frame stays at least this long before it starts again
MP4_CRF = 20  # H.264 quality (lower is better): small text stays sharp


def palette(samples: list[np.ndarray]):
    """One 256-colour palette for a whole GIF, from a few of its frames (the first and the last
    hold the colours that come and go). Every frame then shares it, so frames differ only where
    the picture changed and Pillow stores just that rectangle of each."""
    from PIL import Image

    return Image.fromarray(np.concatenate(samples, axis=0)).quantize(256, method=Image.Quantize.MEDIANCUT)


def write_gif(frames: Iterable[np.ndarray], path: str, fps: float, colours) -> int:
    """Write ``frames`` as a looping GIF at ``fps``, in the palette ``colours`` (a ``palette``);
    the frame count. Dithering is off: flat colours compress far better and text stays crisp."""
    from PIL import Image

    images = [Image.fromarray(f).quantize(palette=colours, dither=Image.Dither.NONE) for f in frames]
    if not images:
        raise ValueError("a movie needs at least one frame")
    each = round(1000 / fps)
    durations = [each] * (len(images) - 1) + [max(each, HOLD_LAST_MS)]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return len(images)


def write_mp4(frames: Iterable[np.ndarray], path: str, fps: float) -> int:
    """Write ``frames`` as an H.264 MP4 at ``fps`` (yuv420p, which every player plays: the
    frames' sides must be even); the frame count. Frames stream to ffmpeg as they come."""
    import imageio.v2 as imageio

    count = 0
    writer = imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=None,
                                pixelformat="yuv420p", macro_block_size=2, ffmpeg_log_level="error",
                                output_params=["-crf", str(MP4_CRF), "-movflags", "+faststart"])
    try:
        for image in frames:
            writer.append_data(image)
            count += 1
    finally:
        writer.close()
    if not count:
        raise ValueError("a movie needs at least one frame")
    return count
