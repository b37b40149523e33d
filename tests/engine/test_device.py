"""--device: validation, the per-job choice, and clean fallbacks to the CPU path.

These run without a GPU. Where a test needs "a GPU that torch sees" or "PyNvVideoCodec that
imports", it fakes the probe, so the same assertions hold on a CPU runner and on a GPU node.
"""

from __future__ import annotations

import dataclasses
import json
import types

import pytest
import torch
from click.testing import CliRunner

import clipmaker
import animated_previews.engine.decode.nvdec_caps as nvdec_caps
import animated_previews.engine.device as device
import animated_previews.engine.job as job
from animated_previews.cli.main import main
from animated_previews.engine import EngineError, ErrorCode, run_batch
from animated_previews.engine.decode import DecoderUnavailable
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.device import CudaStatus, DeviceChoice, DeviceRequest, choose_device, parse_device
from animated_previews.engine.doctor import typical_video
from animated_previews.engine.manifest import load_manifest
from animated_previews.engine.spec import parse_job

H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture(autouse=True)
def fresh_probes():
    device.clear_caches()
    yield
    device.clear_caches()


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(device, "cuda_status", lambda: CudaStatus(False, "torch.cuda.is_available() is False"))


@pytest.fixture
def fake_gpu(monkeypatch):
    """torch 'sees' one H100 and PyNvVideoCodec 'imports' (a stand-in without GetDecoderCaps)."""
    monkeypatch.setattr(device, "cuda_status", lambda: CudaStatus(True, "", (H100,), "12.8"))
    module = types.SimpleNamespace(__version__="2.2.4")
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", lambda: module)
    return module


def video(**changes):
    return dataclasses.replace(typical_video(), **changes)


# -- --device values ---------------------------------------------------------------------------


@pytest.mark.parametrize("text,want", [("auto", DeviceRequest("auto")), ("cpu", DeviceRequest("cpu")),
                                       ("cuda", DeviceRequest("cuda")), ("cuda:0", DeviceRequest("cuda", 0)),
                                       ("CUDA:2", DeviceRequest("cuda", 2)), (" auto ", DeviceRequest("auto"))])
def test_valid_device_values(text, want):
    assert parse_device(text) == want


@pytest.mark.parametrize("text", ["gpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0", "auto:1", "", "cuda0"])
def test_invalid_device_values_are_an_invalid_parameter(text):
    with pytest.raises(EngineError) as err:
        parse_device(text)
    assert err.value.code is ErrorCode.INVALID_PARAMETER and "auto, cpu, cuda or cuda:N" in err.value.message


def test_the_cli_refuses_a_bad_device_as_a_usage_error(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"input": "a.mp4", "format": "gif", "fps": 5, "duration": 1}\n')
    result = CliRunner().invoke(main, ["run", "--batch", str(manifest), "--device", "gpu"])
    assert result.exit_code == 2 and "--device must be auto, cpu, cuda or cuda:N" in result.output


def test_run_batch_refuses_a_bad_device_before_running_anything(tmp_path):
    with pytest.raises(EngineError) as err:
        next(run_batch([], tmp_path / "out", device="tpu"))
    assert err.value.code is ErrorCode.INVALID_PARAMETER


# -- the choice ----------------------------------------------------------------------------------


def test_cpu_is_always_the_cpu_path_without_a_fallback_note(fake_gpu):
    choice = choose_device("cpu", video())
    assert choice == DeviceChoice("cpu", "pyav", "--device cpu") and choice.note is None


def test_auto_without_cuda_falls_back_with_the_reason(no_cuda):
    choice = choose_device("auto", video())
    assert (choice.device, choice.backend, choice.fallback) == ("cpu", "pyav", True)
    assert choice.note == "fallback: no CUDA device (torch.cuda.is_available() is False)"


def test_cuda_asked_for_on_a_machine_without_one_falls_back_per_job_too(no_cuda):
    choice = choose_device("cuda:0", video())
    assert choice.backend == "pyav" and choice.note.startswith("fallback: no CUDA device")


def test_on_this_machine_auto_says_what_torch_says():
    choice = choose_device("auto", video())
    if not torch.cuda.is_available():
        assert choice.device == "cpu" and "no CUDA device (torch.cuda.is_available() is False" in choice.reason


def test_a_failing_pynvvideocodec_import_is_the_reason_word_for_word(monkeypatch):
    monkeypatch.setattr(device, "cuda_status", lambda: CudaStatus(True, "", (H100,), "12.8"))

    def broken():
        raise ImportError("libnvcuvid.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", broken)
    choice = choose_device("auto", video())
    assert choice.backend == "pyav"
    assert choice.reason.startswith("PyNvVideoCodec cannot be imported (ImportError: libnvcuvid.so.1: cannot open shared "
                                    "object file: No such file or directory); the driver's video libraries are missing")


def test_the_real_import_failure_here_is_reported_exactly():
    status = nvdec_caps.nvdec_status()
    try:
        __import__("PyNvVideoCodec")
    except Exception as exc:
        assert status.version is None and status.error.startswith(type(exc).__name__ + ": ")
    else:
        assert status.error is None and status.version


def test_a_gpu_that_torch_does_not_have(fake_gpu):
    choice = choose_device("cuda:3", video())
    assert choice.backend == "pyav" and choice.reason == "cuda:3 was asked for but torch sees 1 CUDA device(s)"


def test_a_video_nvdec_takes_goes_to_the_gpu(fake_gpu):
    for requested in ("auto", "cuda", "cuda:0"):
        choice = choose_device(requested, video())
        assert (choice.device, choice.backend, choice.fallback) == ("cuda:0", "nvdec", False)


@pytest.mark.parametrize("changes,reason", [
    (dict(codec="av1"), "nvdec does not decode 8-bit av1 on Hopper GPUs (H100/H200)"),
    (dict(pixel_format="yuv420p10le"), "nvdec does not decode 10-bit h264 on Hopper GPUs (H100/H200)"),
    (dict(pixel_format="yuv422p"), "the GPU path takes 4:2:0 video only, not yuv422p"),
    (dict(codec="prores"), "nvdec does not decode prores"),
    (dict(container="mpegts"), "nvdec's frame access needs an MP4/MOV, MKV/WebM, AVI or FLV file, not mpegts"),
    (dict(width=7680, height=4320), "nvdec decodes h264 up to 4096x4096 on Hopper GPUs; this video is 7680x4320"),
    (dict(codec="hevc", width=96, height=96), "nvdec decodes hevc from 144x144 on Hopper GPUs; this video is 96x96"),
])
def test_without_decoder_caps_the_hopper_table_decides(fake_gpu, changes, reason):
    choice = choose_device("auto", video(**changes))
    assert choice.backend == "pyav" and choice.note == f"fallback: {reason}"


def test_ten_bit_hevc_is_taken(fake_gpu):
    assert choose_device("auto", video(codec="hevc", pixel_format="yuv420p10le")).backend == "nvdec"


def fake_caps(module, table):
    """Give the stand-in module PyNvVideoCodec's GetDecoderCaps and enums."""
    module.cudaVideoCodec = types.SimpleNamespace(**{limits.cuvid: limits.cuvid for limits in nvdec_caps.HOPPER_NVDEC.values()})
    module.cudaVideoChromaFormat = types.SimpleNamespace(**{"420": "420", "422": "422", "444": "444"})
    calls = []

    def get_decoder_caps(gpuid, codec, chromaformat, bitdepth):
        calls.append((gpuid, codec, chromaformat, bitdepth))
        return table(codec, bitdepth)

    module.GetDecoderCaps = get_decoder_caps
    return calls


def test_decoder_caps_are_asked_of_the_gpu_once_and_win_over_the_table(fake_gpu):
    def table(codec, bits):
        if codec == "VP8":
            return {"supported": 0}
        return {"supported": 1, "width_max": 4096, "height_max": 2304, "width_min": 48, "height_min": 16, "mb_num_max": 36864}

    calls = fake_caps(fake_gpu, table)
    choice = choose_device("auto", video(codec="vp8", container="matroska,webm"))
    assert choice.note == f"fallback: nvdec does not decode 8-bit vp8 on this GPU ({H100})"
    assert choose_device("auto", video(codec="av1")).backend == "nvdec"  # this "GPU" says it decodes AV1
    assert choose_device("auto", video(width=4096, height=2160)).backend == "nvdec"
    assert choose_device("auto", video(width=4096, height=2400)).note == (
        f"fallback: nvdec decodes h264 up to 4096x2304 on this GPU ({H100}); this video is 4096x2400"
    )
    choose_device("auto", video(codec="vp8", container="matroska,webm"))
    assert calls.count((0, "VP8", "420", 8)) == 1  # cached


def test_probes_run_once_per_process(monkeypatch):
    calls = []
    real = torch.cuda.is_available
    monkeypatch.setattr(torch.cuda, "is_available", lambda: calls.append(1) or real())
    for _ in range(3):
        choose_device("auto", video())
    assert len(calls) == 1


# -- jobs: the reason lands in the result, and a failing GPU path never fails the job ------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return clipmaker.make_clip(tmp_path_factory.mktemp("dev") / "c.mp4", fps=10, frames=20, width=160, height=120)


def spec(clip, fmt="gif"):
    return parse_job({"id": f"j-{fmt}", "input": str(clip), "format": fmt, "fps": 5, "duration": 1},
                     default_id="j", input_root=clip.parent)


def test_a_cpu_only_job_carries_the_reason_in_its_notes(no_cuda, clip, tmp_path):
    result = job.run_job(spec(clip), tmp_path, PyAVDecoder(), device="auto")
    assert result.ok and result.device == "pyav"
    assert "fallback: no CUDA device (torch.cuda.is_available() is False)" in result.notes


def test_device_cpu_adds_no_note(clip, tmp_path):
    result = job.run_job(spec(clip), tmp_path, PyAVDecoder(), device="cpu")
    assert result.ok and result.device == "pyav" and result.notes == ()


class Broken:
    name = "nvdec"

    def __init__(self, error):
        self.error = error

    def decode_frames(self, media, instants, fit=None):
        raise self.error


@pytest.mark.parametrize("fmt", ["gif", "webp"])
@pytest.mark.parametrize("error,said", [
    (DecoderUnavailable("nvdec does not decode this stream"), "nvdec does not decode this stream"),
    (RuntimeError("CUDA error: out of memory\nmore"), "RuntimeError: CUDA error: out of memory"),
])
def test_a_gpu_path_that_fails_falls_back_to_the_cpu_and_says_why(monkeypatch, clip, tmp_path, fmt, error, said):
    monkeypatch.setattr(job, "choose_device", lambda requested, media: DeviceChoice("cuda:0", "nvdec", "test"))
    monkeypatch.setattr(job, "_gpu_decoder", lambda choice: Broken(error))
    result = job.run_job(spec(clip, fmt), tmp_path, PyAVDecoder(), device="auto")
    assert result.ok and result.device == "pyav" and result.frames == 5
    assert f"fallback: the GPU path failed on cuda:0 ({said}); decoded on the CPU" in result.notes


def test_the_nvdec_adapter_without_pynvvideocodec_falls_back_cleanly(monkeypatch, clip, tmp_path):
    if nvdec_caps.nvdec_status().error is None:
        pytest.skip("PyNvVideoCodec imports here: the adapter would really run")
    monkeypatch.setattr(job, "choose_device", lambda requested, media: DeviceChoice("cuda:0", "nvdec", "test"))
    result = job.run_job(spec(clip), tmp_path, PyAVDecoder(), device="cuda")
    assert result.ok and result.device == "pyav"
    assert any(n.startswith("fallback: the GPU path failed on cuda:0 (PyNvVideoCodec cannot be imported (") for n in result.notes)


def test_a_backend_that_succeeds_is_named_in_the_result(monkeypatch, clip, tmp_path):
    class StandIn(PyAVDecoder):  # the GPU path's place in the job, served by CPU frames
        name = "nvdec"

    monkeypatch.setattr(job, "choose_device", lambda requested, media: DeviceChoice("cuda:0", "nvdec", "test"))
    monkeypatch.setattr(job, "_gpu_decoder", lambda choice: StandIn())
    result = job.run_job(spec(clip, "webp"), tmp_path, PyAVDecoder(), device="auto")
    assert result.ok and result.device == "nvdec" and result.notes == ()


def test_a_batch_on_this_machine_reports_where_each_job_ran(clip, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "input": str(clip), "format": "gif", "fps": 5, "duration": 1}) + "\n")
    (result,) = list(run_batch(load_manifest(manifest), tmp_path / "out", workers=1, device="auto"))
    assert result.ok
    if not torch.cuda.is_available():
        assert result.device == "pyav" and any(n.startswith("fallback: no CUDA device") for n in result.notes)


# -- PyNvVideoCodec 2.2's import failures: the exact error, then what to do ----------------------

# What `import PyNvVideoCodec` 2.2.4 raises (first lines; read from its __init__.py, and run on a
# machine without the driver's libraries: ../shared/reference/nvdec-audit.md).
NO_VIDEO_LIBS = ("Failed to load NVENC library: libnvidia-encode.so.1: cannot open shared object file: No such file "
                 "or directory\n\n=== TROUBLESHOOTING STEPS ===\n\nThe NVENC library could not be found.")


def importer(error, logged=()):
    """A stand-in for the import that logs what 2.2.4 logs, then raises what it raises."""
    def run():
        import logging
        for line in logged:
            logging.getLogger("PyNvVideoCodec").info(line)
        raise error
    return run


def test_missing_video_libraries_are_named_with_the_fix(monkeypatch):
    monkeypatch.setattr(device, "cuda_status", lambda: CudaStatus(True, "", (H100,), "13.0"))
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", importer(RuntimeError(NO_VIDEO_LIBS)))
    status = nvdec_caps.nvdec_status()
    assert status.error == ("RuntimeError: Failed to load NVENC library: libnvidia-encode.so.1: cannot open shared "
                            "object file: No such file or directory")
    assert status.advice.startswith("the driver's video libraries are missing (libnvidia-encode.so.1 cannot be loaded): "
                                    "run the container with NVIDIA_DRIVER_CAPABILITIES including video")
    choice = choose_device("auto", video())
    assert choice.backend == "pyav" and choice.reason == f"PyNvVideoCodec cannot be imported ({status.error}); {status.advice}"


def test_a_missing_nvcuvid_gets_the_same_fix(monkeypatch):
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec",
                        importer(ImportError("libnvcuvid.so.1: cannot open shared object file: No such file or directory")))
    assert "NVIDIA_DRIVER_CAPABILITIES including video" in nvdec_caps.nvdec_status().advice


@pytest.mark.parametrize("logged,said", [
    (["Supported NVENC Driver Version: 192"], "driver too old: NVENC API 12.0 < 12.1"),  # (12 << 4) | 0
    (["Supported NVENC Driver Version: 177"], "driver too old: NVENC API 11.1 < 12.1"),
    ([], "driver too old: NVENC API below 12.1"),  # nothing logged: the version stays unsaid
])
def test_a_driver_too_old_says_its_nvenc_api(monkeypatch, logged, said):
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", importer(RuntimeError("Driver version is too old"), logged))
    status = nvdec_caps.nvdec_status()
    assert status.error == "RuntimeError: Driver version is too old"
    assert status.advice.startswith(said + ", the lowest PyNvVideoCodec 2.2 loads with; update the NVIDIA driver")


def test_the_import_logging_is_put_back_as_it_was(monkeypatch):
    import logging
    logger = logging.getLogger("PyNvVideoCodec")
    before = (list(logger.handlers), logger.propagate, logger.level)
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", importer(RuntimeError("Driver version is too old")))
    nvdec_caps.nvdec_status()
    assert (list(logger.handlers), logger.propagate, logger.level) == before


def test_an_unknown_import_failure_has_no_made_up_advice(monkeypatch):
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", importer(ImportError("something else")))
    status = nvdec_caps.nvdec_status()
    assert status.advice is None and nvdec_caps.unavailable_reason(status) == "PyNvVideoCodec cannot be imported (ImportError: something else)"


# -- GetDecoderCaps: GPU 0's answer, once per codec and bit depth --------------------------------


def test_decoder_caps_ask_gpu_0_once_whatever_gpu_decodes(monkeypatch, fake_gpu):
    monkeypatch.setattr(device, "cuda_status", lambda: CudaStatus(True, "", (H100, H100, "NVIDIA H200"), "13.0"))
    calls = fake_caps(fake_gpu, lambda codec, bits: {"supported": int(codec != "VP8"), "width_max": 4096, "height_max": 4096})
    for requested in ("cuda:0", "cuda:1", "cuda:2", "auto"):
        assert choose_device(requested, video()).backend == "nvdec"
    assert calls == [(0, "H264", "420", 8)]  # one query; gpuid is always 0 (PyNvVideoCodec asks GPU 0 anyway)
    note = choose_device("cuda:2", video(codec="vp8", container="matroska,webm")).note
    assert note == ("fallback: nvdec does not decode 8-bit vp8 on cuda:0 (GetDecoderCaps asks GPU 0 only; "
                    "cuda:2, NVIDIA H200, is assumed the same)")


# -- what SimpleDecoder reads differently: interlace, VFR in rate-seeking containers, full scans --


MP4 = "mov,mp4,m4a,3gp,3g2,mj2"


@pytest.mark.parametrize("order", ["tt", "bb", "tb", "bt"])
def test_interlaced_streams_take_the_cpu_paths_top_field_rule(fake_gpu, order):
    choice = choose_device("auto", video(field_order=order))
    assert choice.backend == "pyav" and choice.reason == (
        f"interlaced ({order} field order): the CPU path's top-field rule; nvdec would deinterlace adaptively, another picture")


def test_a_file_with_several_video_streams_takes_the_cpu_path(fake_gpu):
    """The CPU path takes the stream FFmpeg would (the "default" flag weighs 5 Mpixel);
    SimpleDecoder's demuxer cannot be told which, so it might decode another."""
    choice = choose_device("auto", video(video_streams=2))
    assert choice.backend == "pyav" and choice.reason.startswith("2 video streams: nvdec's demuxer picks one")
    assert choose_device("auto", video(video_streams=1)).backend == "nvdec"


@pytest.mark.parametrize("order", ["progressive", "unknown"])
def test_progressive_or_unsaid_field_order_stays_on_the_gpu(fake_gpu, order):
    assert choose_device("auto", video(field_order=order)).backend == "nvdec"


@pytest.mark.parametrize("container,brand,suffix,name", [
    (MP4, "qt  ", ".mp4", "MOV"),  # the brand decides, not the name
    (MP4, None, ".mov", "MOV"),    # no brand PyNvVideoCodec knows: the extension does
    ("flv", None, ".flv", "FLV"),
    ("matroska,webm", None, ".mkv", "MKV/WebM"),
])
def test_vfr_in_a_container_seeked_by_frame_times_rate_goes_to_the_cpu(fake_gpu, container, brand, suffix, name):
    from pathlib import Path
    media = video(container=container, brand=brand, path=Path("v" + suffix), fps=23.5, base_fps=30.0, header_frames=100)
    choice = choose_device("auto", media)
    assert choice.backend == "pyav" and choice.reason == (
        f"variable frame rate in {name}: nvdec seeks there by frame number x 30 fps (r_frame_rate) and would land on "
        "other frames (average 23.5 fps)")
    assert choose_device("auto", dataclasses.replace(media, fps=30.0)).backend == "nvdec"  # constant rate: taken


@pytest.mark.parametrize("brand", ["isom", "mp42", "mp41"])
def test_vfr_in_mp4_stays_on_the_gpu_it_seeks_by_index(fake_gpu, brand):
    from pathlib import Path
    media = video(container=MP4, brand=brand, path=Path("v.mov"), fps=23.5, base_fps=30.0)
    assert nvdec_caps.seek_container(media) == "mp4"
    assert choose_device("auto", media).backend == "nvdec"


def test_rates_a_fraction_of_a_percent_apart_are_constant(fake_gpu):
    media = video(container="matroska,webm", brand=None, fps=29.97, base_fps=30000 / 1001, header_frames=0, size=1 << 20)
    assert not nvdec_caps.variable_rate(media) and choose_device("auto", media).backend == "nvdec"


def test_a_large_file_whose_header_has_no_frame_count_goes_to_the_cpu(fake_gpu):
    limit = nvdec_caps.SCAN_LIMIT_BYTES
    mkv = video(container="matroska,webm", brand=None, header_frames=0, size=limit + 1)
    assert choose_device("auto", mkv).reason == (
        "the matroska,webm header declares no frame count: nvdec would demux the whole 256 MiB file before the "
        "first frame (above 256 MiB)")
    assert choose_device("auto", dataclasses.replace(mkv, size=limit)).backend == "nvdec"  # small: the scan is short
    assert choose_device("auto", dataclasses.replace(mkv, header_frames=900)).backend == "nvdec"
    no_duration = video(header_frames=1800, duration_source="container", size=4 << 30)
    assert "declares no stream duration: nvdec would demux the whole 4096 MiB file" in choose_device("auto", no_duration).reason


# -- the probe reads those facts from the header, before any frame is decoded --------------------


def make(path, fmt, *, interlaced=False, frames=10):
    import av
    options = {"crf": "20"}
    if interlaced:
        options.update({"flags": "+ilme+ildct", "x264-params": "tff=1"})
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("libx264", rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(clipmaker.render_frame(k, 160, 120), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_the_probe_knows_interlace_brand_frame_count_and_rates(tmp_path, fake_gpu):
    from animated_previews.engine.probe import probe
    interlaced = probe(make(tmp_path / "i.mp4", "mp4", interlaced=True))
    assert interlaced.field_order == "tt" and interlaced.interlaced and interlaced.brand == "isom"
    assert interlaced.header_frames == 10 and interlaced.base_fps == 25.0
    assert choose_device("auto", interlaced).reason.startswith("interlaced (tt field order)")
    mov = probe(make(tmp_path / "m.mov", "mov"))
    assert mov.brand == "qt  " and nvdec_caps.seek_container(mov) == "mov" and mov.field_order == "progressive"
    mkv = probe(make(tmp_path / "k.mkv", "matroska"))
    assert mkv.header_frames == 0 and mkv.brand is None and mkv.size == (tmp_path / "k.mkv").stat().st_size
    assert choose_device("auto", mkv).backend == "nvdec"  # a small MKV: the scan is cheap
