"""The animated WebP writer: every frame as a viewer composites it, only changed areas coded,
still detailed blocks inside them left see-through, unchanged frames merged into longer ones,
and no drift on slow changes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import clients
from clipmaker import text_page
from animated_previews.engine.encode import libwebp
from animated_previews.engine.encode.webp import (DEFAULT_METHOD, DEFAULT_QUALITY, MIXED_DETAIL_SETTING,
                                                MIXED_DETAIL_SPREAD, SEE_THROUGH_THRESHOLD, _alpha_plane, _blocks,
                                                _still_bitstream, chosen_setting, detail_spread, encode_webp,
                                                plan_frames)


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


def detailed_background() -> np.ndarray:
    """Fine detail everywhere (grain on a gradient, as in film): what costs a lossy coder bytes
    in every frame it codes."""
    grain = np.random.default_rng(7).integers(-24, 25, (97, 161, 3))
    return np.clip(background().astype(np.int16) + grain, 0, 255).astype(np.uint8)[:96, :160]


def corner_squares(background: np.ndarray, count: int = 8) -> np.ndarray:
    """Two squares changing colour in opposite corners: the changed box spans the frame (it is
    coded whole), its middle still."""
    frames = np.repeat(background[None], count, axis=0)
    for k in range(count):
        frames[k, 4:20, 4:20] = (255, 40 * k % 256, 0)
        frames[k, 76:92, 136:152] = (0, 255, 40 * k % 256)
    return frames


def blocks_covering(plan, rows: slice, cols: slice) -> np.ndarray:
    """The plan's see-through flags of the blocks that touch canvas rows/cols (box origin 0, 0)."""
    return plan.see_through[rows.start // 8:(rows.stop + 7) // 8, cols.start // 8:(cols.stop + 7) // 8]


def test_still_detailed_blocks_inside_the_changed_box_are_left_see_through(tmp_path):
    frames = corner_squares(detailed_background())
    plan = plan_frames(frames, [100] * 8)
    assert [p.box for p in plan[1:]] == [(0, 0, 160, 96)] * 7  # whole frames: the squares are far apart
    for p in plan[1:]:
        assert p.see_through is not None and p.see_through.mean() > 0.8
        assert not blocks_covering(p, slice(4, 20), slice(4, 20)).any()
        assert not blocks_covering(p, slice(76, 92), slice(136, 152)).any()
    data = encode_webp(frames, [100] * 8)
    opaque = encode_webp(frames, [100] * 8, see_through_threshold=None)
    assert len(data) < 0.5 * len(opaque)
    shown, opaque_shown = decode(data, tmp_path), decode(opaque, tmp_path)
    assert len(shown) == len(opaque_shown) == 8
    for (rgb, _), (opaque_rgb, _), source in zip(shown, opaque_shown, frames):
        assert psnr(rgb, source) > psnr(opaque_rgb, source) - 0.5
    if shutil.which("webpmux"):
        path = tmp_path / "see-through.webp"
        path.write_bytes(data)
        info = clients.webpmux_info(path)
        assert info["frames"] == 8 and "transparency" in info["features"]
        assert [row["blend"] for row in info["frame_table"]] == ["no"] + ["yes"] * 7
        assert [row["alpha"] for row in info["frame_table"]] == ["no"] + ["yes"] * 7


def test_smooth_still_blocks_are_not_worth_a_transparent_frame():
    """Flat still blocks cost a lossy coder little, and transparency makes it code the rest worse:
    such frames stay opaque."""
    flat = np.full((96, 160, 3), (90, 120, 150), np.uint8)
    frames = corner_squares(flat)
    frames[:, 4:20, 4:20:2] = 0  # detail only in the squares
    frames[:, 76:92, 136:152:2] = 255
    assert all(p.see_through is None for p in plan_frames(frames, [100] * 8))
    assert all(p.see_through is None for p in plan_frames(corner_squares(detailed_background()), [100] * 8,
                                                          see_through_threshold=None))


def test_a_see_through_block_drifting_slowly_is_refreshed_instead_of_drifting(tmp_path):
    """The canvas keeps the pixels the viewer keeps, so a still block drifting one level a frame
    is coded again once it is more than the threshold away from what the viewer shows."""
    count = 24
    frames = corner_squares(detailed_background(), count).astype(np.int16)
    frames[:, 40:56, 64:96] += np.arange(count)[:, None, None, None]  # +1 level a frame
    frames = np.clip(frames, 0, 255).astype(np.uint8)
    plan = plan_frames(frames, [50] * count)
    drifting = [blocks_covering(p, slice(40, 56), slice(64, 96)).all() for p in plan[1:]]
    assert any(drifting) and not all(drifting)  # kept for a while, then coded again
    run, longest = 0, 0
    for kept in drifting:
        run = run + 1 if kept else 0
        longest = max(longest, run)
    assert longest <= SEE_THROUGH_THRESHOLD  # +1 a frame: at most threshold frames shown stale
    shown = decode(encode_webp(frames, [50] * count), tmp_path)
    opaque = decode(encode_webp(frames, [50] * count, see_through_threshold=None), tmp_path)
    assert len(shown) == len(opaque) == count
    for (rgb, _), (opaque_rgb, _), source in zip(shown, opaque, frames):
        area = (slice(40, 56), slice(64, 96))
        error = np.abs(rgb[area].astype(np.int16) - source[area]).mean()
        opaque_error = np.abs(opaque_rgb[area].astype(np.int16) - source[area]).mean()
        assert error < opaque_error + SEE_THROUGH_THRESHOLD


def flickering_blocks(amplitude: int = 8, count: int = 8) -> np.ndarray:
    """A smooth gradient whose 8x8 blocks, half of them at random, step by ``amplitude`` levels
    from frame to frame: a scattered pattern of still and changed blocks, cheap to code opaque
    (as a talking head's face is) and dearer with the edges and alpha of see-through blocks."""
    rng = np.random.default_rng(3)
    smooth = background(96, 160).astype(np.int16)
    frames = [smooth]
    for k in range(1, count):
        offsets = np.where(rng.random((12, 20, 1)) < 0.5, amplitude * (k % 2 * 2 - 1), 0)
        frames.append(smooth + np.repeat(np.repeat(offsets, 8, axis=0), 8, axis=1))
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def test_see_through_frames_that_would_cost_more_than_opaque_ones_are_not_kept():
    """The first see-through frames are coded both ways; when they come out larger the whole
    animation is planned opaque."""
    frames = flickering_blocks()
    plan = plan_frames(frames, [100] * 8)
    candidate = next(p for p in plan if p.see_through is not None)
    x0, y0, x1, y1 = candidate.box
    crop = frames[candidate.index, y0:y1, x0:x1]
    assert len(_still_bitstream(crop, _alpha_plane(candidate), 45, 1)) > len(_still_bitstream(crop, None, 45, 1))
    assert encode_webp(frames, [100] * 8) == encode_webp(frames, [100] * 8, see_through_threshold=None)


@pytest.mark.skipif(libwebp.unavailable() is not None, reason=f"libwebp not loadable: {libwebp.unavailable()}")
def test_see_through_frames_are_coded_with_libwebps_loop_filter_off():
    """As libwebp's animation encoder does for frames it blends: the filter would smooth across
    the flattened blocks' edges into the opaque pixels beside them."""
    frames = corner_squares(detailed_background())
    plan = plan_frames(frames, [100] * 8)[1]
    x0, y0, x1, y1 = plan.box
    rgb, alpha = frames[plan.index, y0:y1, x0:x1], _alpha_plane(plan)
    unfiltered = libwebp.encode_still(rgb, alpha, 45, 4, loop_filter=False)
    assert unfiltered != libwebp.encode_still(rgb, alpha, 45, 4)
    assert _still_bitstream(rgb, alpha, 45, 4) in unfiltered  # the chunks of the file, as they are
    opaque = frames[plan.index]
    assert _still_bitstream(opaque, None, 45, 4) in libwebp.encode_still(opaque, None, 45, 4)  # opaque: filtered


@pytest.mark.parametrize("method", [1, 4])
def test_see_through_frames_cost_fewer_bytes_and_show_the_same_at_any_method(tmp_path, method):
    frames = corner_squares(detailed_background())
    data = encode_webp(frames, [100] * 8, method=method)
    opaque = encode_webp(frames, [100] * 8, method=method, see_through_threshold=None)
    assert len(data) < 0.6 * len(opaque)
    shown, opaque_shown = decode(data, tmp_path), decode(opaque, tmp_path)
    for (rgb, _), (opaque_rgb, _), source in zip(shown, opaque_shown, frames):
        assert psnr(rgb, source) > psnr(opaque_rgb, source) - 0.5


def test_block_views_of_a_crop_write_through_to_the_frame():
    """The canvas is updated block by block through a view of a crop of it: never a copy."""
    canvas = np.zeros((37, 45, 3), np.uint8)
    crop = canvas[3:30, 5:40]  # 27x35: 3x4 whole blocks, the rest partial
    view = _blocks(crop)
    assert view.shape == (3, 8, 4, 8, 3)
    view[1, :, 2] = 7
    assert (canvas[11:19, 21:29] == 7).all() and canvas.sum() == 7 * 64 * 3


@pytest.mark.skipif(clients.CHROMIUM is None, reason="headless Chromium is not installed")
def test_chromium_loads_an_animation_with_see_through_frames(tmp_path):
    frames = corner_squares(detailed_background())
    assert all(p.see_through is not None for p in plan_frames(frames, [100] * 8)[1:])
    (tmp_path / "s.webp").write_bytes(encode_webp(frames, [100] * 8))
    assert clients.load_in_chromium(tmp_path, ["s.webp"]) == {"s.webp": [160, 96]}


def test_without_libwebps_own_api_the_frames_are_coded_through_pillow(tmp_path, monkeypatch):
    """A Pillow with libwebp linked in statically: opaque frames come out the same, see-through
    ones with the loop filter on, and the file is as valid."""
    frames = corner_squares(detailed_background())
    direct = encode_webp(frames, [100] * 8)
    opaque = encode_webp(frames, [100] * 8, see_through_threshold=None)
    direct_available = libwebp.unavailable() is None
    monkeypatch.setattr(libwebp, "_library", lambda: (None, "linked in statically"))
    through_pillow = encode_webp(frames, [100] * 8)
    assert encode_webp(frames, [100] * 8, see_through_threshold=None) == opaque
    assert through_pillow != direct or not direct_available  # filter on: other bytes
    shown, shown_direct = decode(through_pillow, tmp_path), decode(direct, tmp_path)
    assert len(shown) == len(shown_direct) == 8
    for (rgb, _), (rgb_direct, _), source in zip(shown, shown_direct, frames):
        assert psnr(rgb, source) > psnr(rgb_direct, source) - 1


# --- the setting chosen by the footage ------------------------------------------------------


def grain(count: int = 6, h: int = 144, w: int = 256) -> np.ndarray:
    """A gradient under fresh noise in every frame: busy everywhere."""
    rng = np.random.default_rng(4)
    base = background(h, w).astype(np.int16)
    return np.stack([np.clip(base + rng.normal(0, 12, (h, w, 1)), 0, 255).astype(np.uint8) for _ in range(count)])


def shown_psnr(data: bytes, frames: np.ndarray, tmp_path) -> float:
    shown = decode(data, tmp_path)
    assert len(shown) == len(frames)
    return float(np.mean([psnr(image, frame) for (image, _), frame in zip(shown, frames)]))


def test_text_over_flat_ground_is_coded_with_libwebps_block_analysis():
    frames = text_page()
    assert detail_spread(frames) >= MIXED_DETAIL_SPREAD
    assert chosen_setting(frames) == MIXED_DETAIL_SETTING
    quality, method = MIXED_DETAIL_SETTING
    assert encode_webp(frames, [100] * 6) == encode_webp(frames, [100] * 6, quality=quality, method=method)


def test_footage_busy_all_over_keeps_the_fast_method():
    frames = grain()
    assert detail_spread(frames) < MIXED_DETAIL_SPREAD
    assert chosen_setting(frames) == (DEFAULT_QUALITY, DEFAULT_METHOD)
    assert encode_webp(frames, [100] * 6) == encode_webp(frames, [100] * 6, quality=DEFAULT_QUALITY,
                                                         method=DEFAULT_METHOD)


def test_one_flat_frame_at_the_start_does_not_decide():
    """Denser text (spread about 4.0): with one of the four sampled frames black, the median
    stays above the line, where a mean (about 2.9) would fall under it."""
    frames = text_page(count=8, density=0.25)
    spread = detail_spread(frames)
    assert MIXED_DETAIL_SPREAD <= spread < MIXED_DETAIL_SPREAD * 4 / 3
    frames[0] = 0  # a fade from black
    assert chosen_setting(frames) == MIXED_DETAIL_SETTING


def test_frames_smaller_than_a_macroblock_keep_the_fast_method():
    frames = text_page()[:, :12, :40]
    assert detail_spread(frames) == 0.0
    assert chosen_setting(frames) == (DEFAULT_QUALITY, DEFAULT_METHOD)


def test_a_quality_or_a_method_named_alone_keeps_the_other_default_or_chosen():
    frames = text_page()
    quality, method = MIXED_DETAIL_SETTING
    assert encode_webp(frames, [100] * 6, method=method) == encode_webp(frames, [100] * 6, quality=DEFAULT_QUALITY,
                                                                        method=method)
    assert encode_webp(frames, [100] * 6, quality=30) == encode_webp(frames, [100] * 6, quality=30, method=method)


def test_on_text_over_flat_ground_the_chosen_setting_beats_the_fast_method_at_the_same_bytes(tmp_path):
    frames = text_page()
    chosen = encode_webp(frames, [100] * 6)
    low, high, fast = 1, 100, None  # the fast method's highest quality within the chosen file's bytes
    while low <= high:
        quality = (low + high) // 2
        data = encode_webp(frames, [100] * 6, quality=quality, method=DEFAULT_METHOD)
        if len(data) <= len(chosen):
            fast, low = data, quality + 1
        else:
            high = quality - 1
    assert fast is not None
    assert shown_psnr(chosen, frames, tmp_path) >= shown_psnr(fast, frames, tmp_path) + 0.4
