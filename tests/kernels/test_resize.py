"""Antialiased Lanczos resize of uint8 RGB frame batches, float frames and float planes."""

import numpy as np
import pytest
import torch

import clipmaker

from animated_previews.kernels import compiled, lanczos_scan
from animated_previews.kernels.lanczos_scan import FRACTION_BITS
from animated_previews.kernels.resize import LOBES, resize, resize_planes, taps

needs_numba = pytest.mark.skipif(lanczos_scan.SCAN_BYTES is None,
                                 reason="numba is not installed: the torch kernel is the only one")


def checkerboard(n: int, height: int, width: int) -> torch.Tensor:
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    board = ((rows + cols) % 2 * 255).to(torch.uint8)
    return board.expand(n, 3, height, width).contiguous()


def smooth_frames(n: int = 2, height: int = 48, width: int = 64, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand((n, 3, max(1, height // 8), max(1, width // 8)), generator=generator) * 255
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear").round().to(torch.uint8)


def detailed_frames(n: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Smooth colour plus fine detail (noise of +-40 levels and one-pixel lines): the case where
    the resampling filter matters."""
    generator = torch.Generator().manual_seed(seed)
    frames = smooth_frames(n, height, width, seed).int() + torch.randint(-40, 41, (n, 3, height, width), generator=generator)
    frames[..., ::7, :] = 250
    frames[..., :, ::5] = 10
    return frames.clamp(0, 255).to(torch.uint8)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return clipmaker.psnr(a.numpy(), b.numpy())


def pillow_lanczos(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    image = pytest.importorskip("PIL.Image")
    out = [np.asarray(image.fromarray(f.permute(1, 2, 0).numpy()).resize((width, height), image.Resampling.LANCZOS))
           for f in frames]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


def torch_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the torch kernel (what GPU tensors and a CPU without numba take) on CPU tensors."""
    monkeypatch.setattr(compiled, "ENABLED", False)


# --- what a resize is ---------------------------------------------------------------------------


def test_output_is_uint8_with_requested_shape_on_the_input_device():
    frames = smooth_frames(3, 40, 60)
    out = resize(frames, 21, 33)
    assert out.dtype == torch.uint8
    assert out.shape == (3, 3, 21, 33)
    assert out.device == frames.device


def test_matching_size_returns_the_input_itself():
    frames = smooth_frames()
    assert resize(frames, frames.shape[2], frames.shape[3]) is frames
    planes = frames.float()
    assert resize_planes(planes, planes.shape[2], planes.shape[3]) is planes


def test_2x_downscale_of_a_pixel_checkerboard_is_flat_grey_not_aliased():
    out = resize(checkerboard(1, 64, 64), 32, 32).float()
    # Point sampling would give pure black or white; the stretched window averages to 127.5,
    # within a level but in the corners, where the window is cut on two sides (3.5 levels off)
    off = (out - 127.5).abs()
    off[..., [0, 0, -1, -1], [0, -1, 0, -1]] = 0
    assert off.max() <= 1
    assert (out - 127.5).abs().max() <= 4


def test_flat_colour_stays_exactly_that_colour():
    """Each output's fixed-point weights sum to exactly 2^14: no drift, up or down."""
    frames = torch.empty((2, 3, 30, 50), dtype=torch.uint8)
    frames[:, 0], frames[:, 1], frames[:, 2] = 13, 200, 97
    for size in [(15, 25), (7, 11), (60, 100), (1, 1), (30, 7)]:
        out = resize(frames, *size)
        assert (out[:, 0] == 13).all() and (out[:, 1] == 200).all() and (out[:, 2] == 97).all()
        floats = resize(frames.float() / 255, *size) * 255
        assert (floats - out.float()).abs().max() < 1e-3


def test_downscale_keeps_the_average_colour():
    frames = smooth_frames(2, 96, 128)
    out = resize(frames, 24, 32)
    assert torch.allclose(out.float().mean(dim=(2, 3)), frames.float().mean(dim=(2, 3)), atol=1.0)


def test_upscaling_a_hard_edge_clamps_overshoot_instead_of_wrapping():
    frames = torch.zeros((1, 3, 8, 8), dtype=torch.uint8)
    frames[..., 4:] = 255
    out = resize(frames, 32, 32)
    floats = resize(frames.float() / 255, 32, 32)  # floats keep the overshoot (HDR codes before the tone map)
    # Lanczos rings up to ~285 just right of the edge (columns 18-21) and down to ~-30 just left
    # of it (columns 10-13); wrapped, those would be dark pixels on the white side and bright
    # ones on the black side.
    assert floats[..., 18:21].min() > 1.05 and floats[..., 10:14].max() < -0.02
    assert out[..., 18:22].min() == 255 and out[..., 10:14].max() == 0
    assert out[..., 18:].min() > 240 and out[..., :14].max() < 10  # the next lobe's ring, as Pillow's


def test_channels_last_and_contiguous_inputs_give_the_same_result():
    frames = smooth_frames(2, 64, 96)
    planar = resize(frames.contiguous(), 30, 40)
    nhwc = resize(frames.contiguous(memory_format=torch.channels_last), 30, 40)
    assert torch.equal(planar, nhwc)


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


def test_non_positive_target_size_is_rejected():
    with pytest.raises(ValueError):
        resize(smooth_frames(), 0, 10)
    with pytest.raises(ValueError):
        resize_planes(smooth_frames().float(), 10, 0)


# --- the filter: Lanczos-3, as the tools previews are judged by compute it -------------------------


def exact_lanczos(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The filter written out in float64 as matrices (Pillow's windows: centres at (o + 0.5) x
    scale, three lobes stretched by the shrink factor, weights normalised inside the picture),
    rounded once at the end."""

    def matrix(source: int, target: int) -> torch.Tensor:
        scale = source / target
        stretch = max(scale, 1.0)
        out = torch.zeros((target, source), dtype=torch.float64)
        for o in range(target):
            centre = (o + 0.5) * scale
            low = max(int(centre - LOBES * stretch + 0.5), 0)
            high = min(int(centre + LOBES * stretch + 0.5), source)
            x = (torch.arange(low, high, dtype=torch.float64) - centre + 0.5) / stretch
            weights = torch.where(x.abs() < LOBES, torch.sinc(x) * torch.sinc(x / LOBES), torch.zeros_like(x))
            out[o, low:high] = weights / weights.sum()
        return out

    rows, cols = matrix(frames.shape[-2], height), matrix(frames.shape[-1], width)
    return (rows @ frames.double() @ cols.T).round().clamp(0, 255)


@pytest.mark.parametrize("source,target", [((120, 160), (60, 80)), ((360, 640), (270, 480)),
                                           ((216, 384), (54, 96)), ((40, 60), (90, 130))])
def test_lanczos_to_within_a_level_and_far_closer_to_pillows_than_bicubic(source, target):
    """Shrinking by 2, by 4/3 (640 -> 480), by 4, and enlarging: within a level of the filter
    computed exactly; within 0.3 levels on average of Pillow's ``LANCZOS`` on milder detail (Pillow
    rounds and clips between its two passes: 1-1.2 levels on average on the detailed frames,
    13 levels at some one-pixel lines, where the overshoot it clips is large); torch's antialiased
    bicubic, the kernel before this one, is 6 dB or more further from Pillow's."""
    frames = detailed_frames(2, *source, seed=sum(source))
    ours = resize(frames, *target)
    assert (ours.double() - exact_lanczos(frames, *target)).abs().max() <= 1
    frames = (smooth_frames(2, *source, seed=1).int() + torch.randint(-12, 13, frames.shape)).clamp(0, 255).to(torch.uint8)
    ours = resize(frames, *target)  # on milder detail, where Pillow's clipping seldom acts
    reference = pillow_lanczos(frames, *target)
    bicubic = torch.nn.functional.interpolate(frames, size=target, mode="bicubic", antialias=True)
    assert (ours.int() - reference.int()).abs().float().mean() < 0.3
    assert psnr(ours, reference) > psnr(bicubic, reference) + 6


def test_the_taps_sum_to_one_and_stay_inside_the_source():
    for source, target in [(1920, 480), (640, 480), (360, 270), (8, 32), (5, 1), (1, 7), (100, 99)]:
        found = taps(source, target)
        count = found.fixed.shape[1]
        assert (found.fixed.sum(dim=1) == 1 << FRACTION_BITS).all()
        assert torch.allclose(found.weights.sum(dim=1), torch.ones(target), atol=1e-5)
        assert (found.starts >= 0).all() and (found.starts + count <= source).all()


def test_the_fixed_point_sums_cannot_overflow():
    """The row pass's int32 sums are bounded by 255 x 2^7 x 2^14 x (the weights' sizes summed)^2
    (kernels/lanczos_scan.py MIDDLE_BITS): at most 1.57 a window, where the edge cuts it at tiny
    sizes; and the worst picture for it, stripes that every weight's sign meets at its extreme,
    comes out as the exact filter does."""
    sizes = list(range(1, 40)) + [270, 360, 480, 540, 1080, 1920]
    worst = max(taps(s, t).fixed.abs().sum(dim=1).max().item() for s in sizes for t in sizes) / (1 << FRACTION_BITS)
    assert worst <= 1.6
    assert 255 * (1 << 7) * (1 << FRACTION_BITS) * worst**2 < 2**31
    for source, target in [(4, 5), (5, 7), (3, 4), (9, 4)]:
        stripes = (torch.arange(source) % 2 * 255).to(torch.uint8)
        frames = (stripes.view(1, 1, 1, -1) ^ stripes.view(1, 1, -1, 1)).expand(1, 3, source, source).contiguous()
        assert (resize(frames, target, target).double() - exact_lanczos(frames, target, target)).abs().max() <= 1


def test_the_window_is_three_lobes_stretched_by_the_shrink_factor():
    assert taps(1920, 480).fixed.shape[1] == 2 * LOBES * 4  # 24 source pixels an output
    assert taps(32, 64).fixed.shape[1] <= 2 * LOBES  # enlarging: three lobes each side, unstretched
    keep = taps(50, 50)  # an axis that keeps its size: one tap of weight one (the zero taps dropped)
    assert keep.fixed.shape[1] == 1 and torch.equal(keep.starts, torch.arange(50, dtype=torch.int32))


# --- the compiled loops and the torch kernel ------------------------------------------------------


@needs_numba
@pytest.mark.parametrize("source,target", [((37, 50), (20, 30)), ((36, 40), (72, 88)), ((30, 40), (30, 13)),
                                           ((1, 9), (3, 4)), ((9, 1), (2, 1)), ((64, 96), (1, 1)),
                                           ((108, 192), (27, 48)), ((30, 20), (45, 10))])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_compiled_loop_gives_the_torch_kernels_bytes(monkeypatch, source, target, layout):
    """Integer sums do not depend on their order: a GPU's bytes are the CPU's. Shrinking, enlarging,
    one axis each way, one-pixel sources and targets, saturation both ways."""
    frames = detailed_frames(3, *source, seed=source[0]).contiguous(memory_format=layout)
    frames[0, :, : source[0] // 2] = 255
    compiled_bytes = resize(frames, *target)
    torch_kernel(monkeypatch)
    torch_bytes = resize(frames, *target)
    assert torch.equal(compiled_bytes.contiguous(), torch_bytes.contiguous())


@needs_numba
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_the_compiled_float_loop_gives_the_torch_kernels_values(monkeypatch, channels):
    generator = torch.Generator().manual_seed(channels)
    planes = torch.rand((2, channels, 45, 70), generator=generator) * 1.2 - 0.1
    for target in [(20, 33), (90, 101), (45, 12)]:
        compiled_values = resize_planes(planes, *target)
        with monkeypatch.context() as patch:
            torch_kernel(patch)
            torch_values = resize_planes(planes, *target)
        assert (compiled_values - torch_values).abs().max() < 1e-5


def test_float_frames_are_the_uint8_resize_without_its_rounding():
    """HDR frames are resized as float in [0, 1] before their tone map: the same filter."""
    frames = detailed_frames(2, 40, 60, seed=1)
    as_float = resize(frames.float() / 255, 20, 30)
    assert as_float.dtype == torch.float32 and as_float.shape == (2, 3, 20, 30)
    # the uint8 kernel keeps 7 fractional bits between its passes, then rounds: within a level
    assert (as_float.clamp(0, 1) * 255 - resize(frames, 20, 30).float()).abs().max() <= 1.0


def test_the_torch_kernel_works_in_chunks_of_frames_with_the_same_result(monkeypatch):
    from animated_previews.kernels import resize as resize_module

    frames = detailed_frames(5, 30, 40, seed=9)
    torch_kernel(monkeypatch)
    whole = resize(frames, 12, 17)
    monkeypatch.setattr(resize_module, "_CHUNK_VALUES", 1)  # one frame a chunk
    assert torch.equal(resize(frames, 12, 17), whole)


@pytest.mark.gpu
def test_cuda_frames_give_the_cpu_loops_bytes():
    """A GPU node's frames go through the torch kernel: the same integers, so the same bytes as the
    CPU's compiled loop; float planes within float rounding."""
    frames = detailed_frames(4, 216, 384, seed=7)
    for target in [(54, 96), (162, 288), (300, 500)]:
        gpu = resize(frames.cuda(), *target)
        assert gpu.device.type == "cuda"
        assert torch.equal(gpu.cpu().contiguous(), resize(frames, *target).contiguous())
        planes = frames.float() / 255
        assert (resize_planes(planes.cuda(), *target).cpu() - resize_planes(planes, *target)).abs().max() < 1e-5
