"""Noise averaged out over time, where neighbouring frames nearly agree (kernels/denoise.py)."""

import pytest
import torch

from animated_previews.kernels import compiled, denoise_scan
from animated_previews.kernels.denoise import DENOISE_THRESHOLD, temporal_denoise


def still_scene_under_noise(frames: int = 12, height: int = 24, width: int = 32, sigma: float = 2.5,
                            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth still picture and the same picture filmed with sensor noise on every frame."""
    generator = torch.Generator().manual_seed(seed)
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    picture = torch.stack([100 + 3 * cols, 80 + 2 * rows, 120 + rows + cols]).float()
    noisy = picture + sigma * torch.randn((frames, 3, height, width), generator=generator)
    return picture, noisy.round().clamp(0, 255).to(torch.uint8)


def both_ways(frames: torch.Tensor, monkeypatch, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    looped = temporal_denoise(frames, **kwargs)
    monkeypatch.setattr(compiled, "ENABLED", False)
    tensor_ops = temporal_denoise(frames, **kwargs)
    monkeypatch.setattr(compiled, "ENABLED", True)
    return looped, tensor_ops


def test_noise_on_a_still_scene_is_averaged_out_and_the_picture_stays():
    picture, noisy = still_scene_under_noise()
    out = temporal_denoise(noisy)
    error_before = (noisy.float() - picture).pow(2).mean()
    error_after = (out.float() - picture).pow(2).mean()
    assert error_after < 0.4 * error_before  # five frames averaged: about a fifth away from the ends
    assert (out.float() - picture).mean().abs() < 0.3  # no drift of the picture itself
    flicker_before = (noisy[1:].float() - noisy[:-1].float()).abs().mean()
    flicker_after = (out[1:].float() - out[:-1].float()).abs().mean()
    assert flicker_after < 0.6 * flicker_before


def test_motion_past_the_threshold_is_left_exactly_as_it_was():
    """A bright bar sweeping over a dark still background: each pixel either never changes or
    changes by far more than the threshold, so nothing is averaged and no ghost trails the bar."""
    frames = torch.full((10, 3, 16, 40), 30, dtype=torch.uint8)
    for t in range(10):
        frames[t, :, 4:12, 3 * t:3 * t + 5] = 30 + DENOISE_THRESHOLD + 60
    assert torch.equal(temporal_denoise(frames), frames)


def test_a_steady_fade_keeps_its_levels_away_from_the_ends():
    """Two levels a frame brighter each frame: the window is symmetric in time, so the mean of a
    frame's neighbours is the frame itself; only the first and last two frames, whose windows are
    cut off, move towards the middle."""
    levels = torch.arange(50, 50 + 2 * 12, 2, dtype=torch.uint8)
    frames = levels.view(-1, 1, 1, 1).expand(12, 3, 8, 8).contiguous()
    out = temporal_denoise(frames)
    assert torch.equal(out[2:-2], frames[2:-2])
    assert (out[0] > frames[0]).all() and (out[-1] < frames[-1]).all()


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("radius, threshold", [(2, 10), (1, 4), (3, 255), (0, 10)])
def test_the_compiled_loop_and_the_tensor_kernel_give_the_same_bytes(monkeypatch, layout, radius, threshold):
    if denoise_scan.SCAN is None:
        pytest.skip("numba is not installed: only the tensor kernel runs")
    _, noisy = still_scene_under_noise(frames=11, height=9, width=13, sigma=6.0, seed=3)
    if layout == "channels_last":
        noisy = noisy.contiguous(memory_format=torch.channels_last)
    looped, tensor_ops = both_ways(noisy, monkeypatch, radius=radius, threshold=threshold)
    assert looped.shape == tensor_ops.shape == noisy.shape and looped.dtype == torch.uint8
    assert torch.equal(looped, tensor_ops)
    if radius == 0:
        assert torch.equal(looped, noisy)


def test_one_frame_has_nothing_to_average_with():
    _, noisy = still_scene_under_noise(frames=1)
    assert torch.equal(temporal_denoise(noisy), noisy)


@pytest.mark.parametrize("bad", [torch.zeros((2, 4, 4, 3), dtype=torch.uint8), torch.zeros((2, 3, 4, 4)),
                                 torch.zeros((3, 4, 4), dtype=torch.uint8)])
def test_frames_that_are_not_uint8_rgb_batches_are_refused(bad):
    with pytest.raises(ValueError, match="uint8"):
        temporal_denoise(bad)


@pytest.mark.gpu
def test_cuda_frames_give_the_bytes_the_cpu_gives():
    """The GIF byte budget denoises the job's frames where they were decoded: on a GPU node, CUDA
    tensors through the tensor kernel (the compiled loop runs on the host only)."""
    _, noisy = still_scene_under_noise(frames=20, height=72, width=96)
    cpu = temporal_denoise(noisy)
    gpu = temporal_denoise(noisy.cuda())
    assert gpu.device.type == "cuda"
    assert torch.equal(gpu.cpu(), cpu)
