"""HDR sources (PQ and HLG, BT.2020, 10-bit) come out as SDR previews with the right colours:
tone-mapped like FFmpeg's zscale (BT.2408's 203 cd/m² as white) + tonemap=mobius recipe, not read as
if they were BT.709; a PQ stream's light-level metadata sets the peak the highlights roll off to."""

from __future__ import annotations

import math
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch

import clipmaker
from animated_previews.engine.decode import YUVPlanes
from animated_previews.engine.decode.pyav import PyAVDecoder, _yuv_planes
from animated_previews.engine.decode.nvdec_caps import nvdec_refusal
from animated_previews.engine.job import run_job
from animated_previews.engine.probe import probe
from animated_previews.engine.render import Fitter
from animated_previews.engine.spec import JobSpec, parse_job
from animated_previews.kernels.tonemap import DEFAULT_PEAK_NITS, KNEE, REFERENCE_WHITE_NITS
from animated_previews.kernels.yuv import yuv_to_rgb

FFMPEG = shutil.which("ffmpeg")

pytestmark = pytest.mark.skipif(not clipmaker.ffmpeg_can("zscale", "tonemap", "libx265"),
                                reason="needs ffmpeg with zscale, tonemap and libx265 (Debian's ffmpeg has them)")


def ffmpeg_frame(path: Path, at: float, filters: str, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    raw = subprocess.run([FFMPEG, "-v", "error", "-ss", str(at), "-i", str(path), "-frames:v", "1", "-vf", filters,
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(size[1], size[0], 3)


MOBIUS = f"tonemap=tonemap=mobius:param={KNEE}:peak={DEFAULT_PEAK_NITS / REFERENCE_WHITE_NITS}:desat=0"
"""FFmpeg's tone map of the engine's convention: light relative to BT.2408's 203 cd/m² reference
white (``zscale=npl=203``), a Möbius roll-off from the knee to the default 1000 cd/m² peak."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse)) if mse else math.inf  # identical pictures


@pytest.mark.parametrize("size", [(320, 240), (321, 241)])
def test_pq_frames_match_ffmpegs_tone_map_and_not_the_naive_reading(tmp_path, size):
    """At any width: FFmpeg's scaler (PyAV's build) made 4:2:0 frames of odd width into wrong
    packed RGB48 (whole frames blue or magenta, 7 dB); the frames are read as planar RGB."""
    clip = clipmaker.hdr_clip(tmp_path / "pq.mp4", "smpte2084", size)
    media = probe(clip)
    ours = PyAVDecoder().decode_frames(media, [1.0]).frames[0].permute(1, 2, 0).numpy()
    reference = ffmpeg_frame(clip, 1.0, "format=yuv444p10le,"  # zimg takes no 4:2:0 of odd size
                                        f"zscale=t=linear:npl=203,format=gbrpf32le,zscale=p=bt709,{MOBIUS},"
                                        "zscale=t=bt709,format=gbrp", size)
    naive = ffmpeg_frame(clip, 1.0, "format=rgb24", size)  # BT.2020 values shown as if SDR

    assert media.transfer == "pq"
    assert psnr(ours, reference) >= 29  # 31.7 dB when written (36.0 against the Hable recipe of the old convention)
    assert psnr(naive, reference) < 20  # what a decoder without tone mapping shows (12.6 dB; 14.8 against the old recipe)


def test_hlg_jobs_succeed_and_say_so(tmp_path):
    clip = clipmaker.hdr_clip(tmp_path / "hlg.mp4", "arib-std-b67")
    media = probe(clip)
    spec = parse_job({"input": str(clip), "format": "gif", "fps": 5, "duration": 1}, default_id="h", input_root=tmp_path)
    result = run_job(spec, tmp_path / "out", PyAVDecoder())

    assert media.transfer == "hlg"
    assert result.ok and "HDR (HLG, BT.2020) tone-mapped to SDR BT.709" in result.notes
    assert nvdec_refusal(media, 0) is None  # the GPU path tone-maps too (tests/engine/test_nvdec_adapter.py)
    # zimg renders HLG's colours with its own OOTF (greys agree: HLG 75 % is 203 cd/m² in both;
    # this engine follows BT.2100's luma-driven OOTF for a 1000 cd/m² display, checked against
    # BT.2408's 203 cd/m² reference white in tests/kernels/test_tonemap.py), so only "closer than
    # the naive reading" is asked here: 19.5 dB against 15.3 dB when written.
    ours = PyAVDecoder().decode_frames(media, [1.0]).frames[0].permute(1, 2, 0).numpy()
    reference = ffmpeg_frame(clip, 1.0, f"zscale=t=linear:npl=203,format=gbrpf32le,zscale=p=bt709,{MOBIUS},"
                                        "zscale=t=bt709,format=gbrp")
    naive = ffmpeg_frame(clip, 1.0, "format=rgb24")
    assert psnr(ours, reference) >= psnr(naive, reference) + 3


class PlanesSpy(Fitter):
    """The job's fit, counting the frames it was handed as YUV planes."""

    planar_frames = 0

    def fit_planes(self, planes, rotation):
        self.planar_frames += planes.luma.shape[0]
        return super().fit_planes(planes, rotation)


def hdr_spec(clip: Path, **fields):
    return parse_job({"input": str(clip), "format": "gif", "fps": 5, "duration": 1, **fields}, default_id="h",
                     input_root=clip.parent)


@pytest.mark.parametrize("transfer", ["smpte2084", "arib-std-b67"])
def test_shrunk_hdr_frames_are_converted_from_their_planes_and_match_the_rgb48_route(tmp_path, transfer):
    """A resized HDR job hands the fit the decoder's 10-bit planes (no full-size RGB48 frame
    is made); the picture is the one the scaler's RGB48 route gives, within rounding of the
    chroma's resampling."""
    clip = clipmaker.hdr_clip(tmp_path / "hdr.mp4", transfer)
    media = probe(clip)
    spec = hdr_spec(clip, width=160, height=120)
    planar_fit, rgb_fit = PlanesSpy(spec, media), Fitter(spec, media)
    instants = [0.2, 0.6, 1.0]
    planar = PyAVDecoder().decode_frames(media, instants, fit=planar_fit).frames
    via_rgb = PyAVDecoder().decode_frames(media, instants, fit=lambda chunk, turns: rgb_fit(chunk, turns)).frames

    assert planar_fit.planar_frames == 3
    assert planar.shape == via_rgb.shape == (3, 3, 120, 160)
    for k in range(3):
        # 35.2 dB when written: FFmpeg's scaler reads these 10-bit codes 1-2 codes low (a flat
        # area of Y 464, Cb 536, Cr 474 gives R' 401.6 / 1023 where BT.2020's matrix says 403.15,
        # which the planes route gives: tests/kernels/test_yuv.py), and 4:2:0 chroma is
        # resampled differently at testsrc2's saturated edges. 32.3 (PQ) and 35.0-35.4 (HLG)
        # since 2026-12-05: the same input differences, shown by a curve that no longer
        # compresses this clip's mid-tones (203 cd/m² as white, nothing here above the knee)
        assert psnr(planar[k].permute(1, 2, 0).numpy(), via_rgb[k].permute(1, 2, 0).numpy()) >= 31


@pytest.mark.parametrize("fields", [{}, {"width": 320, "height": 240}, {"width": 200, "height": 200, "fit": "pad"},
                                    {"width": 200, "height": 200, "fit": "cover"}])
def test_hdr_frames_kept_at_their_size_cropped_or_padded_go_the_rgb48_route(tmp_path, fields):
    clip = clipmaker.hdr_clip(tmp_path / "pq.mp4", "smpte2084")
    media = probe(clip)
    fit = PlanesSpy(hdr_spec(clip, **fields), media)
    frames = PyAVDecoder().decode_frames(media, [0.5], fit=fit).frames

    assert fit.planar_frames == 0 and frames.dtype == torch.uint8


def test_planes_are_read_as_coded_and_the_fit_turns_them_upright_after_shrinking():
    """A rotated HDR clip's planes are read as coded; the fit shrinks them and then turns the
    small picture, which is the turned picture shrunk."""
    rng = np.random.default_rng(3)
    frame = av.VideoFrame(64, 48, "yuv420p10le")
    for plane in frame.planes:
        words = np.frombuffer(plane, dtype=np.uint16).reshape(plane.height, plane.line_size // 2)
        words[:] = rng.integers(64, 940, size=words.shape, dtype=np.uint16)
    luma, chroma, layout = _yuv_planes(frame)
    assert luma.shape == (48, 64) and chroma.shape == (2, 24, 32)
    assert layout == ("bt2020", 10, False)  # untagged: HDR's own matrix, studio range

    media = SimpleNamespace(sample_aspect_ratio=Fraction(1))
    fitter = Fitter(JobSpec(id="r", input=Path("x.mp4"), format="gif", fps=5, width=24), media)
    planes = YUVPlanes(luma=torch.from_numpy(luma)[None, None], chroma=torch.from_numpy(chroma)[None],
                       matrix="bt2020", bits=10, full_range=False)
    assert fitter.takes_planes(64, 48, 1)
    turned = fitter.fit_planes(planes, 1)  # shown 48 wide, 64 tall: 24 x 32

    upright = yuv_to_rgb(torch.from_numpy(np.rot90(luma).copy())[None, None],
                         torch.from_numpy(np.stack([np.rot90(c) for c in chroma]))[None], 32, 24,
                         matrix="bt2020", bits=10, full_range=False)
    assert fitter.size == (24, 32) and turned.shape == (1, 3, 32, 24)
    assert torch.allclose(turned, upright, atol=1e-5)


def test_frames_the_planes_route_cannot_read_say_so():
    assert _yuv_planes(av.VideoFrame(8, 6, "yuv420p")) is None  # 8-bit: not 16-bit words
    assert _yuv_planes(av.VideoFrame(8, 6, "rgb48le")) is None


def test_a_mirrored_hdr_clip_is_mirrored_on_the_planes_route_too(tmp_path):
    """The planes route (resized HDR) flips the coded planes as the RGB route flips pixels."""
    clip = clipmaker.hdr_clip(tmp_path / "hdr.mp4", "smpte2084")
    mirrored = clipmaker.with_display_matrix(clip, tmp_path / "mirrored.mp4", (-1, 0, 0, 1), (320, 0))
    frames = {}
    for name, path in (("plain", clip), ("mirrored", mirrored)):
        media = probe(path)
        fit = PlanesSpy(hdr_spec(path, width=160, height=120), media)
        frames[name] = PyAVDecoder().decode_frames(media, [0.6], fit=fit).frames[0].permute(1, 2, 0).numpy()
        assert fit.planar_frames == 1
    assert psnr(frames["mirrored"], frames["plain"][:, ::-1]) >= 40
    assert psnr(frames["mirrored"], frames["plain"]) < 25


def _remuxed(source: Path, path: Path, *tags: str) -> Path:
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(source), "-c", "copy", *tags, str(path)], check=True)
    return path


def test_pq_said_only_by_the_container_is_tone_mapped_as_it_says(tmp_path):
    """FFmpeg's HEVC decoder hands over the frames of a bitstream without colour tags untagged,
    whatever the container says: they were shown washed out as SDR while the notes said
    tone-mapped. An untagged frame now takes the stream's transfer."""
    tagged = clipmaker.hdr_clip(tmp_path / "pq.mp4", "smpte2084")
    bare = tmp_path / "bare.mp4"  # the same picture, the bitstream untagged
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(tagged), "-vf",
                    "setparams=color_primaries=unknown:color_trc=unknown:colorspace=unknown", "-c:v", "libx265",
                    "-x265-params", "log-level=error:lossless=1", str(bare)], check=True)
    container_only = _remuxed(bare, tmp_path / "container-only.mp4", "-color_primaries", "bt2020",
                              "-color_trc", "smpte2084", "-colorspace", "bt2020nc")
    with av.open(str(container_only)) as container:
        assert next(container.decode(video=0)).color_trc in (0, 2)  # the frames say nothing
    media = probe(container_only)
    ours = PyAVDecoder().decode_frames(media, [1.0]).frames[0].permute(1, 2, 0).numpy()
    want = PyAVDecoder().decode_frames(probe(tagged), [1.0]).frames[0].permute(1, 2, 0).numpy()
    assert media.transfer == "pq"
    assert psnr(ours, want) >= 40  # a lossless copy of the same frames: the same tone map
    spec = parse_job({"input": str(container_only), "format": "gif", "fps": 5, "duration": 1}, default_id="c",
                     input_root=tmp_path)
    assert "HDR (PQ, BT.2020) tone-mapped to SDR BT.709" in run_job(spec, tmp_path / "out", PyAVDecoder()).notes


def test_frames_that_say_pq_under_a_header_that_says_sdr_are_tone_mapped_and_the_notes_say_so(tmp_path):
    """The frames' own tags decide (here a Matroska header says BT.709 over a PQ bitstream; an
    HLG alternative-transfer SEI in a stream tagged BT.2020 SDR is the same case), and the note
    follows what was done, not the header."""
    clip = _remuxed(clipmaker.hdr_clip(tmp_path / "pq.mp4", "smpte2084"), tmp_path / "says-sdr.mkv",
                    "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709")
    spec = parse_job({"input": str(clip), "format": "gif", "fps": 5, "duration": 1}, default_id="s", input_root=tmp_path)
    result = run_job(spec, tmp_path / "out", PyAVDecoder())
    assert result.ok and "HDR (PQ, BT.2020) tone-mapped to SDR BT.709" in result.notes


def _white_level(clip: Path) -> tuple[int, int]:
    """The SDR codes the engine shows the card's white patch and its grey at."""
    frame = PyAVDecoder().decode_frames(probe(clip), [0.4]).frames[0]
    return int(frame[1, 4:28, 4:28].float().mean().round()), int(frame[1, 40:60, 40:60].float().mean().round())


def test_a_pq_streams_maxcll_sets_the_peak_so_sdr_material_in_hdr_comes_back_as_it_was(tmp_path):
    """MaxCLL 203: nothing is brighter than reference white, so nothing is compressed: the white
    patch is SDR white and the grey the SDR grey it was made from (191). Without metadata the
    tone map keeps room for a 1000 cd/m² peak and the white is rolled off (228)."""
    told = _white_level(clipmaker.pq_card(tmp_path / "cll.mp4", "hdr10=1:max-cll=203,100"))
    untold = _white_level(clipmaker.pq_card(tmp_path / "none.mp4"))
    assert told[0] >= 253 and abs(told[1] - 191) <= 2
    assert 220 <= untold[0] <= 235 and abs(untold[1] - 191) <= 2  # the grey is below the knee either way


def test_light_level_metadata_is_read_only_when_plausible(tmp_path):
    from animated_previews.engine.decode.frame_tags import content_peak

    clip = clipmaker.pq_card(tmp_path / "cll.mp4", "hdr10=1:max-cll=203,100")
    with av.open(str(clip)) as container:
        frame = next(container.decode(video=0))
    assert content_peak(frame, "pq") == 203.0
    assert content_peak(frame, "hlg") is None  # HLG's display is 1000 cd/m² whatever is said
    silly = clipmaker.pq_card(tmp_path / "silly.mp4", "hdr10=1:max-cll=5,1")  # a placeholder, not a picture
    with av.open(str(silly)) as container:
        assert content_peak(next(container.decode(video=0)), "pq") is None
    # MaxCLL unknown (0): the mastering display's peak, 4000 cd/m² (its luminance in 1/10000 cd/m²)
    mastered = clipmaker.pq_card(tmp_path / "mdcv.mp4", "hdr10=1:max-cll=0,0:master-display="
                         "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(40000000,50)")
    with av.open(str(mastered)) as container:
        assert content_peak(next(container.decode(video=0)), "pq") == 4000.0


def test_sdr_notes_say_nothing_of_hdr(tmp_path):
    clip = clipmaker.make_clip(tmp_path / "sdr.mp4", fps=10, frames=20)
    spec = parse_job({"input": str(clip), "format": "gif", "fps": 5, "duration": 1}, default_id="s", input_root=tmp_path)
    assert not any("HDR" in note for note in run_job(spec, tmp_path / "out", PyAVDecoder()).notes)


def _bt709_master(path: Path) -> Path:
    """One second of testsrc2, lossless 4:4:4 BT.709: the picture a wide-gamut coding should give back."""
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
                    "-vf", "format=yuv444p", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p",
                    "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", str(path)], check=True)
    return path


def test_sdr_with_bt2020_primaries_is_shown_with_bt709s_not_desaturated(tmp_path):
    """BT.2020 SDR (transfer bt2020-10: no tone map) read as BT.709 came out desaturated, 12 dB
    from its master; its colours are now mapped to BT.709's primaries (kernels/gamut.py)."""
    master = _bt709_master(tmp_path / "master.mp4")
    wide = tmp_path / "wide.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(master), "-vf",
                    "zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t=bt2020-10:m=bt2020nc:p=bt2020:r=tv,format=yuv444p10le",
                    "-c:v", "libx265", "-x265-params", "log-level=error:lossless=1:colorprim=bt2020:transfer=bt2020-10:"
                    "colormatrix=bt2020nc", str(wide)], check=True)
    want = PyAVDecoder().decode_frames(probe(master), [0.5]).frames[0].permute(1, 2, 0).numpy()
    clip = PyAVDecoder().decode_frames(probe(wide), [0.5])
    ours = clip.frames[0].permute(1, 2, 0).numpy()
    naive = ffmpeg_frame(wide, 0.5, "format=rgb24")  # BT.2020 codes shown as if BT.709
    assert clip.gamut_mapped and clip.tone_mapped is None
    assert psnr(ours, want) >= 32 and psnr(naive, want) < 20  # 34.1 and 12.1 dB when written
    spec = parse_job({"input": str(wide), "format": "gif", "fps": 5, "duration": 1}, default_id="w", input_root=tmp_path)
    notes = run_job(spec, tmp_path / "out", PyAVDecoder()).notes
    assert "SDR with BT.2020 primaries: colours converted to BT.709's" in notes and not any("HDR" in n for n in notes)


def test_sdr_with_display_p3_primaries_is_shown_with_bt709s_not_desaturated(tmp_path):
    """Display P3 (smpte432) SDR was shown as BT.709 with no note, 15 dB from its master (a colour
    tag sweep); it is mapped as BT.2020 SDR is, with P3's own matrix."""
    master = _bt709_master(tmp_path / "master.mp4")
    p3 = tmp_path / "p3.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(master), "-vf",
                    "zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t=bt709:m=bt709:p=smpte432:r=tv,format=yuv444p10le",
                    "-c:v", "libx264", "-qp", "0", "-x264-params", "colorprim=smpte432:transfer=bt709:colormatrix=bt709",
                    str(p3)], check=True)
    want = PyAVDecoder().decode_frames(probe(master), [0.5]).frames[0].permute(1, 2, 0).numpy()
    clip = PyAVDecoder().decode_frames(probe(p3), [0.5])
    ours = clip.frames[0].permute(1, 2, 0).numpy()
    with av.open(str(p3)) as opened:  # the P3 codes shown as if BT.709
        naive = [f for f in opened.decode(video=0) if f.time <= 0.5][-1].reformat(format="rgb24").to_ndarray()
    assert clip.gamut_mapped == "p3" and clip.tone_mapped is None
    assert psnr(ours, want) >= 38 and psnr(naive, want) < 20  # 42.8 and 15.1 dB when written
    spec = parse_job({"input": str(p3), "format": "gif", "fps": 5, "duration": 1}, default_id="p", input_root=tmp_path)
    assert "SDR with Display P3 primaries: colours converted to BT.709's" in run_job(spec, tmp_path / "out",
                                                                                      PyAVDecoder()).notes


def _pq_from_master(master: Path, path: Path, primaries: str) -> Path:
    """``master`` coded as 10-bit PQ with ``primaries`` (a zimg/x265 name), its white at 203 cd/m²
    and MaxCLL 203: the tone map leaves it as it was, so only the primaries can move colours."""
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(master), "-vf",
                    f"zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t=smpte2084:m=bt2020nc:p={primaries}:r=tv:npl=203,"
                    "format=yuv444p10le", "-c:v", "libx265", "-x265-params",
                    f"log-level=error:lossless=1:colorprim={primaries}:transfer=smpte2084:colormatrix=bt2020nc:"
                    "hdr10=1:max-cll=203,100", str(path)], check=True)
    return path


def test_pq_with_p3_primaries_is_converted_from_p3s_not_bt2020s(tmp_path):
    """P3-D65 PQ (the primaries of many HDR mastering deliverables) was converted as if BT.2020:
    greens and reds oversaturated, 25.8 dB from its master; now 40.2 (a BT.2020 coding of the
    same master: 34.9), and the notes name the primaries."""
    master = _bt709_master(tmp_path / "master.mp4")
    want = PyAVDecoder().decode_frames(probe(master), [0.5]).frames[0].permute(1, 2, 0).numpy()
    p3 = _pq_from_master(master, tmp_path / "p3.mp4", "smpte432")
    bt2020 = _pq_from_master(master, tmp_path / "bt2020.mp4", "bt2020")
    clip = PyAVDecoder().decode_frames(probe(p3), [0.5])
    ours = clip.frames[0].permute(1, 2, 0).numpy()
    same_via_bt2020 = PyAVDecoder().decode_frames(probe(bt2020), [0.5]).frames[0].permute(1, 2, 0).numpy()
    assert clip.tone_mapped == "pq" and clip.hdr_primaries == "p3"
    assert psnr(ours, want) >= psnr(same_via_bt2020, want) - 1
    assert psnr(ours, want) >= 36
    spec = parse_job({"input": str(p3), "format": "gif", "fps": 5, "duration": 1}, default_id="p", input_root=tmp_path)
    assert "HDR (PQ, Display P3) tone-mapped to SDR BT.709" in run_job(spec, tmp_path / "out", PyAVDecoder()).notes


def test_bt2020_primaries_said_only_by_the_container_are_mapped_too(tmp_path):
    """The same BT.2020 SDR stream with its HEVC VUI set to 'unspecified' and the primaries left
    in the MP4 ``colr`` box: the matrix came from the container but the primaries did not, so it
    was shown unmapped, 20.6 levels off its master with no note (a sweep of colour tags). Untagged
    frames take the stream's primaries as they take its matrix."""
    tagged = tmp_path / "tagged.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
                    "-vf", "zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t=bt2020-10:m=bt2020nc:p=bt2020:r=tv,"
                    "format=yuv420p10le", "-c:v", "libx265", "-x265-params",
                    "log-level=error:lossless=1:colorprim=bt2020:transfer=bt2020-10:colormatrix=bt2020nc", str(tagged)],
                   check=True)
    container_only = tmp_path / "colr.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(tagged), "-c", "copy", "-bsf:v",
                    "hevc_metadata=colour_primaries=2:transfer_characteristics=2:matrix_coefficients=2",
                    "-color_primaries", "bt2020", "-color_trc", "bt2020-10", "-colorspace", "bt2020nc",
                    "-movflags", "+write_colr", str(container_only)], check=True)
    with av.open(str(container_only)) as opened:
        assert int(next(opened.decode(video=0)).color_primaries or 0) in (0, 2)  # the frames say nothing
    want = PyAVDecoder().decode_frames(probe(tagged), [0.5])
    clip = PyAVDecoder().decode_frames(probe(container_only), [0.5])
    assert want.gamut_mapped and clip.gamut_mapped
    assert (clip.frames.float() - want.frames.float()).abs().max() <= 1
