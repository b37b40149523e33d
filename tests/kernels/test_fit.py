"""Fit modes on synthetic tensors: where cover crops, where pad puts its bars, exact sizes."""

from __future__ import annotations

import pytest
import torch

from animated_previews.engine.spec import FIT_MODES as SPEC_FIT_MODES
from animated_previews.kernels.fit import (FIT_MODES, contained_size, cover_crop, fill_outside, fit, pad,
                                           pad_placement)
from animated_previews.kernels import compiled
from animated_previews.kernels.resize import resize

RED, GREEN, BLUE, MAGENTA = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 0, 255)


def bands(height: int, width: int, *, across: bool, edge: int, n: int = 2) -> torch.Tensor:
    """Green frames with a red band (``edge`` pixels) at the left/top and a blue one at the
    right/bottom: across=True puts them left and right, else top and bottom."""
    frames = torch.empty((n, 3, height, width), dtype=torch.uint8)
    paint(frames, GREEN)
    if across:
        paint(frames[..., :edge], RED)
        paint(frames[..., width - edge:], BLUE)
    else:
        paint(frames[..., :edge, :], RED)
        paint(frames[..., height - edge:, :], BLUE)
    return frames


def paint(frames: torch.Tensor, colour) -> None:
    for channel, value in enumerate(colour):
        frames[:, channel] = value


def is_colour(pixels: torch.Tensor, colour) -> bool:
    """Every pixel of [N, 3, h, w] is exactly ``colour``."""
    return pixels.numel() > 0 and all(bool((pixels[:, c] == v).all()) for c, v in enumerate(colour))


def test_the_kernel_and_the_spec_know_the_same_modes():
    assert FIT_MODES == tuple(SPEC_FIT_MODES) == ("fill", "contain", "cover", "pad")


# -- sizes -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("display, box, expected", [
    ((320, 240), (200, 200), (200, 150)),      # wider than the box: width limits
    ((240, 320), (200, 200), (150, 200)),      # taller: height limits
    ((1920, 1080), (333, 333), (333, 187)),    # 187.3125
    ((4, 3), (101, 101), (101, 76)),           # 75.75
    ((1080, 1920), (333, 200), (112, 200)),    # 112.5: Python's round, a half to the even neighbour
    ((1000, 3), (7, 7), (7, 1)),               # 0.021: at least one pixel
    ((640, 360), (320, 180), (320, 180)),      # the same aspect: the box itself
    ((3, 1000), (640, 480), (1, 480)),         # 1.44
])
def test_contained_size_keeps_the_aspect_with_the_limiting_side_exact(display, box, expected):
    assert contained_size(*display, *box) == expected


def test_contained_size_is_the_one_side_rule_on_the_limiting_side():
    for display in [(320, 240), (1920, 1080), (720, 1280), (353, 97), (97, 353)]:
        for box in [(200, 200), (333, 125), (64, 480)]:
            width, height = contained_size(*display, *box)
            by_width = (box[0], max(1, round(box[0] * display[1] / display[0])))
            by_height = (max(1, round(box[1] * display[0] / display[1])), box[1])
            assert (width, height) in (by_width, by_height)
            assert width <= box[0] and height <= box[1]


@pytest.mark.parametrize("frame, box, display, expected", [
    ((320, 240), (200, 200), None, (40, 0, 240, 240)),
    ((240, 320), (200, 200), None, (0, 40, 240, 240)),
    ((1920, 1080), (100, 100), None, (420, 0, 1080, 1080)),
    ((101, 50), (50, 50), None, (25, 0, 50, 50)),          # 51 cut: 25 left, 26 right
    ((40, 40), (40, 40), (80, 40), (10, 0, 20, 40)),      # square pixels shown twice as wide: the middle half
    ((320, 240), (320, 240), None, (0, 0, 320, 240)),      # the same aspect: nothing cut
    ((1000, 1), (1, 1000), None, (499, 0, 1, 1)),          # at least one pixel, (1000 - 1) // 2 from the left
])
def test_cover_crop_is_centred_in_the_frames_pixels(frame, box, display, expected):
    assert cover_crop(*frame, *box, display) == expected


@pytest.mark.parametrize("display, box, expected", [
    ((320, 240), (200, 200), (0, 25, 200, 150)),
    ((240, 320), (200, 200), (25, 0, 150, 200)),
    ((3, 1), (10, 6), (0, 1, 10, 3)),      # 3 rows left over: 1 above, 2 below
    ((1, 3), (6, 10), (1, 0, 3, 10)),      # 3 columns left over: 1 left, 2 right
])
def test_pad_placement_centres_the_picture_with_the_odd_pixel_right_or_below(display, box, expected):
    assert pad_placement(*display, *box) == expected


@pytest.mark.parametrize("frame_hw, box_hw", [((240, 320), (200, 200)), ((97, 353), (61, 59)), ((353, 97), (33, 200)),
                                               ((31, 17), (5, 9)), ((1080, 1920), (125, 333))])
def test_exact_output_shapes_for_odd_aspect_ratios(frame_hw, box_hw):
    frames = torch.randint(0, 256, (2, 3, *frame_hw), dtype=torch.uint8)
    height, width = box_hw
    for mode in ("fill", "cover", "pad"):
        assert fit(frames, height, width, mode).shape == (2, 3, height, width), mode
    inner_width, inner_height = contained_size(frame_hw[1], frame_hw[0], width, height)
    assert fit(frames, height, width, "contain").shape == (2, 3, inner_height, inner_width)


# -- where cover crops and where pad puts bars ---------------------------------------------------------

def test_cover_cuts_the_side_bands_of_a_wide_frame_and_keeps_only_the_middle():
    frames = bands(40, 80, across=True, edge=20)  # red | 40 green | blue
    out = fit(frames, 20, 20, "cover")
    assert out.shape == (2, 3, 20, 20)
    assert is_colour(out, GREEN)  # cropped before resizing: not even a tinge of red or blue at the edges


def test_cover_cuts_the_top_and_bottom_bands_of_a_tall_frame():
    frames = bands(80, 40, across=False, edge=20)
    assert is_colour(fit(frames, 30, 30, "cover"), GREEN)


def test_cover_keeps_what_is_just_inside_the_crop():
    frames = bands(40, 80, across=True, edge=21)  # one red and one blue column stay inside the middle 40
    out = fit(frames, 40, 40, "cover")
    assert is_colour(out[..., :1], RED) and is_colour(out[..., -1:], BLUE) and is_colour(out[..., 1:-1], GREEN)


def test_cover_with_non_square_pixels_crops_in_display_units():
    frames = bands(40, 40, across=True, edge=10)  # 40x40 pixels shown 80x40: the bands are 20 shown wide
    assert is_colour(fit(frames, 20, 20, "cover", display=(80, 40)), GREEN)


def test_pad_puts_bars_of_the_colour_above_and_below_a_wide_picture():
    frames = torch.empty((2, 3, 40, 80), dtype=torch.uint8)
    paint(frames, GREEN)
    out = fit(frames, 40, 40, "pad", pad_colour=MAGENTA)  # the picture is 40x20 at row 10
    assert out.shape == (2, 3, 40, 40)
    assert is_colour(out[..., :10, :], MAGENTA) and is_colour(out[..., 30:, :], MAGENTA)
    assert is_colour(out[..., 10:30, :], GREEN)


def test_pad_puts_bars_left_and_right_of_a_tall_picture_and_the_odd_column_on_the_right():
    frames = torch.empty((1, 3, 30, 10), dtype=torch.uint8)
    paint(frames, BLUE)
    out = fit(frames, 10, 6, "pad", pad_colour=(1, 2, 3))  # 10 high: picture 3x10 at column 1 (1 left, 2 right)
    assert is_colour(out[..., :1], (1, 2, 3)) and is_colour(out[..., 4:], (1, 2, 3))
    assert is_colour(out[..., 1:4], BLUE)


def test_pad_keeps_the_whole_picture_border_included():
    frames = bands(40, 80, across=True, edge=10)
    out = fit(frames, 40, 40, "pad")  # 80x40 -> 40x20: the 10-pixel bands become 5 wide
    picture = out[..., 10:30, :]
    # the bands' outer columns, which the Lanczos window (6 source pixels each side at this
    # shrink) fills with the band's colour alone; the next two ring by a level from the green
    assert is_colour(picture[..., :2], RED) and is_colour(picture[..., -2:], BLUE)
    assert (picture[..., :4].int() - torch.tensor(RED).view(1, 3, 1, 1)).abs().max() <= 2
    assert (picture[..., -4:].int() - torch.tensor(BLUE).view(1, 3, 1, 1)).abs().max() <= 2
    assert is_colour(out[..., :10, :], (0, 0, 0))  # black by default


def test_pad_of_a_picture_already_the_box_shape_has_no_bars():
    frames = torch.randint(0, 256, (1, 3, 30, 40), dtype=torch.uint8)
    assert torch.equal(fit(frames, 30, 40, "pad", pad_colour=MAGENTA), frames)


def test_contain_and_fill_are_resizes():
    frames = bands(40, 80, across=True, edge=10)
    assert torch.equal(fit(frames, 40, 40, "contain"), resize(frames, 20, 40))
    assert torch.equal(fit(frames, 40, 40, "fill"), resize(frames, 40, 40))


def test_float_frames_get_the_colour_scaled_to_one():
    frames = torch.full((1, 3, 20, 40), 0.5)
    out = fit(frames, 20, 20, "pad", pad_colour=(255, 0, 51))
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.2]))
    assert torch.allclose(out[0, :, 10, 10], torch.tensor([0.5, 0.5, 0.5]))


def test_a_cover_crop_needing_no_resize_is_copied_not_a_view_of_the_source():
    frames = torch.randint(0, 256, (1, 3, 40, 80), dtype=torch.uint8)
    out = fit(frames, 40, 40, "cover")
    assert torch.equal(out, frames[..., 20:60])
    assert out.untyped_storage().data_ptr() != frames.untyped_storage().data_ptr()


def test_pad_keeps_channels_last_frames_channels_last():
    frames = torch.randint(0, 256, (2, 3, 40, 80), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    out = pad(frames, 60, 80, 0, 10, RED)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out[..., 10:50, :], frames) and is_colour(out[..., :10, :], RED)


def test_fill_outside_repaints_in_place():
    frames = torch.zeros((1, 3, 10, 10), dtype=torch.uint8)
    assert fill_outside(frames, 2, 3, 5, 4, MAGENTA) is frames
    assert is_colour(frames[..., 3:7, 2:7], (0, 0, 0))
    assert is_colour(frames[..., :3, :], MAGENTA) and is_colour(frames[..., 7:, :], MAGENTA)
    assert is_colour(frames[..., :, :2], MAGENTA) and is_colour(frames[..., :, 7:], MAGENTA)


@pytest.mark.parametrize("call, words", [
    (lambda f: fit(f, 10, 10, "zoom"), "fill, contain, cover, pad"),
    (lambda f: fit(f, 0, 10, "pad"), "positive"),
    (lambda f: fit(f, 10, 10, "pad", pad_colour=(256, 0, 0)), "0-255"),
    (lambda f: fit(f[0], 10, 10, "pad"), "[N, 3, H, W]"),
    (lambda f: pad(f, 10, 10, 5, 0, RED), "does not fit"),
])
def test_bad_arguments_are_refused(call, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        call(torch.zeros((1, 3, 10, 10), dtype=torch.uint8))


def test_no_mode_reads_a_value_back_to_the_host(monkeypatch):
    frames = torch.randint(0, 256, (2, 3, 48, 64), dtype=torch.uint8)
    floats = frames.float() / 255

    def forbid(name):
        def raiser(self, *args, **kwargs):
            raise AssertionError(f"host read-back via Tensor.{name} in a kernel")
        return raiser

    for name in ["item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__"]:
        monkeypatch.setattr(torch.Tensor, name, forbid(name))
    # the compiled CPU loops take arrays by design and never run on GPU tensors, whose path these
    # CPU tensors stand in for
    monkeypatch.setattr(compiled, "ENABLED", False)
    for mode in FIT_MODES:
        assert fit(frames, 30, 30, mode, pad_colour=RED).shape[-1] == 30
        assert fit(floats, 30, 30, mode, pad_colour=RED).shape[-1] == 30


@pytest.mark.gpu
def test_cuda_frames_give_the_cpu_result():
    frames = bands(90, 160, across=True, edge=30, n=3)
    for mode in FIT_MODES:
        cpu = fit(frames, 64, 64, mode, pad_colour=MAGENTA)
        gpu = fit(frames.cuda(), 64, 64, mode, pad_colour=MAGENTA)
        assert gpu.device.type == "cuda" and gpu.shape == cpu.shape, mode
        assert (gpu.cpu().int() - cpu.int()).abs().max() <= 2, mode  # the float path rounds once more
    out = fit(frames.cuda(), 64, 64, "pad", pad_colour=MAGENTA).cpu()
    assert is_colour(out[..., :14, :], MAGENTA) and is_colour(out[..., 50:, :], MAGENTA)
    assert is_colour(fit(frames.cuda(), 64, 64, "cover").cpu(), GREEN)
