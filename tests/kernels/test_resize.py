"""Antialiased resize of uint8 RGB frame batches."""

import pytest
import torch

import animated_previews.kernels.resize as resize_module
from animated_previews.kernels import sharpen_scan
from animated_previews.kernels.resize import SHARPEN, _resize_float, resize


def checkerboard(n: int, height: int, width: int) -> torch.Tensor:
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    board = ((rows + cols) % 2 * 255).to(torch.uint8)
    return board.expand(n, 3, height, width).contiguous()


def smooth_frames(n: int = 2, height: int = 48, width: int = 64, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand((n, 3, height // 8, width // 8), generator=generator) * 255
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear").round().to(torch.uint8)


def test_output_is_uint8_with_requested_shape_on_the_input_device():
    frames = smooth_frames(3, 40, 60)
    out = resize(frames, 21, 33)
    assert out.dtype == torch.uint8
    assert out.shape == (3, 3, 21, 33)
    assert out.device == frames.device


def test_matching_size_returns_the_input_itself():
    frames = smooth_frames()
    assert resize(frames, frames.shape[2], frames.shape[3]) is frames


def test_2x_downscale_of_a_pixel_checkerboard_is_flat_grey_not_aliased():
    out = resize(checkerboard(1, 64, 64), 32, 32).float()
    # Point sampling would give pure black or white; averaging gives 127.5 everywhere
    # (the corners, where the filter is cut off by the border, are within 3 levels).
    assert (out - 127.5).abs().max() <= 3


def test_flat_colour_stays_exactly_that_colour():
    frames = torch.empty((2, 3, 30, 50), dtype=torch.uint8)
    frames[:, 0], frames[:, 1], frames[:, 2] = 13, 200, 97
    for size in [(15, 25), (7, 11), (60, 100)]:
        out = resize(frames, *size)
        assert torch.equal(out[:, :, 0, 0].unique(), torch.tensor([13, 97, 200], dtype=torch.uint8))
        assert (out[:, 0] == 13).all() and (out[:, 1] == 200).all() and (out[:, 2] == 97).all()


def test_downscale_keeps_the_average_colour():
    frames = smooth_frames(2, 96, 128)
    out = resize(frames, 24, 32)
    assert torch.allclose(out.float().mean(dim=(2, 3)), frames.float().mean(dim=(2, 3)), atol=1.0)


def test_upscaling_a_hard_edge_clamps_overshoot_instead_of_wrapping():
    frames = torch.zeros((1, 3, 8, 8), dtype=torch.uint8)
    frames[..., 4:] = 255
    out = resize(frames, 32, 32)
    # Bicubic rings up to ~274 just right of the edge (columns 18-21) and down to ~-19
    # just left of it (columns 10-13); wrapped values would show up as dark pixels on the
    # white side and bright ones on the black side.
    assert out[..., 18:].min() == 255
    assert out[..., :14].max() == 0


def test_channels_last_and_contiguous_inputs_give_the_same_result():
    frames = smooth_frames(2, 64, 96)
    planar = resize(frames.contiguous(), 30, 40)
    nhwc = resize(frames.contiguous(memory_format=torch.channels_last), 30, 40)
    assert torch.equal(planar, nhwc)


def test_float_path_used_off_cpu_agrees_with_the_uint8_path():
    frames = smooth_frames(3, 72, 96)
    native = resize(frames, 36, 40, sharpen=False).int()
    fallback = _resize_float(frames, 36, 40).int()
    assert (native - fallback).abs().max() <= 2
    assert (native - fallback).abs().float().mean() < 0.2
    # sharpened, the uint8 path sharpens values already rounded once: still within 2 levels
    assert (resize(frames, 36, 40).int() - _resize_float(frames, 36, 40, SHARPEN).int()).abs().max() <= 2


def test_bicubic_antialias_is_close_to_pil_lanczos():
    pil = pytest.importorskip("PIL.Image")
    import numpy as np

    generator = torch.Generator().manual_seed(1)
    # Smooth content plus fine detail: the case where the resampling filter matters.
    frames = smooth_frames(1, 120, 160, seed=3).int() + torch.randint(-20, 21, (1, 3, 120, 160), generator=generator)
    frames = frames.clamp(0, 255).to(torch.uint8)
    ours = resize(frames, 60, 80)[0].permute(1, 2, 0).float()
    image = pil.fromarray(frames[0].permute(1, 2, 0).numpy())
    reference = torch.from_numpy(np.array(image.resize((80, 60), pil.LANCZOS))).float()
    psnr = 10 * torch.log10(255**2 / (ours - reference).square().mean())
    plain = resize(frames, 60, 80, sharpen=False)[0].permute(1, 2, 0).float()
    plain_psnr = 10 * torch.log10(255**2 / (plain - reference).square().mean())
    # bicubic 47.3 dB; bilinear would give 38.7 dB, no antialiasing 39.0 dB; sharpened closer still
    assert plain_psnr > 44 and psnr > plain_psnr + 0.5


def test_only_a_downscale_is_sharpened():
    frames = smooth_frames(1, 40, 60, seed=4)
    assert torch.equal(resize(frames, 80, 120), resize(frames, 80, 120, sharpen=False))
    assert torch.equal(resize(frames, 40, 30), resize(frames, 40, 30, sharpen=False))  # one side keeps its size
    assert not torch.equal(resize(frames, 20, 30), resize(frames, 20, 30, sharpen=False))


def test_empty_batch_resizes_to_an_empty_batch():
    out = resize(torch.zeros((0, 3, 10, 10), dtype=torch.uint8), 5, 5)
    assert out.shape == (0, 3, 5, 5) and out.dtype == torch.uint8


@pytest.mark.parametrize(
    "frames",
    [
        torch.zeros((1, 3, 8, 8), dtype=torch.int16),
        torch.zeros((1, 4, 8, 8), dtype=torch.uint8),
        torch.zeros((3, 8, 8), dtype=torch.uint8),
    ],
)
def test_anything_but_uint8_or_float_rgb_batches_is_rejected(frames):
    with pytest.raises(ValueError):
        resize(frames, 4, 4)


def test_float_frames_stay_float_and_match_the_uint8_kernel():
    """HDR frames are resized as float in [0, 1] before their tone map: same filter, no rounding."""
    generator = torch.Generator().manual_seed(1)
    frames = (torch.rand((2, 3, 40, 60), generator=generator) * 255).round().to(torch.uint8)
    as_float = resize(frames.float() / 255, 20, 30)
    assert as_float.dtype == torch.float32 and as_float.shape == (2, 3, 20, 30)
    # the uint8 kernel computes in fixed point, then rounds and saturates: within 1.5 levels
    assert (as_float.clamp(0, 1) * 255 - resize(frames, 20, 30).float()).abs().max() <= 1.5


def test_non_positive_target_size_is_rejected():
    with pytest.raises(ValueError):
        resize(smooth_frames(), 0, 10)


@pytest.mark.skipif(sharpen_scan.SCAN is None, reason="numba is not installed: the torch kernel is the only one")
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (37, 50), (130, 70)])
def test_the_compiled_sharpening_gives_the_torch_kernels_bytes(monkeypatch, layout, size):
    """Edges (one-pixel frames too), saturation both ways, bands of rows past the first."""
    generator = torch.Generator().manual_seed(size[0])
    frames = torch.randint(0, 256, (3, 3, *size), dtype=torch.uint8, generator=generator)
    frames[0, :, : size[0] // 2] = 255  # flat and saturated: stays exactly 255
    frames = frames.contiguous(memory_format=layout)
    compiled = resize_module._sharpened_bytes(frames, SHARPEN)
    monkeypatch.setattr(resize_module, "SCAN", None)
    plain = resize_module._sharpened_bytes(frames, SHARPEN)
    assert torch.equal(compiled, plain)
    assert not torch.equal(compiled, frames) or size == (1, 1)


def test_sharpening_every_frame_at_once_gives_what_one_by_one_gives(monkeypatch):
    """A GPU sharpens a chunk's frames together (a handful of operations, not a handful a frame)."""
    frames = torch.rand((7, 3, 30, 44), generator=torch.Generator().manual_seed(5)) * 255
    one_by_one = resize_module._sharpened(frames, SHARPEN)
    monkeypatch.setattr(resize_module, "launch_bound", lambda device: True)
    together = resize_module._sharpened(frames, SHARPEN)
    assert torch.equal(one_by_one, together)
    assert not torch.equal(together, frames)  # it did sharpen
