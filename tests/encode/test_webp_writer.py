"""The animated WebP writer: every frame as a viewer composites it, only changed areas coded,
unchanged frames merged into longer ones, and no drift on slow changes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import clients
from animated_previews.engine.encode.webp import encode_webp


def decode(data: bytes, tmp_path) -> list[tuple[np.ndarray, int]]:
    path = tmp_path / "x.webp"
    path.write_bytes(data)
    return clients.pillow_frames(path)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(np.float64) - b) ** 2).mean()
    return 100.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def background(h: int = 97, w: int = 161) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs * 255 // w, ys * 255 // h, (xs + ys) * 255 // (w + h)], axis=-1).astype(np.uint8)


def moving_square(count: int = 8) -> np.ndarray:
    frames = np.repeat(background()[None], count, axis=0)
    for k in range(count):
        frames[k, 20:36, 10 + 9 * k: 26 + 9 * k] = (255, 255, 255)
    return frames


def test_every_composited_frame_matches_its_source_and_the_timing_is_kept(tmp_path):
    frames = moving_square()
    shown = decode(encode_webp(frames, [40, 50, 60, 70, 80, 90, 100, 110]), tmp_path)
    assert [d for _, d in shown] == [40, 50, 60, 70, 80, 90, 100, 110]
    for (rgb, _), source in zip(shown, frames):
        assert rgb.shape == (97, 161, 3) and psnr(rgb, source) > 30


def test_only_the_area_that_moved_is_coded_so_static_scenes_cost_less(tmp_path):
    frames = moving_square()
    data = encode_webp(frames, [100] * 8)
    everything = encode_webp(frames, [100] * 8, change_threshold=-1)  # every pixel counts as changed
    assert len(data) < 0.6 * len(everything)
    if shutil.which("webpmux"):
        path = tmp_path / "s.webp"
        path.write_bytes(data)
        info = clients.webpmux_info(path)
        assert info["frames"] == 8 and (info["width"], info["height"]) == (161, 97)
        assert all(row["width"] < 161 for row in info["frame_table"][1:])


def test_frames_that_do_not_change_extend_the_previous_one(tmp_path):
    still = np.repeat(background()[None], 5, axis=0)
    shown = decode(encode_webp(still, [100] * 5), tmp_path)
    assert len(shown) == 1 and shown[0][1] == 500


def test_a_slow_fade_is_refreshed_instead_of_drifting(tmp_path):
    base = background().astype(np.int16)
    frames = np.stack([np.clip(base + k, 0, 255) for k in range(40)]).astype(np.uint8)  # +1 level a frame
    shown = decode(encode_webp(frames, [50] * 40), tmp_path)
    times = np.cumsum([0] + [d for _, d in shown])
    for k in range(40):
        on_screen = shown[int(np.searchsorted(times, k * 50, side="right")) - 1][0]
        error = np.abs(on_screen.astype(np.int16) - frames[k]).mean()
        assert error < 6 + 3, f"frame {k} drifted by {error:.1f} levels"


def test_one_frame_is_a_valid_animation(tmp_path):
    shown = decode(encode_webp(background()[None], [250]), tmp_path)
    assert len(shown) == 1 and shown[0][1] == 250


def test_mismatched_delays_are_a_programming_error():
    with pytest.raises(ValueError):
        encode_webp(moving_square(3), [100, 100])


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_frames_coded_in_threads_give_the_same_file(threads):
    """libwebp codes each still without the GIL, so a job with cores to itself codes its frames
    side by side; the file is the one coded frame after frame."""
    frames = moving_square(7)
    frames[3] = 255 - frames[3]  # a whole new frame among the moving square's boxes
    one = encode_webp(frames, [100] * 7, threads=1)
    assert encode_webp(frames, [100] * 7, threads=threads) == one
    assert encode_webp(frames[:1], [100], threads=threads) == encode_webp(frames[:1], [100], threads=1)
