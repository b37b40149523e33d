"""Files made by FFmpeg's own encoders and muxers, beyond what PyAV fixtures make: other codecs and
containers, mislabelled files, stills, audio with cover art. Every one ends as the right Result."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import clipmaker
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.job import run_job
from animated_previews.engine.probe import probe
from animated_previews.engine.spec import parse_job

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="needs the ffmpeg command (Debian's ffmpeg; CI installs it)")

SOURCE = ["-f", "lavfi", "-i", "testsrc2=size=352x288:rate=25:duration=3"]

# name, ffmpeg arguments after the input, expected output size at width 160 (None: the job fails)
CASES = [
    ("prores.mov", ["-c:v", "prores_ks"], (160, 131)),
    ("mjpeg.avi", ["-c:v", "mjpeg", "-q:v", "3"], (160, 131)),
    ("theora.ogv", ["-c:v", "libtheora"], (160, 131)),
    ("wmv2.wmv", ["-c:v", "wmv2"], (160, 131)),
    ("flv1.flv", ["-c:v", "flv1"], (160, 131)),
    ("mpeg1.mpg", ["-c:v", "mpeg1video"], (160, 131)),
    ("h263.3gp", ["-c:v", "h263"], (160, 131)),
    ("vp9-10bit.webm", ["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p10le", "-b:v", "500k"], (160, 131)),
    ("dv-pal-wide.dv", ["-c:v", "dvvideo", "-s", "720x576", "-pix_fmt", "yuv420p", "-aspect", "16:9"], (160, 90)),
    ("ffv1.mkv", ["-c:v", "ffv1"], (160, 131)),
    ("x264-444.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv444p"], (160, 131)),
    ("x264-422-10bit.mkv", ["-c:v", "libx264", "-pix_fmt", "yuv422p10le"], (160, 131)),
    ("mpegts-named.mp4", ["-c:v", "mpeg2video", "-f", "mpegts"], (160, 131)),
    ("negative-start.mkv", ["-c:v", "libx264", "-output_ts_offset", "-1"], (160, 131)),
    ("animated.gif", [], (160, 131)),
    ("huffyuv.avi", ["-c:v", "huffyuv"], (160, 131)),
    ("grey.mp4", ["-c:v", "libx264", "-pix_fmt", "gray"], (160, 131)),
    ("vp9-alpha.webm", ["-vf", "format=yuva420p", "-c:v", "libvpx-vp9", "-auto-alt-ref", "0"], (160, 131)),
    ("interlaced.mp4", ["-vf", "setfield=tff", "-flags", "+ilme+ildct", "-c:v", "libx264"], (160, 131)),
]


def make(path: Path, args: list[str], source: list[str] = SOURCE) -> Path | None:
    done = subprocess.run([FFMPEG, "-v", "error", "-y", *source, *args, str(path)], capture_output=True, text=True)
    return path if done.returncode == 0 and path.exists() else None


def one_job(tmp_path: Path, source: Path, **fields):
    line = {"input": str(source), "format": "webp", "fps": 10, "seek": 0.5, "duration": 1, "width": 160, **fields}
    return run_job(parse_job(line, default_id="j", input_root=tmp_path), tmp_path / "out", PyAVDecoder())


@pytest.mark.parametrize("name,args,size", CASES, ids=[c[0] for c in CASES])
def test_other_codecs_and_containers_make_previews_of_the_right_shape(tmp_path, name, args, size):
    source = make(tmp_path / name, args)
    if source is None:
        pytest.skip(f"this ffmpeg cannot write {name}")
    result = one_job(tmp_path, source)
    assert result.ok, result.error_message
    assert (result.width, result.height, result.frames) == (*size, 10)


def test_audio_with_cover_art_is_audio_only(tmp_path):
    """An MP3's cover picture is a video stream flagged attached_pic: not a video."""
    source = make(tmp_path / "song.mp3", ["-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "mjpeg",
                                          "-disposition:v", "attached_pic", "-frames:v", "1"],
                  source=["-f", "lavfi", "-i", "sine=frequency=440:duration=3", *SOURCE])
    if source is None:
        pytest.skip("this ffmpeg cannot write an MP3 with cover art")
    assert one_job(tmp_path, source).error_code == "InvalidVideoFormat"


def test_a_still_image_is_a_clip_too_short_to_seek_into(tmp_path):
    source = make(tmp_path / "still.png", ["-frames:v", "1"])
    assert source is not None
    result = one_job(tmp_path, source)
    assert result.error_code == "InvalidTimeRange" and "0.040" in result.error_message
    assert one_job(tmp_path, source, seek=0, duration=0.04, fps=25).ok  # its one frame, asked for plainly


# Containers whose seek misleads the decoder (found by a sweep of odd files, 2026-12-04): after a
# seek to the first timestamp, an MPEG-TS holding H.264 or HEVC with B-frames gave no frame at all
# ("no frame could be decoded"); a program stream's seek to 0 landed on the key frame at 0.48 s, so
# the first frames of a preview from 0 showed 0.48 s. Every instant must show its own frame.
MISLEADING_SEEKS = [
    ("h264-bframes.ts", ["-c:v", "libx264"]),
    ("hevc-bframes.ts", ["-c:v", "libx265", "-x265-params", "log-level=error"]),
    ("camcorder.m2ts", ["-c:v", "libx264", "-output_ts_offset", "10", "-mpegts_m2ts_mode", "1", "-f", "mpegts"]),
    ("dvd.mpg", ["-c:v", "mpeg2video", "-q:v", "4", "-f", "vob"]),
]


# Raw elementary streams (cameras, DVRs, drones) carry no timestamps at all: the probe found no
# duration ("the video stream holds no frames"). Their frames count at the stream's rate.
RAW_STREAMS = [
    ("camera.h264", ["-c:v", "libx264", "-f", "h264"]),
    ("camera.hevc", ["-c:v", "libx265", "-x265-params", "log-level=error", "-f", "hevc"]),
]


@pytest.mark.parametrize("name,args", MISLEADING_SEEKS + RAW_STREAMS, ids=[c[0] for c in MISLEADING_SEEKS + RAW_STREAMS])
@pytest.mark.parametrize("first", [0.0, 1.2])
def test_every_instant_shows_its_own_frame_where_seeking_misleads_or_times_are_missing(tmp_path, name, args, first):
    source = make(tmp_path / name, args)
    if source is None:
        pytest.skip(f"this ffmpeg cannot write {name}")
    media = probe(source)
    assert media.duration == pytest.approx(3.0, abs=0.05)
    instants = [first + k / 10 for k in range(10)]
    clip = PyAVDecoder().decode_frames(media, instants)
    on_screen = [round(int(t * 25 + 1e-6) / 25, 3) for t in instants]  # 25 fps: the frame shown at t
    assert [round(t, 3) for t in clip.source_times] == on_screen


def test_packed_b_frames_in_avi_keep_their_cadence(tmp_path):
    """DivX/Xvid AVI with packed B-frames: the decoder hands frames over with pts that jump back
    and forth (3, 4, 6, 5...). Taken as they were, a 10 fps preview of 25 fps showed frames 12,
    13 (one step instead of two or three) and drifted; FFmpeg's best-effort rule (the dts, when
    the pts go backwards more often) keeps every step at 2 or 3 source frames once it has seen
    the pts go back (the third frame decoded; as in FFmpeg, the first steps may still be off)."""
    source = make(tmp_path / "xvid.avi", ["-c:v", "libxvid", "-bf", "2", "-q:v", "4"])
    if source is None:
        pytest.skip("this ffmpeg has no libxvid")

    with av.open(str(source)) as container:  # decode order: each frame's number in the file
        sequence = [f.to_ndarray(format="rgb24").astype(np.int32) for f in container.decode(video=0)]
    clip = PyAVDecoder().decode_frames(probe(source), [k / 10 for k in range(25)])
    rows = clip.frames.permute(0, 2, 3, 1).numpy().astype(np.int32)
    shown = [min(range(len(sequence)), key=lambda i: np.abs(sequence[i] - rows[r]).mean()) for r in clip.index.tolist()]
    steps = [b - a for a, b in zip(shown, shown[1:])]
    assert set(steps[3:]) <= {2, 3}, shown


def long_audio(tmp_path: Path) -> Path:
    """3 s of 25 fps video beside 10 s of audio in Matroska: its header says 10 s."""
    source = make(tmp_path / "long-audio.mkv", ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "10",
                                                "-c:v", "libx264", "-c:a", "pcm_s16le"],
                  source=["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=3"])
    assert source is not None
    return source


def test_a_header_far_longer_than_the_frames_cuts_the_clip_where_they_end(tmp_path):
    """A Matroska file of 3 s of video and 10 s of audio says 10 s (found by a sweep of odd files,
    with a header patched to 100 s): a trim-from-end preview held the last frame for 6.5 s, a
    long duration for 7. Now the clip ends with the frames, and says so; a tail within half a
    second of the request is still held (a video track a little shorter than its audio)."""
    source = long_audio(tmp_path)
    assert probe(source).duration == pytest.approx(10.0)
    trimmed = one_job(tmp_path, source, seek=1, duration=None, trim_end=0.5)
    assert trimmed.ok, trimmed.error_message
    assert trimmed.duration == pytest.approx(1.5) and trimmed.frames == 15
    assert any("frames end at 3.000 s although its header says 10.000 s" in note for note in trimmed.notes)
    long = one_job(tmp_path, source, seek=0.5, duration=8)
    assert long.ok and long.duration == pytest.approx(2.5) and long.frames == 25
    assert [note for note in long.notes if note.startswith("clamped")] == [  # said once
        "clamped: the video's frames end at 3.000 s although its header says 10.000 s; "
        "the span was planned for where they end, lasting 2.500 s"]
    held = one_job(tmp_path, source, seek=2, duration=1.4)  # 0.4 s past the frames: held, as before
    assert held.ok and held.duration == pytest.approx(1.4) and held.frames == 14
    assert not any("frames end" in note for note in held.notes)


@pytest.mark.parametrize("offset", [50, 36000])
def test_a_matroska_file_whose_times_start_late_is_as_long_as_its_frames(tmp_path, offset):
    """FFmpeg's Matroska muxer writes the last timestamp as the Duration, and its demuxer reads
    that as a length: 3 s of video starting at 50 s (or 10 h, a broadcast clock) was taken as 53 s
    (36003 s) long, so a trim-from-end job planned 52.5 s and carried a note about a damaged
    header, or asked for 360015 frames and was refused (found by a sweep of odd inputs). The
    stream's last packets say the header is an end time; the same video in MP4 was right already."""
    source = make(tmp_path / "late.mkv", ["-c:v", "libx264", "-output_ts_offset", str(offset)],
                  source=["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=3"])
    assert source is not None
    media = probe(source)
    assert media.start_time == pytest.approx(offset) and media.duration == pytest.approx(3.0, abs=0.05)
    trimmed = one_job(tmp_path, source, seek=1, duration=None, trim_end=0.5)
    assert trimmed.ok, trimmed.error_message
    assert trimmed.frames == 15 and trimmed.duration == pytest.approx(1.5)
    assert trimmed.notes == ()


def test_a_late_matroska_file_with_longer_audio_still_has_its_header_length(tmp_path):
    """The Duration of a late-starting file with 10 s of audio beside 3 s of video ends with the
    audio: as an end time it gives 10 s, and the clip is cut where the frames end, as when the
    file starts at 0."""
    source = make(tmp_path / "late-long-audio.mkv", ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "10",
                                                     "-c:v", "libx264", "-c:a", "pcm_s16le", "-output_ts_offset", "50"],
                  source=["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=3"])
    assert source is not None
    assert probe(source).duration == pytest.approx(10.0, abs=0.05)
    trimmed = one_job(tmp_path, source, seek=1, duration=None, trim_end=0.5)
    assert trimmed.ok and trimmed.frames == 15 and any("frames end at 3.000 s" in note for note in trimmed.notes)


@pytest.mark.parametrize("seek,fields", [(3.0, {"duration": 2}), (3.03, {"duration": 2}),
                                         (3.02, {"duration": None, "trim_end": 0.5})])
def test_a_span_starting_where_the_frames_end_under_a_longer_header_is_refused(tmp_path, seek, fields):
    """The same 3 s of frames under a 10 s header: a seek at or just past their end (within the
    frame period the decoder lets through after the last frame) has none of the video in its
    span. It used to come out as the last frame held for the whole span (2 s of one picture, found
    by a frame-timing sweep); now it is refused as a seek further on is, saying where the frames
    end."""
    source = long_audio(tmp_path)
    result = one_job(tmp_path, source, seek=seek, **fields)
    assert not result.ok and result.error_code == "InvalidTimeRange"
    assert "frames end at 3.000 s although its header says 10.000 s" in result.error_message
    assert "use a seek below 3.000" in result.error_message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# (name, matrix, how the picture as coded (rows, columns) should be shown)
MIRRORS = [
    ("mirror", (-1, 0, 0, 1), lambda rgb: rgb[:, ::-1]),
    ("upside-down mirror", (1, 0, 0, -1), lambda rgb: rgb[::-1]),
    ("transpose", (0, 1, 1, 0), lambda rgb: rgb.transpose(1, 0, 2)),
    ("anti-transpose", (0, -1, -1, 0), lambda rgb: rgb[::-1, ::-1].transpose(1, 0, 2)),
]


@pytest.mark.parametrize("name,matrix,shown", MIRRORS, ids=[m[0] for m in MIRRORS])
def test_a_mirroring_display_matrix_mirrors_the_picture(tmp_path, name, matrix, shown):
    """Found by a sweep of odd files: PyAV reads a display matrix as a rotation only, so a
    mirrored track came out upside down and a transposed one turned the wrong way."""
    plain = make(tmp_path / "plain.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0", "-t", "1"],
                 source=["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=1"])
    assert plain is not None
    source = clipmaker.with_display_matrix(plain, tmp_path / "shown.mp4", matrix, (96, 64))
    with av.open(str(plain)) as container:
        coded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    clip = PyAVDecoder().decode_frames(probe(source), [0.0])
    assert np.array_equal(clip.frames[0].permute(1, 2, 0).numpy(), shown(coded))
    result = one_job(tmp_path, source, seek=0, duration=0.3, width=48, format="gif")  # shrunk as coded, then turned
    assert result.ok, result.error_message

    first = np.asarray(Image.open(result.output).convert("RGB"), dtype=np.float64)
    wanted = np.ascontiguousarray(shown(coded))
    candidates = {label: np.asarray(Image.fromarray(np.ascontiguousarray(turn(wanted))).resize(first.shape[1::-1]),
                                    dtype=np.float64)
                  for label, turn in (("as shown", lambda x: x), ("flipped", lambda x: x[:, ::-1]),
                                      ("upside down", lambda x: x[::-1]), ("turned", lambda x: x[::-1, ::-1]))}
    errors = {label: np.abs(first - c).mean() for label, c in candidates.items() if c.shape == first.shape}
    assert min(errors, key=errors.get) == "as shown", errors


def test_the_stream_flagged_default_is_chosen_as_ffmpeg_would(tmp_path):
    """Found by a sweep of odd files: with two video streams, the larger was taken although the
    file flags the other as the one to play; FFmpeg weighs the flag as 5 Mpixel."""
    sources = ["-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25:duration=1",
               "-f", "lavfi", "-i", "smptebars=size=320x240:rate=25:duration=1"]
    flagged = make(tmp_path / "flagged.mkv", ["-map", "0", "-map", "1", "-c:v", "libx264",
                                              "-disposition:v:0", "0", "-disposition:v:1", "default"], source=sources)
    unflagged = make(tmp_path / "unflagged.mkv", ["-map", "0", "-map", "1", "-c:v", "libx264",
                                                  "-disposition:v:0", "0", "-disposition:v:1", "0"], source=sources)
    assert flagged is not None and unflagged is not None
    assert (probe(flagged).stream_index, probe(flagged).width) == (1, 320)
    assert (probe(unflagged).stream_index, probe(unflagged).width) == (0, 640)  # no flag: the largest


def test_an_animated_webp_says_why_it_cannot_be_read(tmp_path):
    """FFmpeg's WebP decoder reads stills only: the message said 'no picture size; corrupt'."""
    frames = [Image.new("RGB", (32, 24), (40 * k, 0, 0)) for k in range(3)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=100)
    result = one_job(tmp_path, tmp_path / "anim.webp", seek=0, duration=0.2)
    assert result.error_code == "InvalidVideoFormat"
    assert "animated WebP cannot be read" in result.error_message


# the left half opaque testsrc2, the right half fully see-through over random colours
SEE_THROUGH = ("format=argb,geq=r='if(lt(X,80),r(X,Y),random(1)*255)':g='if(lt(X,80),g(X,Y),random(2)*255)'"
               ":b='if(lt(X,80),b(X,Y),random(3)*255)':a='if(lt(X,80),255,0)'")


@pytest.mark.parametrize("name,codec", [("qtrle.mov", ["-c:v", "qtrle", "-pix_fmt", "argb"]),
                                        ("prores4444.mov", ["-c:v", "prores_ks", "-profile:v", "4444",
                                                            "-pix_fmt", "yuva444p10le"])])
@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_see_through_areas_are_shown_over_black_and_said(tmp_path, name, codec, fmt):
    """Found by a sweep of odd files: the alpha plane of QuickTime Animation and ProRes 4444 was
    dropped, so a fully see-through half showed the noise left under it, with no word. Now the
    picture is what it shows over black, and the result says so; the opaque half is unchanged."""
    source = make(tmp_path / name, ["-vf", SEE_THROUGH, *codec],
                  source=["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2"])
    assert source is not None
    result = one_job(tmp_path, source, format=fmt, width=None)
    assert result.ok, result.error_message
    assert any("see-through areas are shown over black" in note for note in result.notes)
    with Image.open(result.output) as image:
        image.seek(2)
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert rgb[:, 84:].mean() < 3  # black, where the noise averaged 127
    assert rgb[:, :76].mean() > 60  # the opaque half keeps its picture


@pytest.mark.parametrize("name", ["opaque.mov", "opaque.gif"])  # FFmpeg decodes every GIF as BGRA
def test_an_opaque_source_says_nothing_of_transparency(tmp_path, name):
    source = make(tmp_path / name, ["-c:v", "qtrle"] if name.endswith(".mov") else [],
                  source=["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2"])
    assert source is not None
    result = one_job(tmp_path, source)
    assert result.ok and not any("see-through" in note for note in result.notes)
