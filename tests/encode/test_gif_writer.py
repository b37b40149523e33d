"""The GIF writer: exact colours back, delays and looping as asked, whatever the palette holds;
tables and codes as small as the colours used, a frame's palette where most frames find it."""

from __future__ import annotations

import numpy as np
import pytest

import clients
from clients import gif_images
from animated_previews.engine.encode import KEEP
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


def test_a_few_colours_take_a_small_table_and_short_codes():
    """7 colours and a transparent slot fit 8 entries and 3-bit codes (Pillow's writer always
    wrote 256 entries and 8-bit codes); palette rows past the highest index used are not written."""
    palette = np.random.default_rng(2).integers(0, 256, (7, 3), dtype=np.uint8)
    frames = frames_with(7)
    data = encode_gif(frames, palette, [5] * len(frames))
    entries, images = gif_images(data)
    assert entries == 8 and {image["code_bits"] for image in images} == {3}
    padded = np.concatenate([palette, np.zeros((248, 3), np.uint8)])  # same indices, 255 rows
    assert gif_images(encode_gif(frames, padded, [5] * len(frames)))[0] == 8  # unused rows are not written


def test_delta_frames_store_only_the_rectangle_that_changed():
    frames = frames_with(32, count=3)  # frame k changes rows 5k .. 5k+7, columns 10 .. 29 at most
    _, images = gif_images(encode_gif(frames, np.arange(96, dtype=np.uint8).reshape(32, 3), [5] * 3))
    assert images[0]["rect"] == (0, 0, 50, 40)
    for k in (1, 2):
        left, top, width, height = images[k]["rect"]
        changed = np.argwhere(frames[k] != frames[k - 1])
        assert (top, left) == tuple(changed.min(0)) and (top + height - 1, left + width - 1) == tuple(changed.max(0))


def test_the_palette_most_frames_use_is_the_global_table(tmp_path):
    rng = np.random.default_rng(7)
    few, most = (rng.integers(0, 256, (100, 3), dtype=np.uint8) for _ in range(2))
    frames = frames_with(100, count=6)
    palettes = np.stack([few] * 2 + [most] * 4)
    data = encode_gif(frames, palettes, [5] * 6)
    entries, images = gif_images(data)
    assert [image["local"] for image in images] == [128, 128, 0, 0, 0, 0]
    assert data[13:13 + 300] == most.tobytes()
    for (rgb, _), index, palette in zip(decode(data, tmp_path), frames, palettes):
        np.testing.assert_array_equal(rgb, palette[index])


def test_a_still_longer_than_a_delay_field_holds_stays_as_long(tmp_path):
    """Identical frames merge into one delay, up to the field's 65535 cs: past it the still is
    stored again (one pixel), so the file still plays for the whole time."""
    frames = np.zeros((3, 4, 4), np.uint8)
    _, images = gif_images(encode_gif(frames, np.array([[9, 9, 9]], np.uint8), [40000, 20000, 30000]))
    assert [image["delay"] for image in images] == [60000, 30000]
    assert images[1]["rect"][2:] == (1, 1)


def test_kept_pixels_show_what_was_on_screen_across_a_change_of_palette(tmp_path):
    """KEEP (255) is the colour left on screen by earlier frames, whatever their palette; such a
    frame stores only what it changes."""
    rng = np.random.default_rng(9)
    first, second = (rng.integers(0, 256, (40, 3), dtype=np.uint8) for _ in range(2))
    frames = frames_with(40, count=4)
    shown_before = first[frames[1]]
    frames[2] = KEEP
    frames[2, 0:10, 0:12] = 3  # the new palette's colour 3 in one corner, the rest kept
    frames[3, 20:30] = KEEP
    data = encode_gif(frames, np.stack([first, first, second, second]), [5] * 4)
    shown = [rgb for rgb, _ in decode(data, tmp_path)]
    expected = shown_before.copy()
    expected[0:10, 0:12] = second[3]
    np.testing.assert_array_equal(shown[2], expected)
    expected_last = second[np.where(frames[3] == KEEP, 0, frames[3])]
    expected_last[20:30] = expected[20:30]
    np.testing.assert_array_equal(shown[3], expected_last)
    _, images = gif_images(data)
    assert images[2]["rect"][2:] == (12, 10)  # only the corner


@pytest.mark.parametrize("seed", range(300))
def test_any_frames_palettes_and_kept_pixels_decode_to_what_should_be_on_screen(tmp_path, seed):
    """Random sizes (1x1 up), palettes of 1-255 colours (one, or changing at random frames),
    sparse or dense changes, kept pixels (KEEP) in any frame after the first, stills, long
    delays: Pillow shows exactly the expected picture at every instant and gifsicle reads it."""
    rng = np.random.default_rng(seed)
    count, height, width = int(rng.integers(1, 11)), int(rng.integers(1, 24)), int(rng.integers(1, 24))
    size = int(rng.choice([1, 2, 3, 16, 100, 255]))
    per_frame = rng.random() < 0.7 and count > 1
    few = rng.integers(0, 256, (3, 3), dtype=np.uint8)  # palettes sharing colours: equal colours, other indices

    def a_palette() -> np.ndarray:
        return few[rng.integers(0, 3, size)] if rng.random() < 0.5 else rng.integers(0, 256, (size, 3), dtype=np.uint8)

    palettes = [a_palette()]
    for _ in range(1, count):
        palettes.append(a_palette() if per_frame and rng.random() < 0.6 else palettes[-1])
    frames = rng.integers(0, size, (count, height, width), dtype=np.uint8)
    expected, screen = [], None
    for k in range(count):
        if k and rng.random() < 0.3:
            frames[k] = frames[k - 1]  # a still: merged into the frame before
        elif k and rng.random() < 0.5:
            sparse = rng.random((height, width)) < 0.8
            frames[k][sparse] = frames[k - 1][sparse]
        if k and rng.random() < 0.4:
            frames[k][rng.random((height, width)) < 0.5] = KEEP  # keep what the frame before showed
        shown = np.where((frames[k] == KEEP)[..., None], screen if screen is not None else 0,
                         palettes[k][np.where(frames[k] == KEEP, 0, frames[k])])
        expected.append(shown)
        screen = shown
    delays = [int(d) for d in rng.integers(2, 50, count)]
    if rng.random() < 0.2:
        delays[-1] = 40000  # a still past the delay field, if the frame before is the same
    data = encode_gif(frames, np.stack(palettes) if per_frame else palettes[0], delays)
    decoded = decode(data, tmp_path)  # one entry per stored image; a merged still adds its delay
    assert sum(duration for _, duration in decoded) == 10 * sum(delays)
    starts = np.cumsum([0] + [duration for _, duration in decoded])
    for k in range(count):  # the image on screen at each instant's start
        at = 10 * sum(delays[:k])
        image = int(np.searchsorted(starts, at, side="right")) - 1
        np.testing.assert_array_equal(decoded[image][0], expected[k])
    path = tmp_path / "r.gif"
    path.write_bytes(data)
    info = clients.gifsicle_info(path, missing="none")
    if info is not None:
        assert info["frames"] == len(decoded) and info["loop"] == 0


def test_kept_pixels_follow_the_screen_through_runs_that_share_a_palette(tmp_path):
    """Two runs in a row may get the same palette (a still title in a clip whose colours drift):
    what a kept pixel shows is still the frame before's picture, not the last palette change's."""
    red, blue = [255, 0, 0], [0, 0, 255]
    a, b, c = (np.array([colour, [0, 255, 0]], np.uint8) for colour in (red, blue, red))
    frames = np.stack([np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), np.full((4, 4), KEEP, np.uint8),
                       np.zeros((4, 4), np.uint8)])
    shown = decode(encode_gif(frames, np.stack([a, b, b, c]), [10, 10, 10, 10]), tmp_path)
    assert [(rgb[0, 0].tolist(), duration) for rgb, duration in shown] == [(red, 100), (blue, 200), (red, 100)]


def test_a_still_past_the_delay_field_that_keeps_every_pixel_stays_as_it_was(tmp_path):
    a, b = np.array([[255, 0, 0]], np.uint8), np.array([[0, 0, 255]], np.uint8)
    frames = np.stack([np.zeros((2, 2), np.uint8), np.full((2, 2), KEEP, np.uint8)])
    shown = decode(encode_gif(frames, np.stack([a, b]), [40000, 30000]), tmp_path)
    assert [(rgb[0, 0].tolist(), duration) for rgb, duration in shown] == [([255, 0, 0], 400000), ([255, 0, 0], 300000)]


def test_the_global_table_is_the_first_palette_when_palettes_are_used_as_often():
    """The output depends on nothing but the input (not on Python's hash seed)."""
    rng = np.random.default_rng(3)
    one, two = (rng.integers(0, 256, (50, 3), dtype=np.uint8) for _ in range(2))
    frames = frames_with(50, count=4)
    for palettes in (np.stack([one, one, two, two]), np.stack([two, two, one, one])):
        data = encode_gif(frames, palettes, [5] * 4)
        assert data[13:13 + 150] == palettes[0].tobytes() and gif_images(data)[1][0]["local"] == 0


def test_a_first_frame_that_keeps_colours_is_refused():
    with pytest.raises(ValueError, match="nothing is on screen"):
        encode_gif(np.full((2, 4, 4), KEEP, np.uint8), np.zeros((3, 3), np.uint8), [5, 5])


def test_a_palette_without_a_spare_slot_is_refused():
    with pytest.raises(ValueError):
        encode_gif(np.zeros((1, 4, 4), np.uint8), np.zeros((256, 3), np.uint8), [10])
