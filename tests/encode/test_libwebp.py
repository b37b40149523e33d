"""libwebp through ctypes: Pillow's bytes at Pillow's settings, the loop filter as a switch, and
libwebp's own refusals as errors that say what went wrong."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from animated_previews.engine.encode import libwebp

pytestmark = pytest.mark.skipif(libwebp.unavailable() is not None,
                                reason=f"libwebp not loadable here: {libwebp.unavailable()}")


def picture(h: int = 72, w: int = 104) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    grain = np.random.default_rng(1).integers(-20, 21, (h, w, 3))
    smooth = np.stack([xs * 255 // w, ys * 255 // h, (xs ^ ys) & 255], axis=-1)
    return np.clip(smooth + grain, 0, 255).astype(np.uint8)


def pillow_webp(rgb: np.ndarray, alpha: np.ndarray | None, quality: int, method: int) -> bytes:
    image = Image.fromarray(rgb)
    if alpha is not None:
        image.putalpha(Image.fromarray(alpha))
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=quality, method=method, lossless=False)
    return buffer.getvalue()


@pytest.mark.parametrize("quality, method", [(45, 1), (75, 4), (20, 0), (90, 6)])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_the_bytes_are_pillows_at_the_same_settings(quality, method, with_alpha):
    """Same library, same configuration: a wrong structure layout would show here first."""
    rgb = picture()
    alpha = None
    if with_alpha:
        alpha = np.full(rgb.shape[:2], 255, np.uint8)
        alpha[8:40, 16:64] = 0
    assert libwebp.encode_still(rgb, alpha, quality, method) == pillow_webp(rgb, alpha, quality, method)


def test_without_the_loop_filter_the_file_differs_and_still_decodes():
    rgb = picture()
    filtered, unfiltered = (libwebp.encode_still(rgb, None, 45, 4, loop_filter=f) for f in (True, False))
    assert filtered != unfiltered
    decoded = np.asarray(Image.open(io.BytesIO(unfiltered)).convert("RGB"))
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(int) - rgb).mean() < 12


def test_a_picture_libwebp_cannot_code_is_an_error_naming_why():
    with pytest.raises(RuntimeError, match="bad dimension"):
        libwebp.encode_still(np.zeros((1, 16384, 3), np.uint8), None, 45, 1)


def test_it_is_the_library_pillow_loaded():
    """Found in the process's memory map once Pillow's plugin is in (Linux), so Pillow and this
    module code with one libwebp and one set of defaults."""
    path = libwebp._pillows_libwebp()
    if path is None:
        pytest.skip("this Pillow's libwebp is not a library of its own (linked in statically)")
    assert libwebp.loaded_from() == path
