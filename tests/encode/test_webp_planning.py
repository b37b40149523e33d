"""The WebP planner's compiled loops (kernels/canvas_scan.py) plan every frame as its NumPy code does:
the same stored frames, boxes, durations and see-through blocks, on clips made to reach every branch
(changes at the edges and in the middle, drifts just under and over the thresholds, frames that do
not change, sizes that are not whole blocks)."""

from __future__ import annotations

import numpy as np
import pytest

from animated_previews.engine.encode import webp
from animated_previews.kernels import canvas_scan, compiled

pytestmark = pytest.mark.skipif(canvas_scan.SCAN_CHANGED_BOX is None,
                                reason="numba is not installed: the NumPy planner is the only one")


def _clip(seed: int) -> np.ndarray:
    """Frames of a random size, each the one before with a few of: a patch moved far, a patch
    drifted by up to 8 levels (either side of the thresholds), single pixels changed at the edges,
    nothing at all."""
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(1, 90)), int(rng.integers(1, 130))
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if rng.random() < 0.5:  # flat ground with detail on it, where see-through blocks pay
        frame[...] = rng.integers(0, 256, 3, dtype=np.uint8)
        frame[rng.random((height, width)) < 0.3] = 255
    frames = [frame]
    for _ in range(int(rng.integers(1, 12))):
        frame = frame.copy()
        for _ in range(int(rng.integers(0, 4))):
            y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
            y1, x1 = int(rng.integers(y0, height)) + 1, int(rng.integers(x0, width)) + 1
            patch = frame[y0:y1, x0:x1].astype(np.int16)
            if rng.random() < 0.5:
                patch += rng.integers(-8, 9, patch.shape, dtype=np.int16)
            else:
                patch = rng.integers(0, 256, patch.shape, dtype=np.int16)
            frame[y0:y1, x0:x1] = np.clip(patch, 0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(0, 3))):
            frame[int(rng.integers(0, height)), int(rng.choice([0, width - 1, rng.integers(0, width)]))] ^= 0x80
        frames.append(frame)
    return np.stack(frames)


def _plans(frames: np.ndarray, enabled: bool, monkeypatch: pytest.MonkeyPatch,
           **options: int | float | None) -> list[tuple]:
    monkeypatch.setattr(compiled, "ENABLED", enabled)
    return [(plan.box, plan.duration_ms, plan.index,
             None if plan.see_through is None else plan.see_through.tolist())
            for plan in webp.plan_frames(frames, list(range(40, 40 + len(frames))), **options)]


@pytest.mark.parametrize("seed", range(60))
def test_the_compiled_planner_plans_as_the_numpy_one(seed, monkeypatch):
    frames = _clip(seed)
    for options in ({}, {"see_through_threshold": None}, {"change_threshold": 0, "see_through_threshold": 0},
                    {"see_through_detail": 0.0}):
        assert _plans(frames, True, monkeypatch, **options) == _plans(frames, False, monkeypatch, **options)


def test_the_random_clips_reach_every_kind_of_plan(monkeypatch):
    """Without this the equality above could hold on clips that never leave a block see-through."""
    plans = [plan for seed in range(60) for plan in _plans(_clip(seed), True, monkeypatch)]
    boxes = [(box, index) for box, _, index, _ in plans if index > 0]
    assert any(see_through is not None for *_, see_through in plans)
    assert any(see_through is not None and not all(map(all, see_through)) for *_, see_through in plans)
    assert any(box[0] > 0 or box[1] > 0 for box, _ in boxes)  # boxes smaller than the frame
    assert any(duration > 40 + index for _, duration, index, _ in plans)  # frames that did not change


def test_a_change_in_the_middle_rows_widens_the_box_found_at_the_top_and_bottom():
    canvas = np.zeros((40, 64, 3), np.uint8)
    frame = canvas.copy()
    frame[5, 30], frame[30, 33], frame[17, 3], frame[20, 60] = 200, 200, 200, 200
    box = np.zeros(4, np.int64)
    assert canvas_scan.SCAN_CHANGED_BOX(frame.reshape(40, -1), canvas.reshape(40, -1), 6, box)
    assert box.tolist() == [2, 4, 61, 31]  # x0 and y0 rounded down to even
    assert not canvas_scan.SCAN_CHANGED_BOX(frame.reshape(40, -1), frame.reshape(40, -1).copy(), 6, box)


def test_painting_the_canvas_keeps_its_pixels_only_in_the_still_blocks():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (30, 45, 3), dtype=np.uint8)
    canvas = np.zeros_like(frame)
    still = np.array([[True, False, True, True], [False, True, False, False], [True, True, True, True]])
    canvas_scan.SCAN_PAINT_CANVAS(frame.reshape(30, -1), canvas.reshape(30, -1), 3, 2, 40, 30, still)
    expected = np.zeros_like(frame)
    expected[2:30, 3:40] = frame[2:30, 3:40]
    for r, c in zip(*np.nonzero(still)):
        expected[2 + 8 * r:10 + 8 * r, 3 + 8 * c:11 + 8 * c] = 0
    assert np.array_equal(canvas, expected)


def test_the_still_blocks_and_their_detail_are_the_numpy_planners():
    mixed: list[bool] = []
    for seed in range(20):
        _still_and_detail_against_numpy(seed, mixed)
    assert sum(mixed) >= 5  # cases with still and moving blocks side by side


def _still_and_detail_against_numpy(seed: int, mixed: list[bool]) -> None:
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(8, 70)), int(rng.integers(8, 90))
    canvas = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    spread = np.where((np.arange(height) // 16 % 2 == 0)[:, None, None], 4, 7)  # bands within the threshold and past it
    frame = np.clip(canvas + rng.integers(-7, 8, canvas.shape) % (spread + 1) * np.sign(rng.integers(-1, 2, canvas.shape)),
                    0, 255).astype(np.uint8)
    x0, y0 = int(rng.integers(0, width - 7)), int(rng.integers(0, height - 7))
    crop, region = frame[y0:, x0:], canvas[y0:, x0:]
    rows, cols = crop.shape[0] // 8, crop.shape[1] // 8
    still = np.empty((rows, cols), np.bool_)
    canvas_scan.SCAN_STILL_BLOCKS(frame.reshape(height, -1), canvas.reshape(height, -1), x0, y0, 5, still)
    assert np.array_equal(still, webp._still_blocks(crop, region, 5))
    mixed.append(bool(still.any()) and not bool(still.all()))
    detail = np.empty((rows, cols), np.int64)
    canvas_scan.SCAN_BLOCK_DETAIL(frame.reshape(height, -1), x0, y0, detail)
    assert np.array_equal(detail, webp._block_detail(crop))


def test_the_alpha_plane_clears_exactly_the_see_through_blocks_of_the_box():
    rng = np.random.default_rng(3)
    still = rng.random((5, 7)) < 0.5
    plan = webp.PlannedFrame((6, 4, 6 + 8 * 7 + 5, 4 + 8 * 5 + 3), 50, 1, still)  # partial blocks right and below
    expected = np.full((43, 61), 255, np.uint8)
    for r, c in zip(*np.nonzero(still)):
        expected[8 * r:8 * r + 8, 8 * c:8 * c + 8] = 0
    assert np.array_equal(webp._alpha_plane(plan), expected)
    assert webp._alpha_plane(webp.PlannedFrame((0, 0, 16, 16), 50, 0)) is None


def test_frames_not_in_c_order_are_planned_as_the_same_frames_in_c_order(monkeypatch):
    frames = _clip(7)
    strided = np.asfortranarray(frames)  # the same pixels, another layout (the loops read C-ordered rows)
    assert not strided.flags.c_contiguous
    assert _plans(strided, True, monkeypatch) == _plans(frames, True, monkeypatch) == _plans(strided, False, monkeypatch)


def test_read_only_frames_are_planned_and_coded_too():
    frames = _clip(11)
    frozen = frames.copy()
    frozen.flags.writeable = False
    assert webp.encode_webp(frozen, [40] * len(frames)) == webp.encode_webp(frames, [40] * len(frames))
