"""The hot path never reads tensor values back to the host.

On a GPU every such read (.item(), .tolist(), a Python ``if`` on a tensor, ...) stalls the
pipeline until all queued work is done. On CPU the same mistakes can be caught by making
those conversions raise while the kernels run.
"""

import pytest
import torch

from animated_previews.kernels import compiled
from animated_previews.kernels.colour import split_nv12, yuv420_to_rgb
from animated_previews.kernels.palette import median_cut_slots
from animated_previews.kernels.remap import remap
from animated_previews.kernels.resize import resize

HOST_READS = ["item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__"]


@pytest.fixture
def no_host_reads(monkeypatch):
    def forbid(name):
        def raiser(self, *args, **kwargs):
            raise AssertionError(f"host read-back via Tensor.{name} in a kernel")

        return raiser

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, forbid(name))
    # the compiled CPU loops (kernels/*_scan.py) take CPU arrays by design and are never taken
    # for GPU tensors, whose path these CPU tensors stand in for: run the torch kernels here
    monkeypatch.setattr(compiled, "ENABLED", False)


def frames():
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand((3, 3, 8, 10), generator=generator) * 255
    return torch.nn.functional.interpolate(coarse, size=(64, 80), mode="bilinear").round().to(torch.uint8)


def test_the_guard_itself_catches_a_host_read(no_host_reads):
    with pytest.raises(AssertionError):
        torch.ones(()).item()
    with pytest.raises(AssertionError):
        bool(torch.ones(()) > 0)


def test_resize_palette_and_remap_run_without_host_reads(no_host_reads):
    clip = frames()
    small = resize(clip, 32, 40)
    resize(clip.float() / 255, 32, 40)
    palette, valid = median_cut_slots(small, max_colours=64)
    indices = remap(small, palette)
    remap(small, palette, dither_strength=0)
    assert indices.shape == (3, 32, 40)  # shapes are host metadata: allowed


def test_colour_conversion_runs_without_host_reads(no_host_reads):
    surfaces = torch.randint(0, 256, (2, 24, 20), dtype=torch.uint8)  # two 20x16 NV12 pictures
    for chroma in ("nearest", "bilinear"):
        rgb = yuv420_to_rgb(*split_nv12(surfaces, 16), matrix="bt709", full_range=False, chroma=chroma)
        assert rgb.shape == (2, 3, 16, 20)
    deep = torch.randint(0, 1 << 15, (2, 24, 20), dtype=torch.int16)
    yuv420_to_rgb(*split_nv12(deep, 16), matrix="bt2020", full_range=True)


def test_hdr_tone_mapping_runs_without_host_reads(no_host_reads):
    from animated_previews.kernels.tonemap import hdr_to_sdr

    signal = torch.randint(0, 65536, (2, 3, 8, 10), dtype=torch.int32)
    for transfer in ("pq", "hlg"):
        assert hdr_to_sdr(signal, transfer).shape == (2, 3, 8, 10)
