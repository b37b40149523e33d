"""A decoded frame's tags and its stream's header decide how it is shown: the frame's own tag wins,
the header speaks for an untagged frame and for a decoder that stamps one matrix on every frame."""

from __future__ import annotations

import dataclasses
import struct
import subprocess

import av
import pytest
from av.sidedata.sidedata import Type

import clipmaker
from animated_previews.engine.decode.frame_tags import content_peak, gamut_of, orientation, pixel_bits, tags_of
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.probe import probe

FFMPEG = "ffmpeg"


@pytest.mark.parametrize("name,bits", [("yuv420p", 8), ("yuvj420p", 8), ("yuv420p10le", 10),
                                       ("yuv422p12le", 12), ("p010le", 10), ("p016le", 16), ("nv12", 8)])
def test_pixel_bits(name, bits):
    assert pixel_bits(name) == bits


def _encode(path, *args: str):
    subprocess.run([FFMPEG, "-v", "error", "-y", *args, str(path)], check=True)
    return path


@pytest.mark.skipif(not clipmaker.ffmpeg_can("dnxhd"), reason="needs ffmpeg's DNxHD encoder")
def test_dnxhr_frames_take_the_matrix_their_file_says_not_the_one_the_decoder_stamps(tmp_path):
    """FFmpeg's VC-3 decoder tags every DNxHD/DNxHR frame BT.709, whatever the file says: a BT.601
    DNxHR in MXF (a broadcast SD master) was shown with BT.709's matrix, 24 dB from its source."""
    tags = ["-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m"]
    master = _encode(tmp_path / "master.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
                     "-vf", "format=yuv444p", "-c:v", "libx264", "-qp", "0", *tags)
    dnxhr = _encode(tmp_path / "dnxhr.mxf", "-i", str(master), "-c:v", "dnxhd", "-profile:v", "dnxhr_hq",
                    "-pix_fmt", "yuv422p", *tags)
    media = probe(dnxhr)
    with av.open(str(dnxhr)) as opened:
        first = next(opened.decode(video=0))
    assert media.codec == "dnxhd" and int(first.colorspace) == 1  # the header says BT.601, the frame BT.709
    assert tags_of(first, media).matrix == "bt601" and tags_of(first).matrix == "bt709"
    want = PyAVDecoder().decode_frames(probe(master), [0.5]).frames[0].permute(1, 2, 0).numpy()
    ours = PyAVDecoder().decode_frames(media, [0.5]).frames[0].permute(1, 2, 0).numpy()
    with av.open(str(dnxhr)) as opened:
        stamped = [f for f in opened.decode(video=0) if f.time <= 0.5][-1].reformat(format="rgb24").to_ndarray()
    assert clipmaker.psnr(ours, want) >= 30 and clipmaker.psnr(stamped, want) < 26  # 32.4 and 24.0 when written


def test_wide_primaries_are_the_frames_own_or_else_the_headers(tmp_path):
    frame = av.VideoFrame(16, 16, "yuv420p")
    media = probe(clipmaker.make_clip(tmp_path / "plain.mp4", fps=10, frames=2))
    assert gamut_of(frame) is None and gamut_of(frame, media) is None  # nothing told: BT.709's
    for told, name in ((9, "bt2020"), (12, "p3"), (1, None), (5, None), (11, None)):
        frame.color_primaries = told
        assert gamut_of(frame) == name
    frame.color_primaries = 2  # untold by the frame: the header's
    assert gamut_of(frame, _with_primaries(media, 12)) == "p3"
    frame.color_primaries = 1  # the frame's own tag beats the header's
    assert gamut_of(frame, _with_primaries(media, 12)) is None


def _with_primaries(media, primaries: int):
    return dataclasses.replace(media, primaries=primaries)


def test_hdr_frames_are_not_gamut_mapped_on_top_of_the_tone_map():
    frame = av.VideoFrame(16, 16, "yuv420p10le")
    frame.color_primaries, frame.color_trc = 9, 16  # BT.2020, PQ
    tags = tags_of(frame)
    assert tags.transfer == "pq" and tags.wide_gamut is None


def test_untagged_frames_under_an_untold_header_take_the_matrix_players_assume_for_their_size():
    small, large = av.VideoFrame(640, 480, "yuv420p"), av.VideoFrame(1280, 720, "yuv420p")
    assert tags_of(small).matrix == "bt601" and tags_of(large).matrix == "bt709"


class _Side:
    """A stand-in for PyAV's SideData: a type and the bytes FFmpeg's struct would hold."""

    def __init__(self, kind, data: bytes):
        self.type, self._data = kind, data

    def __bytes__(self) -> bytes:
        return self._data


class _Frame:
    """Only what content_peak and orientation read of a frame."""

    def __init__(self, sides=(), rotation=0, unlistable=False):
        self._sides, self.rotation, self._unlistable = tuple(sides), rotation, unlistable

    @property
    def side_data(self):
        if self._unlistable:  # PyAV 18 on a side-data type its enum lacks (FFmpeg 8's LCEVC, view ids)
            raise ValueError("40 is not a valid Type")
        return self._sides


def _cll(max_cll: int) -> _Side:
    return _Side(Type.CONTENT_LIGHT_LEVEL, struct.pack("<2I", max_cll, 100))


def _mastering(num: int, den: int, has_luminance: int = 1, size: int = 88) -> _Side:
    fields = [0] * 18 + [num, den, 1, has_luminance]  # 8 rationals of primaries and white, min, max, flags
    return _Side(Type.MASTERING_DISPLAY_METADATA, struct.pack("<22i", *fields)[:size])


@pytest.mark.parametrize("sides,peak", [
    ([_cll(1000)], 1000.0),
    ([_cll(0), _mastering(40000000, 10000)], 4000.0),  # MaxCLL unknown: the mastering display's
    ([_cll(4000), _mastering(10000000, 10000)], 4000.0),  # MaxCLL first, as FFmpeg reads them
    ([_cll(65535)], None),  # past PQ's 10000
    ([_mastering(10000000, 0)], None),  # no denominator
    ([_mastering(-10000000, 10000)], None),
    ([_mastering(10000000, 10000, has_luminance=0)], None),
    ([_mastering(10000000, 10000, size=40)], None),  # shorter than the struct
    ([_Side(Type.CONTENT_LIGHT_LEVEL, b"\x01")], None),
    ([], None),
])
def test_content_peak_believes_only_whole_plausible_metadata(sides, peak):
    assert content_peak(_Frame(sides), "pq") == peak


def test_hlg_has_no_metadata_peak():
    assert content_peak(_Frame([_cll(1000)]), "hlg") is None


def test_a_frame_whose_side_data_pyav_cannot_list_still_gives_its_turn_and_no_peak():
    """PyAV 18's Type enum ends at 27; FFmpeg 8 attaches newer types (an MV-HEVC view id on a
    phone's spatial video), and listing them raised ValueError, which failed the job."""
    frame = _Frame(unlistable=True, rotation=90)
    assert orientation(frame) == (1, False)  # from PyAV's rotation, read without the enum
    assert content_peak(frame, "pq") is None
