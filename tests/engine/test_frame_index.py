"""Instants -> frame numbers from real timestamps (what the NVDEC backend asks for), checked on CPU.

Frame k of a test clip shows index k, and frame numbers count frames in presentation order, so
the number selected for an instant must equal the index the CPU decoder shows at that instant.
"""

from __future__ import annotations

import math
import os

import pytest

import clipmaker
import animated_previews.engine.decode.frame_index as frame_index
from animated_previews.engine.decode.frame_index import read_stream_tags, select_frames
from animated_previews.engine.decode.frame_tags import tags_of
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.errors import EngineError, ErrorCode
from animated_previews.engine.probe import probe


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with no file known (the cache is per process)."""
    frame_index.clear_cache()
    yield
    frame_index.clear_cache()


@pytest.fixture
def opens(monkeypatch):
    """Paths the module opens with FFmpeg, in order."""
    opened = []
    real = frame_index.open_container

    def counting(path):
        opened.append(path)
        return real(path)

    monkeypatch.setattr(frame_index, "open_container", counting)
    return opened


def numbers_shown(path, instants):
    selection = select_frames(probe(path), instants)
    return [selection.numbers[row] for row in selection.rows], selection


def cpu_shown(path, instants):
    clip = PyAVDecoder().decode_frames(probe(path), instants)
    frames = clip.frames.permute(0, 2, 3, 1).numpy()
    return [clipmaker.read_index(frames[i]) for i in clip.index.tolist()], clip


@pytest.mark.parametrize("codec", clipmaker.available_codecs())
def test_each_codec_maps_instants_to_the_frames_the_cpu_decoder_shows(tmp_path, codec):
    path = clipmaker.make_clip(tmp_path / f"c-{codec}", codec=codec, fps=25, frames=50, gop=10, width=160, height=128)
    instants = [0.52 + k / 10 for k in range(12)] + [1.99]
    numbers, selection = numbers_shown(path, instants)
    assert numbers == cpu_shown(path, instants)[0] == [math.floor(t * 25 + 1e-6) for t in instants]
    assert list(selection.numbers) == sorted(set(numbers))


def test_every_frame_of_a_b_frame_stream_is_numbered_in_presentation_order(tmp_path):
    path = clipmaker.make_clip(tmp_path / "b.mp4", codec="h264", fps=25, frames=40)  # libx264 default: B-frames
    instants = [k / 25 for k in range(40)]
    numbers, selection = numbers_shown(path, instants)
    assert numbers == list(range(40))
    assert list(selection.pts) == sorted(selection.pts)
    assert selection.source_times == pytest.approx([k / 25 for k in range(40)], abs=1e-6)


def test_variable_frame_rate_uses_the_real_timestamps(vfr_clip, vfr_pts):
    instants = [k / 10 for k in range(21)]
    numbers, selection = numbers_shown(vfr_clip, instants)
    want = [max(i for i, p in enumerate(vfr_pts) if p <= t + 1e-6) for t in instants]
    assert numbers == want == cpu_shown(vfr_clip, instants)[0]
    assert selection.source_times == pytest.approx([vfr_pts[i] for i in want], abs=1e-6)


def test_a_late_start_decodes_from_the_keyframe_before_it(long_gop_clip):
    instants = [4.1 + k / 5 for k in range(5)]  # keyframes at 0, 2 s, 4 s (frames 0, 50, 100)
    numbers, selection = numbers_shown(long_gop_clip, instants)
    assert numbers == [math.floor(t * 25 + 1e-6) for t in instants]
    assert selection.keyframe == 100
    assert selection.frames_decoded == numbers[-1] - 100 + 1


def test_the_last_frame_stays_on_screen_to_the_end(tmp_path):
    path = clipmaker.make_clip(tmp_path / "short.mp4", fps=10, frames=10, width=160, height=120)
    assert numbers_shown(path, [0.85, 0.95, 0.99])[0] == [8, 9, 9]


def test_low_source_rate_selects_each_frame_once(tmp_path):
    path = clipmaker.make_clip(tmp_path / "slow.mp4", fps=5, frames=10, width=160, height=120)
    numbers, selection = numbers_shown(path, [k / 30 for k in range(30)])
    assert selection.numbers == (0, 1, 2, 3, 4) and numbers == [k // 6 for k in range(30)]


def test_a_seek_past_the_last_frame_is_an_invalid_time_range_like_on_the_cpu(tmp_path):
    path = clipmaker.make_clip(tmp_path / "short.mp4", fps=10, frames=10, width=160, height=120)
    media = probe(path)
    with pytest.raises(EngineError) as err:
        select_frames(media, [5.0, 5.1])
    assert err.value.code is ErrorCode.INVALID_TIME_RANGE


def test_stream_tags_follow_the_cpu_paths_rules(rotated_clip, clip_10bit, tmp_path):
    rotated = read_stream_tags(probe(rotated_clip))
    assert rotated.turns == 3  # -90 degrees: three quarter turns counter-clockwise
    assert rotated.matrix == "bt601" and not rotated.full_range and rotated.bits == 8  # untagged, under 720 rows
    assert read_stream_tags(probe(clip_10bit)).bits == 10
    hd = clipmaker.make_clip(tmp_path / "hd.mp4", fps=10, frames=2, width=1280, height=720)
    assert read_stream_tags(probe(hd)).matrix == "bt709"  # untagged HD


# Per-file cache (issue 14 item 10): what a job learns about a file serves the next job on it.


def test_a_files_first_job_opens_it_once_and_a_second_job_not_at_all(long_gop_clip, opens):
    media = probe(long_gop_clip)
    instants = [4.1 + k / 5 for k in range(5)]
    first, tags = select_frames(media, instants), read_stream_tags(media)
    assert len(opens) == 1  # the demux for the timestamps also decoded the first frame for the tags
    assert select_frames(media, instants) == first and read_stream_tags(media) == tags
    assert len(opens) == 1


def tags_along_the_demux_and_on_their_own(path):
    media = probe(path)
    frame_index.clear_cache()
    select_frames(media, [0.0])
    along = read_stream_tags(media)
    frame_index.clear_cache()
    return along, read_stream_tags(media)


def test_tags_read_along_the_demux_are_the_first_frames(rotated_clip, clip_10bit):
    rotated, deep = tags_along_the_demux_and_on_their_own(rotated_clip), tags_along_the_demux_and_on_their_own(clip_10bit)
    assert rotated[0] == rotated[1] and rotated[0].turns == 3
    assert deep[0] == deep[1] and deep[0].bits == 10


@pytest.mark.parametrize("name", ["bbb_720p_30s.webm", "h264_10bits.mp4", "nasa_13013.mp4"])
def test_tags_read_along_the_demux_are_the_first_frames_of_real_footage(corpus, name):
    along, alone = tags_along_the_demux_and_on_their_own(corpus / name)
    assert along == alone


def test_tags_are_decoded_on_their_own_when_the_demux_got_no_frame(rotated_clip, monkeypatch, opens):
    monkeypatch.setattr(frame_index._FirstFrame, "feed", lambda self, packet: setattr(self, "failed", True))
    media = probe(rotated_clip)
    select_frames(media, [0.0])
    assert read_stream_tags(media).turns == 3 and len(opens) == 2


def test_a_second_span_does_not_decode_for_tags_again(long_gop_clip, monkeypatch):
    media = probe(long_gop_clip)
    select_frames(media, [0.2])
    fed = []
    monkeypatch.setattr(frame_index._FirstFrame, "feed", lambda self, packet: fed.append(packet))
    select_frames(media, [4.1])  # reads the table further; the tags are known
    assert fed == []


def test_an_earlier_span_is_served_from_the_table_a_later_span_reads_further(long_gop_clip, opens):
    media = probe(long_gop_clip)
    select_frames(media, [2.0, 2.5])
    early = select_frames(media, [0.2, 0.6])
    assert len(opens) == 1
    late = select_frames(media, [4.1, 4.5])
    assert len(opens) == 2  # the table ended near 2.5 s: read again, further
    later = select_frames(media, [4.6, 5.0])
    assert len(opens) == 2  # the second read went further than its job needed
    frame_index.clear_cache()
    assert (early, late, later) == (select_frames(media, [0.2, 0.6]), select_frames(media, [4.1, 4.5]),
                                    select_frames(media, [4.6, 5.0]))


def test_a_changed_file_is_read_again(tmp_path, opens):
    path = clipmaker.make_clip(tmp_path / "c.mp4", fps=10, frames=10, width=160, height=120)
    assert numbers_shown(path, [0.95])[0] == [9]
    clipmaker.make_clip(tmp_path / "other.mp4", fps=10, frames=20, width=160, height=120).replace(path)
    os.utime(path, ns=(1, 1))  # whatever the clock's resolution: another mtime
    assert numbers_shown(path, [1.95])[0] == [19]
    assert len(opens) == 2


def test_the_cache_keeps_the_latest_files_only(tmp_path, monkeypatch, opens):
    monkeypatch.setattr(frame_index, "_tag_cache", frame_index._FileCache(2))
    paths = [clipmaker.make_clip(tmp_path / f"f{k}.mp4", fps=10, frames=3, width=160, height=120) for k in range(3)]
    for path in paths:
        read_stream_tags(probe(path))
    read_stream_tags(probe(paths[2]))
    read_stream_tags(probe(paths[1]))
    assert len(opens) == 3
    read_stream_tags(probe(paths[0]))  # the least recently used, dropped
    assert len(opens) == 4


def test_tags_cached_per_file_are_the_ones_its_frames_carry(rotated_clip, clip_10bit):
    for path in (rotated_clip, clip_10bit, rotated_clip, clip_10bit):
        media = probe(path)
        with frame_index.av.open(str(path)) as container:
            first = next(container.decode(container.streams.video[0]))
        assert read_stream_tags(media) == tags_of(first, media)


def test_tags_come_from_a_frame_because_the_codec_context_can_say_less(corpus):
    """bbb_720p_30s.webm (VP8): its codec context says colorspace unspecified, which the CPU path's
    rule would make BT.709 at 720 rows; its frames say BT.470BG, i.e. BT.601. Rotation, too, is on
    frames only. So the tags are the first frame's, read once per file."""
    path = corpus / "bbb_720p_30s.webm"
    with frame_index.av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.colorspace in (None, 0, 2)  # says nothing
        first = next(container.decode(container.streams.video[0]))
    tags = read_stream_tags(probe(path))
    assert tags == tags_of(first) and tags.matrix == "bt601"
