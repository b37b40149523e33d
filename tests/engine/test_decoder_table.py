"""One seam for decode backends: ``engine.decode.open_decoder`` builds each backend from its table
entry, and only ``engine.decode.nvdec_caps`` imports PyNvVideoCodec (``engine.device`` asks it only
once a GPU choice is asked)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import clipmaker
from animated_previews.engine.decode import BACKENDS, open_decoder
from animated_previews.engine.decode.nvdec import NvdecDecoder
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.probe import probe

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_table_names_the_backends_device_choices_carry():
    assert set(BACKENDS) == {"pyav", "nvdec"}


def test_open_decoder_pyav_is_a_working_cpu_decoder(tmp_path):
    path = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=50, width=160, height=120, gop=10)
    decoder = open_decoder("pyav", threads=3)
    assert isinstance(decoder, PyAVDecoder) and decoder.name == "pyav" and decoder.threads == 3
    instants = [0.52 + k / 10 for k in range(8)]
    clip = decoder.decode_frames(probe(path), instants)
    assert clip.frames.device.type == "cpu" and clip.frames.dtype == torch.uint8
    assert (clip.width, clip.height) == (160, 120)
    frames = clip.frames.permute(0, 2, 3, 1).numpy()
    assert [clipmaker.read_index(frames[i]) for i in clip.index.tolist()] == [math.floor(t * 25 + 1e-6) for t in instants]


def test_open_decoder_pyav_defaults_to_one_thread():
    assert open_decoder("pyav").threads == 1


@pytest.mark.parametrize("device,gpu", [("cuda:0", 0), ("cuda:2", 2), ("cuda", 0)])
def test_open_decoder_nvdec_decodes_on_the_gpu_it_is_given(device, gpu):
    decoder = open_decoder("nvdec", device=device)  # builds the adapter only: CUDA is touched when it decodes
    assert isinstance(decoder, NvdecDecoder) and decoder.name == "nvdec"
    assert decoder.gpu == gpu and decoder.device == torch.device("cuda", gpu)


@pytest.mark.parametrize("backend", ["ffmpeg", "NVDEC", "", "cpu"])
def test_an_unknown_backend_is_refused_by_name(backend):
    with pytest.raises(ValueError) as err:
        open_decoder(backend)
    assert f"unknown decode backend {backend!r}" in str(err.value) and "nvdec, pyav" in str(err.value)


@pytest.mark.parametrize("backend,device", [("pyav", "cuda:0"), ("nvdec", "cpu"), ("nvdec", "cuda:x")])
def test_a_device_the_backend_does_not_decode_on_is_refused(backend, device):
    with pytest.raises(ValueError, match=f"the {backend} backend decodes on"):
        open_decoder(backend, device=device)


POISONED = textwrap.dedent("""
    import json, sys

    attempts = []

    class Poison:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "PyNvVideoCodec":
                attempts.append(name)
                raise ImportError("poisoned PyNvVideoCodec")
            return None

    sys.modules.pop("PyNvVideoCodec", None)
    sys.meta_path.insert(0, Poison())

    import animated_previews.engine.decode
    import animated_previews.engine.device as device
    out = {"torch_on_import": "torch" in sys.modules, "caps_on_import": "animated_previews.engine.decode.nvdec_caps" in sys.modules}
    import animated_previews.engine.doctor  # imports engine.decode.nvdec_caps, which must not import PyNvVideoCodec either
    from animated_previews.engine.doctor import typical_video

    out["on_import"] = list(attempts)
    out["torch_after_doctor"] = "torch" in sys.modules
    device.cuda_status = lambda: device.CudaStatus(False, "torch.cuda.is_available() is False")
    out["cpu"] = device.choose_device("cpu", typical_video()).reason
    out["no_cuda"] = device.choose_device("auto", typical_video()).reason
    out["before_gpu_choice"] = list(attempts)
    device.cuda_status = lambda: device.CudaStatus(True, "", ("NVIDIA H100 80GB HBM3",), "12.8")
    out["gpu_choice"] = device.choose_device("auto", typical_video()).reason
    out["after_gpu_choice"] = list(attempts)
    print(json.dumps(out))
""")


def test_engine_device_leaves_pynvvideocodec_alone_until_a_gpu_choice_is_asked():
    done = subprocess.run([sys.executable, "-c", POISONED], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["torch_on_import"] is False and out["caps_on_import"] is False
    assert out["on_import"] == [] and out["torch_after_doctor"] is False
    assert out["cpu"] == "--device cpu"
    assert out["no_cuda"] == "no CUDA device (torch.cuda.is_available() is False)"
    assert out["before_gpu_choice"] == []
    assert out["gpu_choice"] == "PyNvVideoCodec cannot be imported (ImportError: poisoned PyNvVideoCodec)"
    assert out["after_gpu_choice"] == ["PyNvVideoCodec"]


def test_only_nvdec_caps_imports_pynvvideocodec():
    """No other module of engine/ or cli/ names PyNvVideoCodec in an import statement."""
    import ast

    importers: set[str] = set()
    for folder in ("engine", "cli"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                        [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                calls = isinstance(node, ast.Call) and any(
                    isinstance(arg, ast.Constant) and arg.value == "PyNvVideoCodec" for arg in node.args)
                if calls or any(name.partition(".")[0] == "PyNvVideoCodec" for name in names):
                    importers.add(path.relative_to(REPO_ROOT).as_posix())
    assert importers == {"engine/decode/nvdec_caps.py"}


def test_installed_looks_for_pynvvideocodec_without_importing_it(monkeypatch):
    """For planners that run before any worker (engine/executors): find_spec only, never the import."""
    import importlib.util

    import animated_previews.engine.decode.nvdec_caps as nvdec_caps

    asked = []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: asked.append(name) or object())
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", lambda: (_ for _ in ()).throw(AssertionError("imported")))
    assert nvdec_caps.installed() is True and asked == ["PyNvVideoCodec"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert nvdec_caps.installed() is False
