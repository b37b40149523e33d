"""`engine doctor` tells the truth about the machine it runs on."""

from __future__ import annotations

import json
import types

import av
import PIL
import pytest
import torch
from click.testing import CliRunner
from PIL import features

import clipmaker
import animated_previews.engine.decode.nvdec_caps as nvdec_caps
import animated_previews.engine.device as device
from animated_previews.cli.main import main
from animated_previews.engine.device import CudaStatus


@pytest.fixture(autouse=True)
def fresh_probes():
    device.clear_caches()
    yield
    device.clear_caches()


def doctor(*args: str):
    result = CliRunner().invoke(main, ["doctor", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_json_report_matches_what_this_process_sees():
    report = json.loads(doctor("--json"))
    assert report["torch"] == torch.__version__ and report["torch_cuda"] == torch.version.cuda
    assert report["cuda_available"] == torch.cuda.is_available()
    assert report["pyav"] == av.__version__
    assert report["ffmpeg_libraries"]["libavcodec"] == ".".join(map(str, av.library_versions["libavcodec"]))
    assert report["pillow"] == PIL.__version__ and report["libwebp"] == features.version("webp")
    try:
        __import__("PyNvVideoCodec")
    except Exception as exc:
        message = str(exc).strip().splitlines()[0]
        assert report["pynvvideocodec"] is None
        assert report["pynvvideocodec_error"] == f"{type(exc).__name__}: {message}"
    else:
        assert report["pynvvideocodec"] and report["pynvvideocodec_error"] is None
    if not torch.cuda.is_available():
        assert report["gpus"] == [] and "torch.cuda.is_available() is False" in report["cuda_reason"]
        assert report["auto"]["device"] == "cpu" and report["auto"]["backend"] == "pyav"
        assert report["auto"]["reason"].startswith("no CUDA device (torch.cuda.is_available() is False")
        assert all(row["source"] == "table" for row in report["nvdec_codecs"])
    else:
        assert len(report["gpus"]) == torch.cuda.device_count()


def test_text_report_has_a_line_for_each_finding():
    text = doctor()
    for label in ("torch ", "CUDA usable", "NVIDIA driver", "PyNvVideoCodec", "PyAV", "Pillow", "libwebp",
                  "NVDEC codecs", "--device auto"):
        assert label in text
    if not torch.cuda.is_available():
        assert "GPUs            none seen by torch" in text
        assert "cpu (pyav) - no CUDA device" in text


def test_the_auto_choice_for_a_given_video(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=10, frames=5, width=160, height=120)
    report = json.loads(doctor("--json", "--video", str(clip)))
    assert report["auto_for"] == str(clip)
    if not torch.cuda.is_available():
        assert report["auto"]["device"] == "cpu"


def test_an_unreadable_video_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    result = CliRunner().invoke(main, ["doctor", "--video", str(bad)])
    assert result.exit_code == 2


def test_on_a_gpu_node_codecs_come_from_the_gpu(monkeypatch):
    """With CUDA and PyNvVideoCodec present (faked here), the codec list is asked of the GPU."""
    monkeypatch.setattr(device, "cuda_status", lambda: CudaStatus(True, "", ("NVIDIA H100 80GB HBM3",), "12.8"))
    module = types.SimpleNamespace(
        __version__="2.2.4",
        cudaVideoCodec=types.SimpleNamespace(**{l.cuvid: l.cuvid for l in nvdec_caps.HOPPER_NVDEC.values()}),
        cudaVideoChromaFormat=types.SimpleNamespace(**{"420": "420"}),
        GetDecoderCaps=lambda gpuid, codec, chromaformat, bitdepth: {
            "supported": int(codec != "AV1" and (bitdepth == 8 or codec == "HEVC")),
            "width_max": 8192, "height_max": 8192, "width_min": 48, "height_min": 16, "mb_num_max": 1 << 18},
    )
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", lambda: module)
    monkeypatch.setattr("animated_previews.engine.doctor._gpus", lambda: ())
    report = json.loads(doctor("--json"))
    assert report["pynvvideocodec"] == "2.2.4"
    assert {row["source"] for row in report["nvdec_codecs"]} == {"GetDecoderCaps"}
    supported = {(row["codec"], row["bits"]) for row in report["nvdec_codecs"] if row["supported"]}
    assert ("hevc", 10) in supported and ("av1", 8) not in supported and ("h264", 10) not in supported
    assert report["auto"]["device"] == "cuda:0" and report["auto"]["backend"] == "nvdec"


@pytest.mark.parametrize("line,version", [
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024", "550.54.15"),
    ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.133.20  Release Build  (dvs-builder@U16)", "570.133.20"),
])
def test_the_driver_version_is_read_from_the_kernel_module(monkeypatch, tmp_path, line, version):
    import animated_previews.engine.doctor as doctor_module
    proc = tmp_path / "version"
    proc.write_text(line + "\nGCC version:  gcc version 12.2.0\n")
    monkeypatch.setattr(doctor_module, "_DRIVER_FILE", proc)
    assert doctor_module._driver_version() == (version, str(proc))


def test_no_driver_says_where_it_looked(monkeypatch, tmp_path):
    import animated_previews.engine.doctor as doctor_module
    monkeypatch.setattr(doctor_module, "_DRIVER_FILE", tmp_path / "absent")
    monkeypatch.setattr(doctor_module.shutil, "which", lambda name: None)
    version, source = doctor_module._driver_version()
    assert version is None and "absent" in source and "nvidia-smi" in source


def test_avif_support_is_reported_as_pillow_has_it():
    report = json.loads(doctor("--json"))
    assert report["avif"] is features.check("avif")
    assert report["libavif"] == (features.version("avif") if features.check("avif") else None)
    text = doctor()
    if report["avif"]:
        assert f"AVIF yes (libavif {report['libavif']})" in text
    else:
        assert "AVIF no (--format avif fails" in text


def test_how_webp_frames_are_coded_is_reported():
    from animated_previews.engine.encode import libwebp

    report = json.loads(doctor("--json"))
    if libwebp.unavailable() is None:
        assert report["webp_stills"] == f"libwebp ({libwebp.loaded_from()})"
    else:
        assert report["webp_stills"].startswith(f"Pillow ({libwebp.unavailable()}")
    assert f"WebP stills     {report['webp_stills']}" in doctor()


def test_a_pillow_without_avif_is_a_finding_not_a_crash(monkeypatch):
    import animated_previews.engine.doctor as doctor_module

    def unknown(feature):
        raise ValueError(f"Unknown feature '{feature}'")  # what an older Pillow says for "avif"

    monkeypatch.setattr(features, "check", unknown)
    monkeypatch.setattr(features, "version", lambda feature: "1.5.0" if feature == "webp" else unknown(feature))
    assert doctor_module._pillow_has("avif") is False and doctor_module._pillow_version("avif") is None
    text = doctor()
    assert "libwebp 1.5.0, AVIF no (--format avif fails: Pillow lacks its AVIF plugin)" in text


NO_VIDEO_LIBS = ("Failed to load NVENC library: libnvidia-encode.so.1: cannot open shared object file: No such file "
                 "or directory\n\n=== TROUBLESHOOTING STEPS ===\n")


@pytest.mark.parametrize("error,logged,fix", [
    (RuntimeError(NO_VIDEO_LIBS), None,
     "the driver's video libraries are missing (libnvidia-encode.so.1 cannot be loaded): run the container with "
     "NVIDIA_DRIVER_CAPABILITIES including video"),
    (RuntimeError("Driver version is too old"), "Supported NVENC Driver Version: 192",
     "driver too old: NVENC API 12.0 < 12.1"),
])
def test_doctor_says_how_to_fix_the_import_failures_pynvvideocodec_raises(monkeypatch, error, logged, fix):
    """PyNvVideoCodec 2.2.4's own messages (its __init__.py), raised by a stand-in importer."""
    import logging

    def importer():
        if logged:
            logging.getLogger("PyNvVideoCodec").info(logged)
        raise error

    monkeypatch.setattr(device, "cuda_status", lambda: CudaStatus(True, "", ("NVIDIA H200",), "13.0"))
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", importer)
    monkeypatch.setattr("animated_previews.engine.doctor._gpus", lambda: ())
    report = json.loads(doctor("--json"))
    assert report["pynvvideocodec"] is None and report["pynvvideocodec_error"].startswith("RuntimeError: ")
    assert report["pynvvideocodec_advice"].startswith(fix)
    assert report["auto"]["device"] == "cpu" and fix in report["auto"]["reason"]
    text = doctor()
    assert f"  fix           {report['pynvvideocodec_advice']}" in text


def test_the_codec_limits_say_they_are_gpu_0s_and_are_asked_once(monkeypatch):
    calls = []

    def caps(gpuid, codec, chromaformat, bitdepth):
        calls.append((gpuid, codec, bitdepth))
        return {"supported": 1, "width_max": 4096, "height_max": 4096}

    module = types.SimpleNamespace(
        __version__="2.2.4", GetDecoderCaps=caps,
        cudaVideoCodec=types.SimpleNamespace(**{l.cuvid: l.cuvid for l in nvdec_caps.HOPPER_NVDEC.values()}),
        cudaVideoChromaFormat=types.SimpleNamespace(**{"420": "420"}),
    )
    monkeypatch.setattr(device, "cuda_status", lambda: CudaStatus(True, "", ("NVIDIA H200",) * 4, "13.0"))
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", lambda: module)
    monkeypatch.setattr("animated_previews.engine.doctor._gpus", lambda: ())
    report = json.loads(doctor("--json"))
    assert report["nvdec_caps_gpu"] == 0
    assert report["nvdec_codecs_source"].startswith(
        "limits of cuda:0 (NVIDIA H200), asked with GetDecoderCaps, which answers for GPU 0 only: "
        "cuda:1..3 are assumed identical")
    pairs = len(nvdec_caps.HOPPER_NVDEC) * 2
    assert len(calls) == pairs == len(set(calls)) and {gpu for gpu, _, _ in calls} == {0}
    text = doctor()  # the same process asks again: answered from the cache
    assert len(calls) == pairs and "GetDecoderCaps, which answers for GPU 0 only" in text


def test_without_a_gpu_nothing_is_asked_and_no_gpu_is_named():
    report = json.loads(doctor("--json"))
    if not torch.cuda.is_available():
        assert report["nvdec_caps_gpu"] is None and report["nvdec_codecs_source"].startswith("not asked of a GPU")


@pytest.mark.parametrize("present,driver,said", [
    ({"libnvcuvid.so.1", "libnvidia-encode.so.1"}, "580.65.06", "video libraries libnvcuvid.so.1, libnvidia-encode.so.1 load"),
    ({"libnvidia-encode.so.1"}, "580.65.06",
     "video libraries missing: libnvcuvid.so.1 - NVDEC needs them: run the container with NVIDIA_DRIVER_CAPABILITIES including video"),
    (set(), None, "video libraries missing: libnvcuvid.so.1, libnvidia-encode.so.1 (no NVIDIA driver)"),
])
def test_the_drivers_video_libraries_are_checked_by_loading_them(monkeypatch, present, driver, said):
    """libnvcuvid.so.1 is loaded only when a decoder is made: doctor loads both itself."""
    import ctypes

    import animated_previews.engine.doctor as doctor_module

    def cdll(name):
        if name not in present:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return object()

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    monkeypatch.setattr(doctor_module, "_driver_version", lambda: (driver, "test") if driver else (None, "no driver"))
    report = json.loads(doctor("--json"))
    assert set(report["video_libraries"]) == {"libnvcuvid.so.1", "libnvidia-encode.so.1"}
    for name, state in report["video_libraries"].items():
        assert state == ("loads" if name in present else f"{name}: cannot open shared object file: No such file or directory")
    assert said in doctor()


def test_doctor_says_whether_the_compiled_cpu_loops_run(monkeypatch):
    from animated_previews.engine import doctor
    from animated_previews.kernels import hold_scan

    text = doctor._cpu_loops()
    assert text.startswith("numba ") and (text.endswith("run compiled") == (hold_scan.SCAN is not None))
    monkeypatch.setattr(hold_scan, "SCAN", None)
    assert "the torch kernels run instead" in doctor._cpu_loops()
