"""The GIF writer: exact colours back, delays and looping as asked, whatever the palette holds."""

from __future__ import annotations

import numpy as np
import pytest

import clients
from animated_previews.engine.encode.gif import encode_gif


def decode(data: bytes, tmp_path):
    path = tmp_path / "x.gif"
    path.write_bytes(data)
    return clients.pillow_frames(path)


def frames_with(palette_size: int, count: int = 6, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.repeat(rng.integers(0, palette_size, (1, 40, 50), dtype=np.uint8), count, axis=0)
    for k in range(1, count):  # change a block each frame, leave the rest: exercises delta frames
        frames[k, 5 * k: 5 * k + 8, 10:30] = rng.integers(0, palette_size, (8, 20), dtype=np.uint8)
    return frames


@pytest.mark.parametrize("palette_size", [2, 7, 32, 255])
def test_every_frame_decodes_to_exactly_palette_of_indices(tmp_path, palette_size):
    rng = np.random.default_rng(palette_size)
    palette = rng.integers(0, 256, (palette_size, 3), dtype=np.uint8)
    frames = frames_with(palette_size)
    shown = decode(encode_gif(frames, palette, [5] * len(frames)), tmp_path)
    composited = []
    for rgb, duration in shown:  # identical frames may be merged: expand by duration
        composited += [rgb] * (duration // 50)
    assert len(composited) == len(frames)
    for rgb, index in zip(composited, frames):
        np.testing.assert_array_equal(rgb, palette[index])


def test_frames_with_their_own_palettes_decode_exactly_and_carry_local_colour_tables(tmp_path):
    rng = np.random.default_rng(5)
    first, second = (rng.integers(0, 256, (200, 3), dtype=np.uint8) for _ in range(2))
    frames = frames_with(200, count=6)
    palettes = np.stack([first] * 3 + [second] * 3)  # a run of three frames each
    data = encode_gif(frames, palettes, [5] * len(frames))
    composited = []
    for rgb, duration in decode(data, tmp_path):
        composited += [rgb] * (duration // 50)
    assert len(composited) == len(frames)
    for rgb, index, palette in zip(composited, frames, palettes):
        np.testing.assert_array_equal(rgb, palette[index])
    with pytest.raises(ValueError, match="palettes"):
        encode_gif(frames, palettes[:4], [5] * len(frames))


def test_repeated_palette_colours_still_decode_exactly(tmp_path):
    palette = np.array([[10, 20, 30], [200, 0, 0], [10, 20, 30], [0, 0, 0], [0, 0, 0]], dtype=np.uint8)
    frames = frames_with(5)
    shown = decode(encode_gif(frames, palette, [4] * len(frames)), tmp_path)
    np.testing.assert_array_equal(shown[0][0], palette[frames[0]])
    np.testing.assert_array_equal(shown[-1][0], palette[frames[-1]])


def test_delays_and_endless_loop_reach_gifsicle(tmp_path):
    frames = frames_with(4, count=4)
    data = encode_gif(frames, np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]], np.uint8), [3, 4, 3, 7])
    path = tmp_path / "d.gif"
    path.write_bytes(data)
    info = clients.gifsicle_info(path)
    if info is None:
        pytest.skip("gifsicle is not installed")
    assert info["delays_cs"] == [3, 4, 3, 7] and info["loop"] == 0


def test_a_palette_without_a_spare_slot_is_refused():
    with pytest.raises(ValueError):
        encode_gif(np.zeros((1, 4, 4), np.uint8), np.zeros((256, 3), np.uint8), [10])
