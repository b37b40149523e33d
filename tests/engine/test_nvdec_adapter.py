"""The NVDEC adapter's logic on CPU, driven by a stand-in for PyNvVideoCodec's SimpleDecoder.

The stand-in behaves as the PyNvVideoCodec 2.x sources and docs describe SimpleDecoder (frames
numbered in presentation order, ``get_batch_frames_by_index``, ``reconfigure_decoder``, ``len``,
DLPack frames with a ``timestamp`` in the stream's time base, NV12 as one (1.5 H, W) plane, P016
exported with 2.0.x's column stride of 2 or 2.2.x's element strides, buffers reused by the next
call), with the pictures decoded by PyAV. It records what the adapter does to it (decoders created
and their options, reconfigurations, index lists) and fails loudly on what the real one does not
survive (an empty index list, ``cuda_stream=0``). It proves what can be proved without a GPU: the
frame numbers asked for, the stream handed over, decoder reuse, the copy before buffer reuse, the
P016 fix-up, colour, rotation, the timestamp check and the job's fallback. The real thing is
checked by tests/engine/test_gpu_parity.py on a GPU.
"""

from __future__ import annotations

import threading
import types
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import clipmaker
from threads import run_together
import animated_previews.engine.decode.nvdec_caps as nvdec_caps
import animated_previews.engine.device as device
import animated_previews.engine.decode.frame_index as frame_index
import animated_previews.engine.decode.nvdec as nvdec
import animated_previews.engine.decode.wide_colour as wide_colour
import animated_previews.engine.job as job
from animated_previews.engine.decode import DecoderUnavailable
from animated_previews.engine.decode.nvdec import FETCH_BATCH, MAX_HEIGHT, MAX_WIDTH, NvdecDecoder, choose_stream
from animated_previews.engine.decode.frame_index import NO_TIMESTAMP
from animated_previews.engine.decode.frame_tags import StreamTags
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.device import DeviceChoice
from animated_previews.engine.probe import probe
from animated_previews.engine.spec import parse_job

CPU = torch.device("cpu")


class StandInFrame:
    """A decoded frame as PyNvVideoCodec hands it: DLPack export plus the packet's timestamp."""

    def __init__(self, tensor: torch.Tensor, timestamp: int) -> None:
        self.tensor = tensor
        self.timestamp = timestamp

    def __dlpack__(self, stream=None):  # SimpleDecoder's signature: no max_version, no copy
        StandInDecoder.events.append("import")
        return self.tensor.__dlpack__()

    def __dlpack_device__(self):
        return self.tensor.__dlpack_device__()


def nv12(frame: av.VideoFrame) -> np.ndarray:
    """The frame's planes as one (1.5 H, W) NV12 / P016 plane (W rounded up to even)."""
    deep = frame.format.name.endswith("10le")
    dtype = np.uint16 if deep else np.uint8
    y, u, v = (np.frombuffer(p, dtype).reshape(p.height, p.line_size // dtype().itemsize)[:, : p.width] for p in frame.planes)
    if y.shape[1] % 2:  # an odd width: NVDEC's surfaces are an even number of columns wide
        y = np.concatenate((y, y[:, -1:]), axis=1)
    surface = np.concatenate((y, np.stack((u, v), axis=-1).reshape(u.shape[0], -1)), axis=0)
    return (surface.astype(np.uint32) << 6).astype(np.uint16) if deep else np.ascontiguousarray(surface)


UNSET = object()


class StandInDecoder:
    """SimpleDecoder on the CPU. ``words``: how P016 is exported ("strided": uint16 with strides
    (W, 2) as PyNvVideoCodec 2.0.x does; "elements": uint16 with strides (pitch, 1), pitch > W,
    as 2.2.x does; "bytes": uint8 (1.5 H, 2 W)). ``stamps``: what each frame's timestamp is, "dts"
    (the decode timestamp of the packet with its number in decode order, what 2.2.4 reported on an
    H200; AV_NOPTS_VALUE where the container has none; the module then says version 2.2.4) or
    "pts" (the frame's own, what 2.0.0's source reads as; version 2.0.0). ``behind``: from this
    frame number on, the frame ``behind_by`` (default 1) earlier is handed out, picture and stamp
    (a decoder that lost frames). ``shift``: timestamps off by one from this frame
    number on (a numbering that disagrees with the container). ``short``: one frame fewer than
    asked. ``counted``: what ``len()`` says (the header's count, when it is short).
    ``refuse_reconfigure``: ``reconfigure_decoder`` raises.

    What the adapter did, reset per test by the fixture: ``log`` (index lists asked), ``created``
    (each decoder's options), ``reconfigured`` (paths), ``events`` (imports, fetches and the stream
    calls, in order)."""

    log: list[list[int]] = []
    created: list[dict] = []
    reconfigured: list[str] = []
    events: list = []

    def __init__(self, path, gpu_id=0, cuda_context=0, cuda_stream=UNSET, use_device_memory=True, max_width=0,
                 max_height=0, need_scanned_stream_metadata=False, decoder_cache_size=4, output_color_type=None,
                 words="strided", stamps="dts", behind=None, behind_by=1, shift=None, short=False, counted=None,
                 refuse_reconfigure=False):
        assert output_color_type == "NATIVE" and use_device_memory
        assert cuda_stream != 0, "cuda_stream=0: 2.0.x decodes on the NULL stream and synchronises every frame"
        self.words, self.stamps, self.shift, self.short, self.counted = words, stamps, shift, short, counted
        self.behind, self.behind_by = behind, behind_by
        self.refuse_reconfigure = refuse_reconfigure
        StandInDecoder.created.append({"cuda_stream": None if cuda_stream is UNSET else cuda_stream,
                                       "max_width": max_width, "max_height": max_height, "gpu_id": gpu_id,
                                       "thread": threading.get_ident(), "decoder": self})
        self._open(path)

    def _open(self, path) -> None:
        with av.open(str(path)) as container:
            dts = [p.dts for p in container.demux(container.streams.video[0]) if p.size]
        with av.open(str(path)) as container:
            frames = list(container.decode(container.streams.video[0]))
        frames.sort(key=lambda f: f.pts)
        self.surfaces = [nv12(f) for f in frames]
        self.pts = [f.pts for f in frames]
        self.dts = [NO_TIMESTAMP if d is None else d for d in dts]
        self.pool: list[torch.Tensor] = []

    def reconfigure_decoder(self, new_source):
        StandInDecoder.reconfigured.append(str(new_source))
        if self.refuse_reconfigure:
            raise RuntimeError("reconfigure failed")
        self._open(new_source)

    def __len__(self):
        return len(self.surfaces) if self.counted is None else self.counted

    def _export(self, slot: int, surface: np.ndarray) -> torch.Tensor:
        """Write into a reused buffer, as the decoder does, and export the documented layout."""
        rows, cols = surface.shape
        if surface.dtype == np.uint16 and self.words in ("strided", "elements"):
            pitch = cols if self.words == "strided" else cols + 64
            if len(self.pool) <= slot:
                self.pool.append(torch.empty(rows * pitch + cols, dtype=torch.uint16))
            buffer = self.pool[slot]
            buffer[: rows * pitch].view(rows, pitch)[:, :cols] = torch.from_numpy(surface)
            return buffer.as_strided((rows, cols), (cols, 2) if self.words == "strided" else (pitch, 1))
        data = surface.view(np.uint8) if surface.dtype == np.uint16 else surface
        if len(self.pool) <= slot:
            self.pool.append(torch.empty(data.shape, dtype=torch.uint8))
        self.pool[slot].copy_(torch.from_numpy(np.ascontiguousarray(data)))
        return self.pool[slot]

    def get_batch_frames_by_index(self, indices):
        assert len(indices) > 0, "an empty index list: undefined behaviour in SimpleDecoder's C++ side"
        StandInDecoder.log.append(list(indices))
        StandInDecoder.events.append("fetch")
        assert list(indices) == sorted(indices), "frames must be asked in ascending order"
        if self.short:
            indices = indices[:-1]
        out = []
        for slot, number in enumerate(indices):
            if self.behind is not None and number >= self.behind:
                number -= self.behind_by
            stamp = (self.dts if self.stamps == "dts" else self.pts)[number]
            stamp += 1 if self.shift is not None and number >= self.shift else 0
            out.append(StandInFrame(self._export(slot, self.surfaces[number]), stamp))
        return out


@pytest.fixture
def stand_in(monkeypatch):
    """PyNvVideoCodec replaced by the stand-in; returns a setter for the decoder's options."""
    options: dict = {}

    class Module:  # its version follows the stamps asked for: 2.2.4 decode timestamps, 2.0.0 pts
        OutputColorType = types.SimpleNamespace(NATIVE="NATIVE")
        SimpleDecoder = staticmethod(lambda path, **kw: StandInDecoder(path, **kw, **options))

        @property
        def __version__(self) -> str:
            return "2.0.0" if options.get("stamps") == "pts" else "2.2.4"

    module = Module()
    device.clear_caches()
    StandInDecoder.log, StandInDecoder.created, StandInDecoder.reconfigured, StandInDecoder.events = [], [], [], []
    monkeypatch.setattr(nvdec_caps, "_import_pynvvideocodec", lambda: module)
    yield options
    device.clear_caches()


def read(clip) -> list[int]:
    frames = clip.frames.permute(0, 2, 3, 1).numpy()
    return [clipmaker.read_index(frames[i]) for i in clip.index.tolist()]


psnr = clipmaker.psnr


def decode_both(path, instants):
    media = probe(path)
    return NvdecDecoder(0, device=CPU).decode_frames(media, instants), PyAVDecoder().decode_frames(media, instants)


def test_frames_are_fetched_by_number_in_batches_and_copied_before_buffers_are_reused(stand_in, tmp_path):
    count = 2 * FETCH_BATCH + 11
    path = clipmaker.make_clip(tmp_path / "many.mp4", fps=25, frames=count + 20, gop=25, width=160, height=120)
    instants = [0.2 + k / 25 for k in range(count)]
    gpu, cpu = decode_both(path, instants)
    assert read(gpu) == [5 + k for k in range(count)] == read(cpu)
    asked = [n for call in StandInDecoder.log for n in call]
    assert asked == list(range(5, 5 + count))  # from the first frame needed to the last, nothing after
    assert all(len(call) <= FETCH_BATCH for call in StandInDecoder.log) and len(StandInDecoder.log) == 3
    assert gpu.source_times == pytest.approx(cpu.source_times, abs=1e-9)
    assert psnr(gpu.frames.numpy(), cpu.frames.contiguous().numpy()) > 45  # same YUV, swscale's filter


@pytest.mark.parametrize("words", ["strided", "elements", "bytes"])
def test_ten_bit_p016_frames_are_read_right_however_they_are_exported(stand_in, clip_10bit, words):
    stand_in["words"] = words
    instants = [0.0, 0.5, 1.0, 1.5]
    gpu, cpu = decode_both(clip_10bit, instants)
    assert read(gpu) == read(cpu) == [0, 12, 25, 37]
    assert psnr(gpu.frames.numpy(), cpu.frames.contiguous().numpy()) > 40


def test_rotation_is_applied_like_on_the_cpu(stand_in, rotated_clip):
    gpu, cpu = decode_both(rotated_clip, [0.0, 0.4])
    assert read(gpu) == [0, 10] and (gpu.height, gpu.width) == (cpu.height, cpu.width) == (320, 240)
    assert gpu.rotation == cpu.rotation == 3


@pytest.mark.parametrize("matrix", [(-1, 0, 0, 1), (0, 1, 1, 0)], ids=["mirror", "transpose"])
def test_a_mirroring_display_matrix_is_applied_like_on_the_cpu(stand_in, h264_clip, tmp_path, matrix):
    mirrored = clipmaker.with_display_matrix(h264_clip, tmp_path / "mirrored.mp4", matrix)
    gpu, cpu = decode_both(mirrored, [0.0, 0.4])
    assert (gpu.height, gpu.width, gpu.rotation) == (cpu.height, cpu.width, cpu.rotation)
    assert psnr(gpu.frames.numpy(), cpu.frames.contiguous().numpy()) > 45
    plain = PyAVDecoder().decode_frames(probe(h264_clip), [0.0]).frames[0]
    assert psnr(cpu.frames[0].numpy(), plain.flip(2).numpy() if matrix[0] else plain.transpose(1, 2).numpy()) > 45


def test_variable_frame_rate_is_numbered_from_real_timestamps(stand_in, vfr_clip, vfr_pts):
    instants = [k / 10 for k in range(21)]
    gpu, _ = decode_both(vfr_clip, instants)
    assert read(gpu) == [max(i for i, p in enumerate(vfr_pts) if p <= t + 1e-6) for t in instants]


@pytest.mark.parametrize("stamps", ["dts", "pts"])
def test_frames_are_checked_against_the_stamps_their_pynvvideocodec_version_gives(stand_in, h264_clip, stamps):
    """PyNvVideoCodec 2.2.4 stamped the n-th frame with the n-th packet's decode timestamp (on an
    H200: pts - 2 frames in a B-frame mp4); its 2.0.0 source reads as the frame's pts."""
    stand_in["stamps"] = stamps
    gpu, cpu = decode_both(h264_clip, [0.0, 0.5, 1.0, 1.5])
    assert read(gpu) == read(cpu)


@pytest.mark.parametrize("stamps, by", [("dts", 1), ("pts", 1), ("pts", 2)])
def test_a_decoder_frames_behind_is_refused_whatever_it_stamps_with(stand_in, h264_clip, stamps, by):
    """An earlier frame, with its own stamp in the version's convention: the stamp is the wrong
    frame's. Two frames behind with pts stamps is the case a check taking either convention for any
    frame let through: in this B-frame stream the pts of frame n - 2 is packet n's decode timestamp."""
    stand_in["behind"], stand_in["behind_by"], stand_in["stamps"] = 10, by, stamps
    with pytest.raises(DecoderUnavailable, match="frame numbering differs"):
        NvdecDecoder(0, device=CPU).decode_frames(probe(h264_clip), [0.0, 0.5, 1.0])


@pytest.mark.parametrize("start", [0.0, 0.5])
def test_matroska_with_reordered_frames_is_refused_before_decoding(stand_in, tmp_path, start):
    """Matroska stores no decode timestamps; FFmpeg guesses them for B-frames, PyAV's and
    PyNvVideoCodec's differently (433 against 467 for one frame on an H200)."""
    mkv = clipmaker.make_clip(tmp_path / "b.mkv", fps=25, frames=30, gop=25)
    with pytest.raises(DecoderUnavailable, match="no decode timestamps .* so nvdec's frame numbering cannot be checked"):
        NvdecDecoder(0, device=CPU).decode_frames(probe(mkv), [start, start + 0.4])
    assert StandInDecoder.log == []  # refused before a frame was fetched


def test_matroska_without_reordering_is_checked_by_its_stamps(stand_in, tmp_path):
    clip = clipmaker.make_clip(tmp_path / "v.webm", codec="vp9", fps=25, frames=30, gop=25)
    gpu, cpu = decode_both(clip, [0.0, 0.5, 1.0])
    assert read(gpu) == read(cpu)
    stand_in["shift"] = 10  # and a wrong stamp there is refused
    with pytest.raises(DecoderUnavailable, match="frame numbering differs"):
        NvdecDecoder(0, device=CPU).decode_frames(probe(clip), [0.0, 0.5, 1.0])


def test_matroska_with_reordered_frames_is_checked_by_pts_where_the_version_stamps_pts(stand_in, tmp_path):
    stand_in["stamps"] = "pts"  # version 2.0.0
    mkv = clipmaker.make_clip(tmp_path / "b.mkv", fps=25, frames=30, gop=25)
    gpu, cpu = decode_both(mkv, [0.0, 0.5])
    assert read(gpu) == read(cpu)


def test_stamps_follow_the_decode_order_from_pynvvideocodec_2_2():
    assert [nvdec.stamps_in_decode_order(v) for v in ("2.2.4", "2.3.0", "3.0", "2.0.5", "1.9", "unknown")] == [
        True, True, True, False, False, True]


@pytest.mark.parametrize("stamps", ["dts", "pts"])
def test_a_numbering_that_disagrees_with_the_timestamps_is_refused(stand_in, h264_clip, stamps):
    stand_in["shift"], stand_in["stamps"] = 10, stamps
    with pytest.raises(DecoderUnavailable, match="frame numbering differs"):
        NvdecDecoder(0, device=CPU).decode_frames(probe(h264_clip), [0.0, 0.5, 1.0])


def test_missing_frames_are_refused(stand_in, h264_clip):
    stand_in["short"] = True
    with pytest.raises(DecoderUnavailable, match="returned 2 frames for 3"):
        NvdecDecoder(0, device=CPU).decode_frames(probe(h264_clip), [0.0, 0.5, 1.0])


def job_spec(path, fmt):
    return parse_job({"id": f"n-{fmt}", "input": str(path), "format": fmt, "fps": 10, "seek": 0.3, "duration": 1.2},
                     default_id="n", input_root=path.parent)


def on_nvdec_path(monkeypatch) -> None:
    """Jobs asked for on "cuda" take the adapter (with the stand-in decoder, on the CPU)."""
    monkeypatch.setattr(job, "choose_device", lambda requested, media: DeviceChoice("cuda:0", "nvdec", "test"))
    monkeypatch.setattr(job, "_gpu_decoder", lambda choice: NvdecDecoder(0, device=CPU))


def run_both(monkeypatch, spec, tmp_path):
    """``spec`` on the nvdec path and on the CPU path: (the nvdec Result, the CPU Result)."""
    on_nvdec_path(monkeypatch)
    return (job.run_job(spec, tmp_path / "nvdec", PyAVDecoder(), device="cuda"),
            job.run_job(spec, tmp_path / "cpu", PyAVDecoder(), device="cpu"))


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_a_job_on_the_nvdec_path_makes_the_same_animation_as_the_cpu(stand_in, monkeypatch, h264_clip, tmp_path, fmt):
    import clients

    on_nvdec, on_cpu = run_both(monkeypatch, job_spec(h264_clip, fmt), tmp_path)
    assert on_nvdec.ok and on_nvdec.device == "nvdec" and on_nvdec.notes == ()
    assert (on_nvdec.frames, on_nvdec.duration, on_nvdec.width) == (on_cpu.frames, on_cpu.duration, on_cpu.width)
    a, b = clients.pillow_frames(on_cpu.output), clients.pillow_frames(on_nvdec.output)
    assert [d for _, d in a] == [d for _, d in b]
    assert [clipmaker.read_index(f) for f, _ in a] == [clipmaker.read_index(f) for f, _ in b]
    assert psnr(np.stack([f for f, _ in a]), np.stack([f for f, _ in b])) >= 40


def test_a_refusal_mid_job_falls_back_to_the_cpu_with_the_reason(stand_in, monkeypatch, h264_clip, tmp_path):
    stand_in["shift"] = 0
    on_nvdec_path(monkeypatch)
    result = job.run_job(job_spec(h264_clip, "gif"), tmp_path, PyAVDecoder(), device="cuda")
    assert result.ok and result.device == "pyav"
    assert any("frame numbering differs" in n and n.startswith("fallback: the GPU path failed on cuda:0") for n in result.notes)


# Streams (issue 14 item 2): never the NULL stream; the copy done before the buffers are reused.


class RecordingStream:
    """What decode_stream hands the adapter on a GPU, recording its calls among the decoder's."""

    handle = 0x7F3A_0000

    def activate(self):
        class Active:
            def __enter__(self_):
                StandInDecoder.events.append("enter")

            def __exit__(self_, *exc):
                StandInDecoder.events.append("exit")

        return Active()

    def synchronize(self):
        StandInDecoder.events.append("sync")

    def hand_over(self, tensor):
        StandInDecoder.events.append("hand over")


def test_the_decoder_gets_a_dedicated_stream_and_each_batch_is_done_before_the_next_fetch(stand_in, monkeypatch, tmp_path):
    monkeypatch.setattr(nvdec, "decode_stream", lambda device, held: RecordingStream())
    path = clipmaker.make_clip(tmp_path / "s.mp4", fps=25, frames=FETCH_BATCH + 10, width=160, height=120)
    NvdecDecoder(0, device=CPU).decode_frames(probe(path), [k / 25 for k in range(FETCH_BATCH + 5)])
    assert [c["cuda_stream"] for c in StandInDecoder.created] == [RecordingStream.handle]
    batch = ["fetch"] + ["import"] * FETCH_BATCH + ["sync"]
    assert StandInDecoder.events == ["enter", *batch, "fetch", *["import"] * 5, "sync", "exit", "hand over"]


def test_the_current_stream_is_used_unless_it_is_the_default_stream():
    made = []

    def dedicated():
        made.append("own")
        return "own"

    assert choose_stream("thread's", "default", dedicated) == "thread's" and made == []
    assert choose_stream("default", "default", dedicated) == "own" and made == ["own"]


def test_a_thread_on_the_default_stream_makes_one_stream_of_its_own_for_all_its_clips(monkeypatch):
    """A new stream per clip would give the decoder another handle each time, and a decoder stays
    on its stream: it could never be reused."""
    made = []

    class FakeStream:
        def __init__(self, device=None):
            self.cuda_stream = 0x5000 + len(made)
            made.append(self)

    default = types.SimpleNamespace(cuda_stream=0)  # what torch's default stream hands a decoder
    monkeypatch.setattr(nvdec.torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(nvdec.torch.cuda, "current_stream", lambda device=None: default)
    monkeypatch.setattr(nvdec.torch.cuda, "default_stream", lambda device=None: default)
    cuda, held = torch.device("cuda", 0), threading.local()
    handles = [nvdec.decode_stream(cuda, held).handle for _ in range(3)]
    assert handles == [handles[0]] * 3 and handles[0] != 0 and len(made) == 1
    other = []
    thread = threading.Thread(target=lambda: other.append(nvdec.decode_stream(cuda, held).handle))
    thread.start()
    thread.join()
    assert other[0] != handles[0] and len(made) == 2  # another thread, another stream


def test_on_a_cpu_device_no_stream_is_given_at_all(stand_in, h264_clip):
    NvdecDecoder(0, device=CPU).decode_frames(probe(h264_clip), [0.0, 0.5])
    assert StandInDecoder.created[0]["cuda_stream"] is None  # the stand-in refuses an explicit 0


# Decoder reuse (item 3): one long-lived decoder per thread, reconfigured per clip.


def test_jobs_on_one_thread_create_one_decoder_and_reconfigure_it_for_each_next_clip(stand_in, h264_clip, clip_10bit,
                                                                                      rotated_clip):
    adapter = NvdecDecoder(0, device=CPU)
    clips = [h264_clip, clip_10bit, rotated_clip, h264_clip]
    shown = [read(adapter.decode_frames(probe(path), [0.0, 0.4])) for path in clips]
    assert shown == [[0, 10], [0, 10], [0, 10], [0, 10]]  # each clip's own frames, not the previous file's
    assert len(StandInDecoder.created) == 1
    assert StandInDecoder.reconfigured == [str(p) for p in clips[1:]]
    created = StandInDecoder.created[0]
    assert (created["max_width"], created["max_height"]) == (MAX_WIDTH, MAX_HEIGHT)


def test_a_first_clip_larger_than_the_default_raises_the_decoders_maximum(stand_in, monkeypatch, h264_clip):
    monkeypatch.setattr(nvdec, "MAX_WIDTH", 200)
    monkeypatch.setattr(nvdec, "MAX_HEIGHT", 100)
    media = probe(h264_clip)
    NvdecDecoder(0, device=CPU).decode_frames(media, [0.0])
    created = StandInDecoder.created[0]
    assert (created["max_width"], created["max_height"]) == (max(200, media.width), max(100, media.height))


def test_the_decoders_maximum_stays_within_what_nvdec_decodes_in_that_codec(stand_in, tmp_path):
    """An H200 refused an MPEG-4 Part 2 decoder created with the default 3840x2160 maximum
    ("Resolution not supported on this GPU", 2048x2048 the most): the maximum asked is capped."""
    clip = clipmaker.make_clip(tmp_path / "m.mp4", codec="mpeg4", fps=25, frames=10)
    NvdecDecoder(0, device=CPU).decode_frames(probe(clip), [0.0])
    created = StandInDecoder.created[0]
    assert (created["max_width"], created["max_height"]) == nvdec_caps.HOPPER_NVDEC["mpeg4"].max_size


def test_two_threads_get_two_decoders(stand_in, h264_clip):
    adapter = NvdecDecoder(0, device=CPU)
    media = probe(h264_clip)

    def two_jobs():
        for _ in range(2):
            adapter.decode_frames(media, [0.0, 0.4])

    errors = run_together(two_jobs, 2)
    assert errors == []
    assert len(StandInDecoder.created) == 2
    assert len({c["thread"] for c in StandInDecoder.created}) == 2
    assert len(StandInDecoder.reconfigured) == 2  # each thread's second job


def test_a_decoder_that_cannot_be_reconfigured_is_replaced(stand_in, h264_clip, rotated_clip):
    stand_in["refuse_reconfigure"] = True
    adapter = NvdecDecoder(0, device=CPU)
    adapter.decode_frames(probe(h264_clip), [0.0])
    clip = adapter.decode_frames(probe(rotated_clip), [0.0, 0.4])
    assert read(clip) == [0, 10]
    assert len(StandInDecoder.created) == 2 and StandInDecoder.reconfigured == [str(rotated_clip)]


def test_a_refusal_about_the_file_keeps_the_decoder_for_the_next_clip(stand_in, h264_clip):
    adapter = NvdecDecoder(0, device=CPU)
    stand_in["shift"] = 0
    with pytest.raises(DecoderUnavailable, match="frame numbering differs"):
        adapter.decode_frames(probe(h264_clip), [0.0])
    StandInDecoder.created[0]["decoder"].shift = None  # the next file numbers its frames right
    assert read(adapter.decode_frames(probe(h264_clip), [0.4])) == [10]
    assert len(StandInDecoder.created) == 1 and len(StandInDecoder.reconfigured) == 1


def test_a_decoder_that_failed_inside_is_not_reused(stand_in, monkeypatch, h264_clip):
    adapter = NvdecDecoder(0, device=CPU)
    adapter.decode_frames(probe(h264_clip), [0.0])
    monkeypatch.setattr(StandInDecoder, "get_batch_frames_by_index", lambda self, indices: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        adapter.decode_frames(probe(h264_clip), [0.0])
    monkeypatch.undo()
    adapter.decode_frames(probe(h264_clip), [0.0])
    assert len(StandInDecoder.created) == 2


# Index lists (item 7): never empty, never a number the decoder does not count.


def test_no_instants_is_refused_before_any_decoder_is_made(stand_in, h264_clip):
    with pytest.raises(ValueError, match="no instants"):
        NvdecDecoder(0, device=CPU).decode_frames(probe(h264_clip), [])
    assert StandInDecoder.created == [] and StandInDecoder.log == []


def test_an_empty_batch_never_reaches_the_decoder():
    class Untouchable:
        def get_batch_frames_by_index(self, indices):
            raise AssertionError("called")

    with pytest.raises(ValueError, match="no frame numbers"):
        nvdec._fetch_batch(Untouchable(), [])


def test_frames_the_decoder_does_not_count_are_refused_before_fetching(stand_in, h264_clip):
    stand_in["counted"] = 5  # 2.2.x's wrapper would drop 10 and 20 and could send an empty list
    with pytest.raises(DecoderUnavailable, match="nvdec counts 5 frames"):
        NvdecDecoder(0, device=CPU).decode_frames(probe(h264_clip), [0.4, 0.8])
    assert StandInDecoder.log == []


# P016 strides (item 8): the re-stride only for 2.0.x's layout.


def test_element_strides_are_kept_and_only_2_0_strides_are_rewritten():
    words = torch.arange(6 * 10, dtype=torch.int32).to(torch.uint16)
    pitched = words.as_strided((6, 8), (10, 1))  # 2.2.x: (pitch, 1) in elements
    kept = nvdec._surface(pitched, 4, 10)
    assert kept.stride() == (10, 1) and torch.equal(kept.view(torch.uint16).int(), pitched.int())
    old = words.as_strided((6, 8), (8, 2))  # 2.0.x: the packed buffer, exported as every other word
    fixed = nvdec._surface(old, 4, 10)
    assert fixed.stride() == (8, 1) and torch.equal(fixed.view(torch.uint16).reshape(-1).int(), words[:48].int())


def test_a_column_stride_that_is_neither_layout_is_refused():
    words = torch.zeros(6 * 24, dtype=torch.int32).to(torch.uint16)
    with pytest.raises(DecoderUnavailable, match="strides"):
        nvdec._surface(words.as_strided((6, 8), (24, 3)), 4, 10)
    with pytest.raises(DecoderUnavailable, match="strides"):
        nvdec._surface(words.as_strided((6, 8), (16, 2)), 4, 10)  # a pitch with 2.0.x's column stride: not 2.0.x


def test_frames_handed_to_another_stream_make_it_wait_for_the_decode_streams_work():
    calls = []

    class Stream:
        def __init__(self, name):
            self.name = name

        def wait_stream(self, other):
            calls.append(f"{self.name} waits for {other.name}")

    class Frames:
        def record_stream(self, stream):
            calls.append(f"recorded on {stream.name}")

    own, caller = Stream("decode"), Stream("caller")
    nvdec._TorchStream(own, caller).hand_over(Frames())
    assert calls == ["caller waits for decode", "recorded on caller"]
    calls.clear()
    nvdec._TorchStream(own, own).hand_over(Frames())  # the GPU node's threads: decoded on their own stream
    assert calls == []


# HDR and BT.2020 SDR: the CPU path's colour steps on the decoder's planes (engine/decode/wide_colour.py)

needs_hdr_clips = pytest.mark.skipif(not clipmaker.ffmpeg_can(*clipmaker.HDR_CLIPS),
                                     reason="needs ffmpeg with zscale and libx265 (Debian's ffmpeg has them)")


@needs_hdr_clips
@pytest.mark.parametrize("transfer, fields, floor", [
    ("smpte2084", {"width": 160, "height": 120}, 45),  # shrunk: the planes route, the CPU's own function
    ("arib-std-b67", {"width": 160, "height": 120}, 45),
    ("smpte2084", {}, 30),  # kept at its size: R'G'B' from the planes here, FFmpeg's scaler on the CPU
    ("smpte2084", {"width": 200, "height": 200, "fit": "pad", "pad_colour": "#3060C0"}, 30),
])
def test_hdr_jobs_on_the_nvdec_path_are_tone_mapped_like_on_the_cpu(stand_in, monkeypatch, tmp_path, transfer, fields,
                                                                      floor):
    """HDR went to the CPU on a GPU node; NVDEC's P016 words (the 10-bit codes in the high bits)
    now take the CPU path's steps: the same pictures, the same note."""
    import clients

    clip = clipmaker.hdr_clip(tmp_path / "hdr.mp4", transfer)
    spec = parse_job({"id": "h", "input": str(clip), "format": "webp", "fps": 5, "seek": 0.2, "duration": 1.2,
                      **fields}, default_id="h", input_root=tmp_path)
    on_nvdec, on_cpu = run_both(monkeypatch, spec, tmp_path)
    name = {"smpte2084": "PQ", "arib-std-b67": "HLG"}[transfer]
    assert on_nvdec.ok and on_nvdec.device == "nvdec", on_nvdec.notes
    assert f"HDR ({name}, BT.2020) tone-mapped to SDR BT.709" in on_nvdec.notes
    assert (on_nvdec.frames, on_nvdec.width, on_nvdec.height) == (on_cpu.frames, on_cpu.width, on_cpu.height)
    a, b = clients.pillow_frames(on_cpu.output), clients.pillow_frames(on_nvdec.output)
    assert psnr(np.stack([f for f, _ in a]), np.stack([f for f, _ in b])) >= floor
    if "pad_colour" in fields:  # the bars painted again after the tone map (lossy WebP: within a few levels)
        for frames in (a, b):
            assert np.abs(frames[0][0][0, :40].astype(int) - (0x30, 0x60, 0xC0)).max() <= 8


def shrunk_on_both_paths(clip: Path, instants: list[float], size: tuple[int, int]):
    """``clip``'s frames at ``instants``, fitted to ``size`` as a GIF job would: (the NVDEC path's
    with the stand-in decoder, the CPU path's)."""
    from animated_previews.engine.render import Fitter

    media = probe(clip)
    spec = parse_job({"id": "s", "input": str(clip), "format": "gif", "fps": 5, "duration": 1, "width": size[0],
                      "height": size[1]}, default_id="s", input_root=clip.parent)
    gpu = NvdecDecoder(0, device=CPU).decode_frames(media, instants, fit=Fitter(spec, media))
    cpu = PyAVDecoder().decode_frames(media, instants, fit=Fitter(spec, media))
    return gpu, cpu


@needs_hdr_clips
def test_hdr_frames_fetched_as_p016_are_the_cpu_paths_pictures_on_the_planes_route(stand_in, tmp_path):
    """Shrunk frames go through the very function the CPU path uses, from the same codes."""
    clip = clipmaker.hdr_clip(tmp_path / "pq.mp4", "smpte2084")
    gpu, cpu = shrunk_on_both_paths(clip, [0.2, 0.6, 1.0], (160, 120))
    assert gpu.tone_mapped == cpu.tone_mapped == "pq"
    assert torch.equal(gpu.frames.contiguous(), cpu.frames.contiguous())


@needs_hdr_clips
def test_p3_hdr_frames_are_converted_from_p3_on_the_nvdec_path_too(stand_in, tmp_path):
    """The primaries are read once per file from the first frame (StreamTags.hdr_primaries) and
    go to the same tone map: the CPU path's bytes."""
    clip = clipmaker.hdr_clip(tmp_path / "p3.mp4", "smpte2084", primaries="smpte432")
    gpu, cpu = shrunk_on_both_paths(clip, [0.2, 0.6], (160, 120))
    assert gpu.hdr_primaries == cpu.hdr_primaries == "p3"
    assert torch.equal(gpu.frames.contiguous(), cpu.frames.contiguous())


@needs_hdr_clips
def test_a_pq_streams_maxcll_sets_the_peak_on_the_nvdec_path_too(stand_in, tmp_path):
    """Read once per file from the first frame (StreamTags.peak_nits): MaxCLL 203 leaves reference
    white at SDR white, as on the CPU path (without it the white patch is rolled off to 228)."""
    clip = clipmaker.pq_card(tmp_path / "cll.mp4", "hdr10=1:max-cll=203,100")
    gpu, cpu = shrunk_on_both_paths(clip, [0.4], (32, 32))
    assert int(gpu.frames[0, 1, 2:12, 2:12].float().mean().round()) >= 253  # the white patch, shrunk
    assert torch.equal(gpu.frames.contiguous(), cpu.frames.contiguous())


@needs_hdr_clips
def test_a_rotated_and_mirrored_hdr_clip_is_turned_on_the_nvdec_path_as_on_the_cpu(stand_in, tmp_path):
    clip = clipmaker.hdr_clip(tmp_path / "pq.mp4", "smpte2084")
    turned = clipmaker.with_display_matrix(clip, tmp_path / "turned.mp4", (0, -1, -1, 0), (240, 320))
    media = probe(turned)
    mirrored, turns = read_stream_tags_of(turned)
    assert mirrored and turns % 2  # a transpose: mirrored, and a quarter turn
    from animated_previews.engine.render import Fitter

    for fields in ({"width": 120}, {}):
        spec = parse_job({"id": "t", "input": str(turned), "format": "gif", "fps": 5, "duration": 1, **fields},
                          default_id="t",
                         input_root=tmp_path)
        gpu = NvdecDecoder(0, device=CPU).decode_frames(media, [0.6], fit=Fitter(spec, media)).frames
        cpu = PyAVDecoder().decode_frames(media, [0.6], fit=Fitter(spec, media)).frames
        assert gpu.shape == cpu.shape and gpu.shape[-2] > gpu.shape[-1]  # shown upright: taller than wide
        assert psnr(gpu[0].permute(1, 2, 0).numpy(), cpu[0].permute(1, 2, 0).numpy()) >= 30


def read_stream_tags_of(path) -> tuple[bool, int]:
    tags = frame_index.read_stream_tags(probe(path))
    return tags.mirrored, tags.turns


def test_frames_that_say_pq_under_a_header_that_says_sdr_are_tone_mapped_on_the_nvdec_path_too(stand_in, tmp_path):
    """The frames' own tags decide, as on the CPU path (an 8-bit stream tagged PQ in its SEI)."""
    path = clipmaker.make_clip(tmp_path / "pq.mp4", fps=25, frames=10, width=160, height=120, encoder_options={
        "x264-params": "transfer=smpte2084:colorprim=bt2020:colormatrix=bt2020nc"})
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).color_trc == 16  # SMPTE ST 2084
    gpu, cpu = decode_both(path, [0.0, 0.2])
    assert gpu.tone_mapped == cpu.tone_mapped == "pq"
    assert psnr(gpu.frames.permute(0, 2, 3, 1).numpy(), cpu.frames.permute(0, 2, 3, 1).numpy()) >= 30
    from animated_previews.engine.render import Fitter  # shrunk: 8-bit frames take the RGB route on both paths

    media = probe(path)
    spec = parse_job({"id": "e", "input": str(path), "format": "gif", "fps": 5, "duration": 0.4, "width": 80},
                     default_id="e", input_root=tmp_path)
    gpu = NvdecDecoder(0, device=CPU).decode_frames(media, [0.0, 0.2], fit=Fitter(spec, media)).frames
    cpu = PyAVDecoder().decode_frames(media, [0.0, 0.2], fit=Fitter(spec, media)).frames
    assert gpu.shape == cpu.shape == (2, 3, 60, 80)
    assert psnr(gpu.permute(0, 2, 3, 1).numpy(), cpu.permute(0, 2, 3, 1).numpy()) >= 30


def test_frames_with_bt2020_primaries_are_gamut_mapped_on_the_nvdec_path_too(stand_in, tmp_path):
    path = clipmaker.make_clip(tmp_path / "wide.mp4", fps=25, frames=10, width=160, height=120, encoder_options={
        "x264-params": "transfer=bt2020-10:colorprim=bt2020:colormatrix=bt2020nc"})
    gpu, cpu = decode_both(path, [0.0, 0.2])
    assert gpu.gamut_mapped and cpu.gamut_mapped and gpu.tone_mapped is None
    assert psnr(gpu.frames.permute(0, 2, 3, 1).numpy(), cpu.frames.permute(0, 2, 3, 1).numpy()) >= 40


@pytest.mark.parametrize("dtype", [torch.uint16, torch.int16])
def test_p016_words_become_their_samples_codes_whichever_way_they_are_typed(dtype):
    codes = torch.tensor([0, 64, 512, 940, 1023], dtype=torch.int32)
    words = (codes << 6).to(torch.int32)
    given = words.to(torch.int16) if dtype == torch.int16 else words.to(torch.uint16)  # 1023 << 6 wraps in int16
    assert torch.equal(wide_colour.sample_codes(given, 10), codes)
    assert torch.equal(wide_colour.sample_codes((codes << 4).to(dtype), 12), codes)
    eight = torch.tensor([16, 235], dtype=torch.uint8)
    assert wide_colour.sample_codes(eight, 8) is eight


def test_sdr_bt709_frames_are_not_for_the_wide_colour_steps():
    tags = StreamTags(turns=0, matrix="bt709", full_range=False, bits=8)
    with pytest.raises(ValueError, match="HDR or wide-gamut"):
        wide_colour.wide_colour(torch.zeros((1, 4, 4), dtype=torch.uint8), torch.zeros((1, 2, 2, 2), dtype=torch.uint8),
                                tags, None)


@needs_hdr_clips
@pytest.mark.parametrize("fields", [{"width": 160}, {}], ids=["shrunk", "source-size"])
def test_an_odd_sized_hdr_clip_keeps_its_last_column_and_row_on_the_nvdec_path(stand_in, tmp_path, fields):
    """VP9 profile 2 at 321x241: 4:2:0 chroma of ceil(W/2) x ceil(H/2), as on the CPU path."""
    clip = clipmaker.hdr_clip(tmp_path / "odd.mp4", "smpte2084", (321, 241))
    media = probe(clip)
    from animated_previews.engine.render import Fitter

    spec = parse_job({"id": "o", "input": str(clip), "format": "gif", "fps": 5, "duration": 1, **fields},
                     default_id="o", input_root=tmp_path)
    gpu = NvdecDecoder(0, device=CPU).decode_frames(media, [0.2, 0.6], fit=Fitter(spec, media))
    cpu = PyAVDecoder().decode_frames(media, [0.2, 0.6], fit=Fitter(spec, media))
    assert gpu.frames.shape == cpu.frames.shape and gpu.tone_mapped == "pq"
    assert psnr(gpu.frames.permute(0, 2, 3, 1).numpy(), cpu.frames.permute(0, 2, 3, 1).numpy()) >= 30
    last = (gpu.frames[:, :, -1, :].float() - cpu.frames[:, :, -1, :].float()).abs().mean()  # the last row
    assert last < 6, last
