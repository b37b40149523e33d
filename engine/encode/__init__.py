"""The format table: every output format the engine writes, as one :class:`Format` entry each.

Everything the rest of the engine needs to know about a format lives in its entry: its clock
(``ticks_per_second``), the fastest frame rate it plays correctly (``max_fps``), the shortest delay
it may carry (``min_delay``), whether its encoder wants palette-indexed or RGB frames
(``palette_colours``) and the encoder itself. The spec validates format names against this table,
the timeline reads its clock and limits from it, and the job renders and encodes through it, so a
new format is one encoder file and one entry (in :data:`FORMATS` below, or through
:func:`register_format`).

Importing this package stays cheap (no NumPy, no Pillow): the spec, and so the command line,
imports it at start-up, and the entries reach their encoder modules only when a job encodes.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence, Union

from ..errors import EngineError, ErrorCode

if TYPE_CHECKING:  # only for the annotations: NumPy is not imported with the table
    import numpy as np


@dataclass(frozen=True)
class IndexedFrames:
    """Frames as palette indices, for a format with a palette (``palette_colours`` set): the
    kernels pick the palettes (one per clip, or one per run of frames where the colours drift),
    so the encoder only maps indices to bytes."""

    indices: np.ndarray
    """uint8 [N, H, W]: the palette entry of every pixel of every frame, or, for a format that
    :attr:`Format.keeps_screen`, :data:`KEEP`: the pixel shows what the frame before showed."""
    palette: np.ndarray
    """uint8 [K, 3], K <= the format's ``palette_colours``: the RGB colour of each index, for
    every frame; or uint8 [N, K, 3]: each frame's own palette (frames of one run share theirs)."""


@dataclass(frozen=True)
class RGBFrames:
    """Frames as plain RGB, for a format without a palette (``palette_colours`` is None)."""

    rgb: np.ndarray
    """uint8 [N, H, W, 3]."""


Frames = Union[IndexedFrames, RGBFrames]
"""What an encoder takes: :class:`IndexedFrames` if its format has a palette, else :class:`RGBFrames`."""

Encoder = Callable[..., bytes]
"""``encode(frames, delays, quality=None, effort=None)`` -> the file's bytes; ``delays[k]`` is
frame k's display time in the format's ticks; ``quality`` one of the format's
:attr:`Format.qualities`, ``effort`` one of its :attr:`Format.efforts` (None: its default; a
format without efforts is never given one). The animation loops forever."""


@dataclass(frozen=True)
class Setting:
    """An encoder's quality and effort for one job (None: the format has no such setting, or
    leaves it to its encoder)."""

    quality: int | None = None
    effort: int | None = None

    def options(self) -> dict[str, int]:
        """The keywords an :data:`Encoder` is called with: only the settings that are set, so a
        format without them (GIF, or an extension's encoder taking frames and delays alone) is
        called as it always was."""
        return {name: value for name, value in (("quality", self.quality), ("effort", self.effort))
                if value is not None}


KEEP = 255
"""An index in :class:`IndexedFrames` that shows no palette colour: the pixel keeps the colour on
screen (the same value as :data:`animated_previews.kernels.hold.KEEP`, which makes it)."""


@dataclass(frozen=True)
class Format:
    """One output format: what the timeline, the kernels and the writer must respect for it."""

    name: str
    """What manifests say (``"format": "gif"``) and the output file's extension."""
    ticks_per_second: int
    """The format's clock: delays are whole ticks (GIF: centiseconds, WebP: milliseconds)."""
    max_fps: float
    """Fastest sampling rate the format plays as asked; faster requests are lowered to it."""
    max_fps_reason: str
    """Why, in the words the result's note uses: ``fps 60 lowered to 50: <reason>``."""
    min_delay: int
    """Shortest delay, in ticks, a frame may get; shorter ones are raised to it."""
    palette_colours: int | None
    """Palette size the kernels make for this format (its encoder takes :class:`IndexedFrames`),
    or None: no palette, the encoder takes :class:`RGBFrames`."""
    encode: Encoder
    hold_slack: float | None = None
    """How much worse than the new index a pixel's previous index may be and still be kept, as a
    fraction of the palette's spacing (:func:`animated_previews.kernels.hold.hold_indices`), for
    a format with a palette; None: the kernels' default. A byte budget raises it: held pixels are
    written as transparent and cost next to nothing."""
    qualities: tuple[int, ...] = ()
    """The encoder's quality settings a byte budget (``max_bytes``) steps down through, the
    default first; empty: the encoder has no quality setting (GIF gives up held colours and
    palette colours instead: :data:`animated_previews.engine.byte_budget.GIF_LOSSES`)."""
    efforts: tuple[int, ...] = ()
    """The encoder's effort settings (slower, usually fewer bytes at the same quality number), the
    default first; a byte budget also tries those other than the job's own, and keeps one where
    its decoded image shows less error (WebP: libwebp's methods 1, 2 and 4); empty: none."""
    chooses: Callable[[Frames], Setting] | None = None
    """Where the frames decide the job's setting (WebP: libwebp's method 2 at quality 60 on footage
    mixing flat and busy areas, ``webp.chosen_setting``); None: always :attr:`default_setting`.
    Read through :meth:`setting_for`."""
    unavailable: Callable[[], str | None] = lambda: None
    """Why this installation cannot write the format, or None when it can. Asked before a job
    decodes anything, so a missing library costs a job nothing but its message."""
    keeps_screen: bool = False
    """The encoder takes :data:`KEEP` in :class:`IndexedFrames` (the pixel keeps the colour on
    screen): then a run of frames with a new palette keeps the previous run's colours where they
    are still good. GIF does (a transparent pixel); a format without it gets every index real."""

    @property
    def tick(self) -> float:
        """Seconds per delay tick."""
        return 1.0 / self.ticks_per_second

    @property
    def default_setting(self) -> Setting:
        """The first of :attr:`qualities` and of :attr:`efforts` (None where there are none)."""
        return Setting(self.qualities[0] if self.qualities else None, self.efforts[0] if self.efforts else None)

    def setting_for(self, frames: Frames) -> Setting:
        """The job's own setting for these frames: chosen once, then given to every encode of the
        job (its own, and a byte budget's, which counts what it gives up from it)."""
        return self.default_setting if self.chooses is None else self.chooses(frames)


def _from_writer(module: str, function: str) -> Callable:
    """``function`` of the writer module ``module``, imported when first asked (not at start-up)."""
    return getattr(importlib.import_module(f".{module}", __name__), function)


def _writer(module: str, function: str, takes: type, label: str, effort_option: str | None = None) -> Encoder:
    """An entry's encoder: imports its writer module (and Pillow) only when a file of that format
    is made, and hands it the frames it takes (indices and palette, or RGB) with the delays;
    an ``effort`` goes to the writer as its ``effort_option`` keyword."""

    def encode(frames: Frames, delays: Sequence[int], quality: int | None = None, effort: int | None = None) -> bytes:
        if not isinstance(frames, takes):
            raise TypeError(f"{label} takes {takes.__name__}, got {type(frames).__name__}")
        write = _from_writer(module, function)
        options: dict[str, int] = {} if quality is None else {"quality": quality}
        if effort is not None:
            if effort_option is None:
                raise TypeError(f"{label} has no effort setting")
            options[effort_option] = effort
        if isinstance(frames, IndexedFrames):
            return write(frames.indices, frames.palette, delays, **options)
        return write(frames.rgb, delays, **options)

    encode.__name__ = encode.__qualname__ = function
    return encode


def _chooser(module: str, function: str) -> Callable[[Frames], Setting]:
    """An entry's :attr:`Format.chooses`: the writer module's ``function`` (RGB frames ->
    (quality, effort)), imported only when asked."""

    def choose(frames: Frames) -> Setting:
        if not isinstance(frames, RGBFrames):
            raise TypeError(f"{function} takes RGBFrames, got {type(frames).__name__}")
        return Setting(*_from_writer(module, function)(frames.rgb))

    choose.__name__ = choose.__qualname__ = function
    return choose


GIF = Format(
    name="gif",
    ticks_per_second=100,
    # 50 fps is a 2 cs delay, the shortest that browsers honour (see min_delay).
    max_fps=50.0,
    max_fps_reason="GIF delays below 2 cs play at 10 cs in browsers",
    # Browsers show any GIF delay under 2 cs as 10 cs, so a 1 cs frame would play 10x too long.
    min_delay=2,
    # 256 minus one slot the writer keeps for the transparency of delta frames (see gif.py).
    palette_colours=255,
    encode=_writer("gif", "encode_gif", IndexedFrames, "GIF"),
    keeps_screen=True,  # written as the transparent index
)

WEBP = Format(
    name="webp",
    ticks_per_second=1000,
    # The engine's own ceiling (the spec accepts 1..60 fps); WebP itself plays faster.
    max_fps=60.0,
    max_fps_reason="the engine samples at most 60 fps",
    # Any whole millisecond plays as written; only a zero delay (a frame never shown) is refused.
    min_delay=1,
    palette_colours=None,
    encode=_writer("webp", "encode_webp", RGBFrames, "WebP", effort_option="method"),
    qualities=(45, 35, 27, 20, 12, 5),
    # libwebp's method: 1 by default, 2 at quality 60 on footage mixing flat and busy areas (`chooses`;
    # engine/encode/webp.py: DEFAULT_METHOD, MIXED_DETAIL_SETTING); a byte budget also tries the
    # methods other than the job's own (4 takes 2.5x method 1's time; engine/byte_budget.py:
    # EFFORT_QUALITIES says what they give, webp.py's DEFAULT_METHOD why 2 joined)
    efforts=(1, 2, 4),
    chooses=_chooser("webp", "chosen_setting"),
)

def avif_unavailable() -> str | None:
    """Why this Pillow cannot write AVIF, or None when it can: Pillow writes AVIF only when built
    with libavif, which its PyPI wheels include from 11.3.0 on (Windows arm64 excepted; Pillow
    pull request 8858). Shared by the format table (asked before a job decodes) and the writer."""
    from PIL import features

    try:
        if features.check("avif"):
            return None
    except ValueError:  # a Pillow older than its AVIF plugin does not know the feature's name
        pass
    return (f"format avif needs Pillow built with libavif; this Pillow ({features.version('pil')}) has no AVIF "
            "support: install a Pillow wheel that has it (pip install 'pillow>=11.3'; python -m PIL.report lists it), "
            "or ask for webp")


AVIF = Format(
    name="avif",
    # Pillow creates libavif's encoder with a 1000-per-second timescale: delays are milliseconds.
    ticks_per_second=1000,
    max_fps=60.0,
    max_fps_reason="the engine samples at most 60 fps",
    min_delay=1,
    palette_colours=None,
    encode=_writer("avif", "encode_avif", RGBFrames, "AVIF"),
    qualities=(65, 50, 40, 30, 20),
    unavailable=avif_unavailable,
)

FORMATS: dict[str, Format] = {GIF.name: GIF, WEBP.name: WEBP, AVIF.name: AVIF}
"""Every format the engine writes, by name, in the order error messages list them."""

_NAME = re.compile(r"^[a-z0-9]{1,16}$")


def register_format(fmt: Format) -> Format:
    """Add ``fmt`` to the table (an extension's format, or a test's) and return it.

    The name must be lower-case letters and digits (manifests' names are lower-cased before the
    look-up, and it becomes the file extension) and not already taken. The table is per process:
    batch workers see a format only if a module they import registers it.
    """
    if not _NAME.match(fmt.name):
        raise ValueError(f"a format name is 1-16 lower-case letters or digits, got {fmt.name!r}")
    if fmt.name in FORMATS:
        raise ValueError(f"format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    return fmt


def format_names() -> tuple[str, ...]:
    """The names a manifest may use, in table order."""
    return tuple(FORMATS)


def get_format(name: str) -> Format:
    """The table entry for ``name``; an unknown name is an InvalidParameter listing the allowed ones."""
    fmt = FORMATS.get(name) if isinstance(name, str) else None
    if fmt is None:
        raise EngineError(ErrorCode.INVALID_PARAMETER,
                          f"format must be one of {', '.join(format_names())}, got {name!r}")
    return fmt


__all__ = ["AVIF", "FORMATS", "GIF", "WEBP", "Encoder", "Format", "Frames", "IndexedFrames", "RGBFrames", "Setting",
           "format_names", "get_format", "register_format"]
