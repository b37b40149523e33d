"""The PyAV decoder hands over, for each instant, the source frame on screen at that instant.

Every fixture frame shows its own index (tests/clipmaker.py), so these tests prove which source
frame landed at each output instant, for several codecs, after seeking.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest
import torch

import clipmaker
from animated_previews.engine.decode import frame_index
from animated_previews.engine.decode.pyav import PyAVDecoder, _Unshown
from animated_previews.engine.errors import EngineError, ErrorCode
from animated_previews.engine.job import run_job
from animated_previews.engine.probe import probe
from animated_previews.engine.spec import parse_job


def shown_indices(path, instants):
    clip = PyAVDecoder().decode_frames(probe(path), instants)
    frames = clip.frames.permute(0, 2, 3, 1).numpy()
    return [clipmaker.read_index(frames[i]) for i in clip.index.tolist()], clip


def expected(instants, fps, first=0):
    return [first + math.floor(t * fps + 1e-6) for t in instants]


@pytest.mark.parametrize("codec", clipmaker.available_codecs())
def test_each_codec_delivers_the_frame_on_screen_at_each_instant(tmp_path, codec):
    path = clipmaker.make_clip(tmp_path / f"c-{codec}", codec=codec, fps=25, frames=50, gop=10)
    instants = [0.52 + k / 10 for k in range(12)]
    indices, clip = shown_indices(path, instants)
    assert indices == expected(instants, 25)


def test_seeking_decodes_from_the_keyframe_before_the_start_not_from_the_beginning(tmp_path):
    path = clipmaker.make_clip(tmp_path / "long.mp4", fps=25, frames=400, gop=50, width=160, height=120)
    instants = [13.1 + k / 5 for k in range(5)]
    indices, clip = shown_indices(path, instants)
    assert indices == expected(instants, 25)
    # keyframe at 12.0 s (frame 300), last needed frame 342: about 43 frames, never the 342 from 0
    assert clip.frames_decoded <= 50 + 2


def test_low_source_rate_is_decoded_once_per_source_frame(tmp_path):
    path = clipmaker.make_clip(tmp_path / "slow.mp4", fps=5, frames=10, width=160, height=120)
    instants = [k / 30 for k in range(30)]
    indices, clip = shown_indices(path, instants)
    assert indices == expected(instants, 5)
    assert clip.frames.shape[0] == 5  # five distinct frames, each used six times


def test_variable_frame_rate_uses_the_real_timestamps(tmp_path):
    pts = [0.0, 0.1, 0.15, 0.5, 0.55, 0.9, 1.4, 1.45, 1.5, 2.0]
    path = clipmaker.make_clip(tmp_path / "vfr.mkv", pts_seconds=pts, width=160, height=120)
    instants = [k / 10 for k in range(20)]
    indices, _ = shown_indices(path, instants)
    want = [max(i for i, p in enumerate(pts) if p <= t + 1e-6) for t in instants]
    assert indices == want


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied_so_frames_come_out_upright(tmp_path, rotation):
    path = clipmaker.make_clip(tmp_path / f"rot{rotation}.mp4", fps=10, frames=10, width=192, height=128, rotation=rotation)
    indices, clip = shown_indices(path, [0.0, 0.35])
    assert indices == [0, 3]  # the reader refuses rotated or mirrored pictures
    upright = (128, 192) if rotation % 180 == 0 else (192, 128)
    assert (clip.height, clip.width) == upright


def test_ten_bit_video_gives_the_same_colours_as_eight_bit(tmp_path):
    eight = clipmaker.make_clip(tmp_path / "8.mp4", fps=10, frames=5, width=160, height=120)
    ten = clipmaker.make_clip(tmp_path / "10.mp4", fps=10, frames=5, width=160, height=120, pix_fmt="yuv420p10le")
    a = PyAVDecoder().decode_frames(probe(eight), [0.2]).frames.float()
    b = PyAVDecoder().decode_frames(probe(ten), [0.2]).frames.float()
    assert (a - b).abs().mean() < 3.0  # same picture, only compression noise apart


def test_the_last_frame_stays_on_screen_to_the_end(tmp_path):
    path = clipmaker.make_clip(tmp_path / "short.mp4", fps=10, frames=10, width=160, height=120)
    indices, _ = shown_indices(path, [0.85, 0.95, 0.99])
    assert indices == [8, 9, 9]


def test_a_truncated_file_fails_cleanly_or_gives_the_frames_it_has(tmp_path):
    whole = clipmaker.make_clip(tmp_path / "whole.mp4", fps=25, frames=100, width=160, height=120, faststart=True)
    cut = clipmaker.make_truncated(whole, tmp_path / "cut.mp4", 0.5)
    try:
        media = probe(cut)
        clip = PyAVDecoder().decode_frames(media, [3.0, 3.5])
    except EngineError as error:
        assert error.code in (ErrorCode.INVALID_VIDEO_FORMAT, ErrorCode.INVALID_TIME_RANGE)
    else:  # what was decoded must still be real frames of the video, in order
        frames = clip.frames.permute(0, 2, 3, 1).numpy()
        got = [clipmaker.read_index(frames[i]) for i in clip.index.tolist()]
        assert got == sorted(got) and all(0 <= i < 100 for i in got)


@pytest.mark.parametrize("declared_fps", [None, 10.0])
def test_frames_a_fit_keeps_as_they_are_are_collected_into_one_clip_without_a_copy(tmp_path, declared_fps):
    """A fit that hands the first chunk back as it is (frames kept at their size): the later frames
    go straight into one buffer, and the clip is every distinct frame, in order, exactly as
    decoding without a fit gives it; a frame that repeats (instants past the last frame) is not
    stored twice. A header whose frame rate undercounts the frames (10 for 25) makes the buffer
    too small: the frames past it go on in chunks, to the same clip."""
    import dataclasses

    import torch

    from animated_previews.engine.decode import FIT_CHUNK

    path = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=75, width=96, height=64)
    instants = [k / 25 for k in range(70)] + [3.2, 3.4]  # past the last frame: the last stays on screen
    calls: list[int] = []

    def keeps(chunk, rotation):
        calls.append(chunk.shape[0])
        return chunk

    media = probe(path) if declared_fps is None else dataclasses.replace(probe(path), fps=declared_fps)
    kept = PyAVDecoder().decode_frames(media, instants, fit=keeps)
    whole = PyAVDecoder().decode_frames(probe(path), instants)

    # the rest never needed the fit, or (a buffer of 36: 2 chunks) only the chunks past the buffer
    assert calls == ([FIT_CHUNK] if declared_fps is None else [FIT_CHUNK] * 3 + [71 - 4 * FIT_CHUNK])
    assert tuple(kept.frames.shape) == (71, 3, 64, 96) == tuple(whole.frames.shape)  # frames 0-69, then 74
    assert torch.equal(kept.frames, whole.frames) and torch.equal(kept.index, whole.index)
    assert kept.frames.is_contiguous(memory_format=torch.channels_last)
    assert [clipmaker.read_index(kept.frames[k].permute(1, 2, 0).numpy()) for k in (0, 16, 40, 70)] == [0, 16, 40, 74]
    assert kept.index.tolist()[-3:] == [69, 70, 70]


def test_with_a_fit_frames_are_shrunk_chunk_by_chunk_to_the_same_pixels(tmp_path):
    """A long clip never sits in memory at source size: the decoder hands ``fit`` at most
    FIT_CHUNK frames at a time, and the result is exactly decode-everything-then-resize."""
    import torch

    from animated_previews.engine.decode import FIT_CHUNK
    from animated_previews.kernels.resize import resize

    path = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=75, width=320, height=240)
    instants = [k / 25 for k in range(70)]
    chunks: list[tuple[int, int]] = []

    def fit(chunk, rotation):
        chunks.append((chunk.shape[0], rotation))
        return resize(chunk, 60, 80)

    fitted = PyAVDecoder().decode_frames(probe(path), instants, fit=fit)
    whole = PyAVDecoder().decode_frames(probe(path), instants)

    assert [n for n, _ in chunks] == [FIT_CHUNK] * (70 // FIT_CHUNK) + [70 % FIT_CHUNK]
    assert tuple(fitted.frames.shape) == (70, 3, 60, 80)
    assert torch.equal(fitted.frames, resize(whole.frames, 60, 80))
    assert torch.equal(fitted.index, whole.index) and fitted.source_times == whole.source_times
    shown = fitted.frames.permute(0, 2, 3, 1).numpy()
    assert clipmaker.read_index(resize(whole.frames[40:41], 240, 320).permute(0, 2, 3, 1).numpy()[0]) == 40
    assert shown.shape == (70, 60, 80, 3)


def test_a_fit_sees_rotated_frames_upright(rotated_clip):
    turns: set[int] = set()

    def fit(chunk, rotation):
        turns.add(rotation)
        assert tuple(chunk.shape[-2:]) == (320, 240)  # shown 240 wide, 320 tall
        return chunk

    clip = PyAVDecoder().decode_frames(probe(rotated_clip), [0.0, 0.5], fit=fit)
    assert turns == {clip.rotation} and clip.rotation % 2 == 1


def test_interlaced_frames_show_one_field_not_both_moments(tmp_path):
    """Each coded frame holds frame k in its top field and frame k+40 in its bottom field (two
    moments, as a camera's fields are). The decoder shows one moment: the top field's."""
    import av

    path = tmp_path / "interlaced.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "8", "flags": "+ilme+ildct", "x264-params": "tff=1"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for k in range(25):
            woven = clipmaker.render_frame(k, 320, 240)
            woven[1::2] = clipmaker.render_frame(k + 40, 320, 240)[1::2]
            frame = av.VideoFrame.from_ndarray(woven, format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    instants = [k / 25 for k in range(0, 25, 3)]
    indices, clip = shown_indices(path, instants)
    assert indices == expected(instants, 25)
    assert clip.deinterlaced


def test_progressive_frames_are_left_alone(tmp_path):
    path = clipmaker.make_clip(tmp_path / "p.mp4", fps=25, frames=10, width=160, height=120)
    assert not PyAVDecoder().decode_frames(probe(path), [0.1]).deinterlaced


def test_the_jobs_fit_shrinks_a_rotated_clip_as_coded_then_turns_the_small_frames(rotated_clip):
    """The job's fit (engine.render.Fitter, a CodedFit) is handed frames as coded: it shrinks
    them and turns the small result, which is the picture turning first gives but for rounding:
    the resize's two passes run in the other order, and at hard edges the first pass's
    overshoot is clipped to a byte differently (59.4 dB apart when written, 0.07% of values
    more than a level apart)."""
    import torch

    from animated_previews.engine.render import Fitter
    from animated_previews.engine.spec import JobSpec

    media = probe(rotated_clip)
    spec = JobSpec(id="r", input=rotated_clip, format="gif", fps=5, width=120)
    coded_fit, upright_fit = Fitter(spec, media), Fitter(spec, media)
    coded = PyAVDecoder().decode_frames(media, [0.0, 0.5], fit=coded_fit)
    upright = PyAVDecoder().decode_frames(media, [0.0, 0.5], fit=lambda chunk, turns: upright_fit(chunk, turns))

    assert coded.frames.shape == upright.frames.shape == (2, 3, 160, 120)
    difference = (coded.frames.int() - upright.frames.int()).abs()
    assert 10 * torch.log10(255**2 / difference.double().square().mean()) >= 50
    assert (difference > 1).double().mean() < 0.005
    assert coded.frames.is_contiguous(memory_format=torch.channels_last)  # as the remap reads it
    assert coded.rotation == upright.rotation and coded.rotation % 2 == 1


def _damaged(tmp_path, packets: range | list[int]) -> Path:
    """A 30-frame clip whose ``packets`` (by number, in stream order) have a NAL length prefix
    overwritten: the H.264 decoder rejects each as invalid data, as it would a bad sector."""
    clip = clipmaker.make_clip(tmp_path / "clean.mp4", fps=10, frames=30, width=64, height=48)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        starts = [packet.pos for packet in container.demux(stream) if packet.size]
    data = bytearray(clip.read_bytes())
    for k in packets:
        data[starts[k]:starts[k] + 4] = b"\xff\xff\xff\xff"
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    return damaged


def test_a_damaged_packet_costs_its_frame_not_the_job(tmp_path):
    """Before (found by a sweep of odd files): one bad packet anywhere in the span failed the job
    with 'Invalid data found when processing input', though ffmpeg decodes the rest."""
    result = run_job(parse_job({"input": str(_damaged(tmp_path, [12])), "format": "gif", "fps": 10, "seek": 0,
                                "duration": 2.5}, default_id="j", input_root=tmp_path), tmp_path / "out", PyAVDecoder())
    assert result.ok, result.error_message
    assert result.frames == 25
    assert any("1 packet(s) of invalid data skipped" in note for note in result.notes)


def test_a_stream_of_mostly_damaged_packets_is_refused(tmp_path):
    result = run_job(parse_job({"input": str(_damaged(tmp_path, range(1, 30))), "format": "gif", "fps": 10,
                                "duration": 2.5}, default_id="j", input_root=tmp_path), tmp_path / "out", PyAVDecoder())
    assert result.error_code == "InvalidVideoFormat"
    assert "corrupt" in result.error_message


# Frames no instant shows: dropped where nothing refers to them (engine/decode/pyav.py _Unshown)

class _Packet:
    def __init__(self, pts):
        self.pts = pts


def _judge(pts_in_decode_order, instants, time_base=Fraction(1, 10)):
    unshown = _Unshown(instants, time_base, 0.0)
    return {p.pts: drop for p, drop in unshown.packets(iter([_Packet(t) for t in pts_in_decode_order]))}


def test_a_frame_is_dropped_only_when_no_instant_falls_between_its_time_and_the_next_frames():
    # frames every 0.1 s, shown at 0.25 and 0.55: frames 2 (0.2-0.3) and 5 (0.5-0.6) are shown
    verdict = _judge(range(10), [0.25, 0.55])
    assert [t for t, drop in verdict.items() if not drop] == [0, 2, 5, 9]  # 0: maybe first; 9: no next in sight
    # an instant on a frame's own time shows that frame, not the one before (the decoding loop's rule)
    assert _judge(range(10), [0.3])[3] is False and _judge(range(10), [0.3])[2] is True


def test_frames_out_of_order_are_judged_by_presentation_time():
    # decode order I0 P4 B2 B1 B3 P8 B6 B5 B7 ...: frame 1 is on screen from 0.1 to 0.2
    order = [0, 4, 2, 1, 3, 8, 6, 5, 7, 12, 10, 9, 11]
    verdict = _judge(order, [0.15, 0.72])
    assert [t for t in sorted(verdict) if not verdict[t]] == [0, 1, 7, 12]  # 12: no next frame in sight


def test_a_packet_without_time_or_without_a_next_frame_in_sight_is_kept():
    assert _judge([0, None, 2, 3], [0.05])[None] is False
    sparse = _judge([0, 1, 2] + [None] * 20 + [40], [0.05])
    assert sparse[2] is False  # the next frame's time is past the window: unsure, kept


_WITH_B_FRAMES = {"mpeg4": {"bf": "2"}, "mpeg2video": {"bf": "2"}}
"""Encoders that make no B-frames unless asked."""


@pytest.mark.parametrize("codec", clipmaker.available_codecs() + ["mpeg2video"])
def test_dropping_unshown_frames_changes_no_frame_shown(tmp_path, codec):
    name = f"b-{codec}.mkv" if codec == "mpeg2video" else f"b-{codec}"  # else the codec's own container
    path = clipmaker.make_clip(tmp_path / name, codec=codec, fps=30, frames=90, gop=30,
                               encoder_options=_WITH_B_FRAMES.get(codec))
    media = probe(path)
    for fps, start in ((7.5, 0.21), (15, 1.01), (24, 0.51), (60, 0.005)):  # none on a frame's time:
        # containers with millisecond clocks (WebM) put frame 14 at 0.467 s, after 14/30 s
        instants = [start + k / fps for k in range(int(1.5 * fps))]
        every = PyAVDecoder(skip_unshown=False).decode_frames(media, instants)
        dropped = PyAVDecoder().decode_frames(media, instants)
        assert torch.equal(dropped.frames, every.frames) and torch.equal(dropped.index, every.index)
        assert dropped.source_times == every.source_times and dropped.frames_end == every.frames_end
        threaded = PyAVDecoder(threads=2).decode_frames(media, instants)  # frame threads: the same drops
        assert torch.equal(threaded.frames, every.frames) and threaded.frames_decoded == dropped.frames_decoded
        assert dropped.frames_decoded <= every.frames_decoded
        if codec in _Unshown.CODECS and fps < 30:  # B-frames: at these rates some go unshown
            assert dropped.frames_decoded < every.frames_decoded
        frames = dropped.frames.permute(0, 2, 3, 1).numpy()
        assert [clipmaker.read_index(frames[i]) for i in dropped.index.tolist()] == expected(instants, 30)


def test_at_half_the_source_rate_the_disposable_frames_are_not_decoded(tmp_path):
    # I B P B P ... P with no B-frame referred to: in each 30-frame GOP, frames 1, 3 .. 27 are
    # B-frames and 29 a P-frame (the GOP's last), none shown at 15 fps
    path = clipmaker.make_clip(tmp_path / "b.mp4", codec="h264", fps=30, frames=90, encoder_options={
        "x264-params": "keyint=30:min-keyint=30:scenecut=0:bframes=1:b-adapt=0:b-pyramid=none"})
    instants = [k / 15 for k in range(45)]
    every = PyAVDecoder(skip_unshown=False).decode_frames(probe(path), instants)
    dropped = PyAVDecoder().decode_frames(probe(path), instants)
    assert every.frames_decoded == 90
    assert dropped.frames_decoded == 48  # the 45 shown and frames 29, 59, 89: P-frames, decoded; 42 dropped
    assert torch.equal(dropped.frames, every.frames)


def test_frames_are_dropped_only_where_the_container_stores_their_times(tmp_path):
    """AVI stores none: FFmpeg guesses them, wrongly for DivX's packed B-frames (a preview then
    showed the wrong frames), so nothing is dropped there."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg command to remux")
    path = clipmaker.make_clip(tmp_path / "b.mp4", codec="h264", fps=30, frames=60, gop=30)
    instants = [0.01 + k / 15 for k in range(29)]
    decoded = {}
    for container in ("mp4", "mkv", "ts", "avi"):
        copy = tmp_path / f"copy.{container}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-c", "copy", str(copy)], check=True)
        decoded[container] = [PyAVDecoder(skip_unshown=skip).decode_frames(probe(copy), instants).frames_decoded
                              for skip in (True, False)]
    assert all(dropping < every for dropping, every in (decoded["mp4"], decoded["mkv"], decoded["ts"]))
    assert decoded["avi"][0] == decoded["avi"][1]


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_a_matrix_said_only_by_the_container_is_the_one_used(tmp_path, container):
    """HEVC's decoder hands over the frames of a bitstream without colour tags untagged, whatever
    the container's tags say: a 360-row BT.709 clip was converted as BT.601 (players take the
    container's word). Both paths' rules (the GPU path reads them from frame_index) follow it."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg command")
    ffmpeg = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    tagged = tmp_path / "tagged.mp4"
    subprocess.run([*ffmpeg, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=10:duration=1", "-vf",
                    "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p", "-c:v", "libx265", "-x265-params",
                    "log-level=error:lossless=1:colormatrix=bt709", str(tagged)], check=True)
    bare = tmp_path / "bare.mp4"
    subprocess.run([*ffmpeg, "-i", str(tagged), "-vf", "setparams=colorspace=unknown", "-c:v", "libx265",
                    "-x265-params", "log-level=error:lossless=1", str(bare)], check=True)
    said = tmp_path / f"said.{container}"
    subprocess.run([*ffmpeg, "-i", str(bare), "-c", "copy", "-colorspace", "bt709", "-color_primaries", "bt709",
                    "-color_trc", "bt709", str(said)], check=True)  # an MP4 colr box holds all three
    with av.open(str(said)) as opened:
        assert next(opened.decode(video=0)).colorspace in (0, 2)  # the frames say nothing

    media = probe(said)
    ours = PyAVDecoder().decode_frames(media, [0.5]).frames.float()
    want = PyAVDecoder().decode_frames(probe(tagged), [0.5]).frames.float()
    untold = PyAVDecoder().decode_frames(probe(bare), [0.5]).frames.float()  # no word anywhere: BT.601
    assert media.colorspace == 1
    assert (ours - want).abs().max() <= 1
    assert (untold - want).abs().max() > 10
    assert frame_index.read_stream_tags(media).matrix == "bt709"


@pytest.mark.skipif(not clipmaker.ffmpeg_can("testsrc2", "libx264"), reason="needs the ffmpeg command with libx264")
@pytest.mark.parametrize("seek", [0.0, 13.3, 25.0])
def test_a_seek_into_mpeg_ts_decodes_from_the_key_frame_before_it_as_its_mp4_copy_does(tmp_path, seek):
    """x264's default key frames are 10 s apart. MPEG-TS has no index: a seek lands on any packet
    and the decoder drops frames up to the next key frame, so the first frame came late and the
    decoder tried again from 1, 5 and 30 s earlier: 25 s into this TS it kept 219 frames where the MP4
    copy decodes 87 (a 720p TS 35 s in: 375 against 101, 1.48 s against 0.27 s). The
    key frame before the span is now found by demuxing back, and decoding starts there."""
    ts, mp4 = clipmaker.ts_and_mp4_copy(tmp_path, "gop10s", 30)
    instants = [seek + k / 10 for k in range(10)]
    from_ts = PyAVDecoder().decode_frames(probe(ts), instants)
    from_mp4 = PyAVDecoder().decode_frames(probe(mp4), instants)
    assert from_ts.frames_decoded == from_mp4.frames_decoded, (from_ts.frames_decoded, from_mp4.frames_decoded)
    assert from_ts.source_times == pytest.approx(from_mp4.source_times, abs=1e-3)
    assert torch.equal(from_ts.frames[from_ts.index], from_mp4.frames[from_mp4.index])


@pytest.mark.skipif(not clipmaker.ffmpeg_can("testsrc2", "libx264"), reason="needs the ffmpeg command with libx264")
def test_without_the_key_frame_search_the_decoder_steps_back_and_shows_the_same_frames(tmp_path):
    """``key_frame_search=False`` is the other side of ``python -m bench.ts_seek``: the steps back
    alone, decoding from further back (219 frames 25 s into this TS, against 87), same pictures."""
    ts, _ = clipmaker.ts_and_mp4_copy(tmp_path, "gop10s", 30)
    instants = [25.0 + k / 10 for k in range(10)]
    searched = PyAVDecoder().decode_frames(probe(ts), instants)
    stepped = PyAVDecoder(key_frame_search=False).decode_frames(probe(ts), instants)
    assert stepped.frames_decoded > 2 * searched.frames_decoded, (stepped.frames_decoded, searched.frames_decoded)
    assert torch.equal(stepped.frames[stepped.index], searched.frames[searched.index])
