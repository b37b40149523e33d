"""``max_bytes``: the image is at most that many bytes, what was given up is in its notes, and a
budget nothing can meet fails with MaxBytesUnreachable naming the smallest size reached."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import clipmaker
from animated_previews.engine import EngineError, Manifest, run_batch
from animated_previews.engine.byte_budget import (COLOUR_ENCODES, COLOUR_SETTLE, DENOISE_ENCODES, DENOISE_SETTLE, EFFORT_ENCODES,
                                                  EFFORT_SETTLE,
                                                  GIF_LOSSES, MAX_ENCODES, REGAIN_ENCODES, Fitted, Rung,
                                                  fewer_instants, fit_budget, ladder, losses)
from animated_previews.engine.encode import AVIF, GIF, WEBP, Setting
from animated_previews.engine.spec import parse_job
from animated_previews.engine.store.batch_jobs import effective_config
from animated_previews.kernels.hold import DEFAULT_HOLD_SLACK, KEEP


@pytest.fixture(scope="module")
def busy_clip(tmp_path_factory) -> Path:
    """Moving gradients and an index pattern: hundreds of KB as a 2 s GIF at its own size."""
    return clipmaker.make_clip(tmp_path_factory.mktemp("budget") / "busy.mp4", fps=25, frames=50, width=320, height=240)


def run(tmp_path: Path, clip: Path, lines: list[dict]) -> dict:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"input": str(clip), "fps": 10, "duration": 2, **line}) + "\n"
                                for line in lines))
    return {r.id: r for r in run_batch(Manifest(manifest), tmp_path / "out", workers=1)}


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_the_image_is_under_the_budget_and_says_what_it_gave_up(tmp_path, busy_clip, fmt):
    results = run(tmp_path, busy_clip, [{"id": "free", "format": fmt}])
    budget = results["free"].bytes // 3
    results.update(run(tmp_path, busy_clip, [{"id": "tight", "format": fmt, "max_bytes": budget}]))
    free, tight = results["free"], results["tight"]
    assert free.ok and tight.ok, tight.error_message
    assert tight.bytes <= budget < free.bytes
    assert Path(tight.output).stat().st_size == tight.bytes
    note = next(n for n in tight.notes if n.startswith("max_bytes"))
    assert f"max_bytes {budget}: {free.bytes} bytes as asked; gave up" in note
    with Image.open(tight.output) as image:  # the frames and timing the result reports are the file's
        assert image.n_frames <= tight.frames and image.size == (tight.width, tight.height)
    assert tight.duration == pytest.approx(free.duration, abs=0.02)  # fewer frames, each shown longer
    assert tight.frames * (free.fps / tight.fps) == pytest.approx(free.frames, abs=2)


def test_a_budget_the_image_already_meets_changes_nothing(tmp_path, busy_clip):
    results = run(tmp_path, busy_clip, [{"id": "free", "format": "webp"},
                                        {"id": "roomy", "format": "webp", "max_bytes": 50_000_000}])
    assert results["roomy"].bytes == results["free"].bytes
    assert not any(n.startswith("max_bytes") for n in results["roomy"].notes)


def test_a_budget_nothing_meets_fails_naming_the_smallest_size(tmp_path, busy_clip):
    results = run(tmp_path, busy_clip, [{"id": "tiny", "format": "gif", "max_bytes": 1024}])
    tiny = results["tiny"]
    assert not tiny.ok and tiny.error_code == "MaxBytesUnreachable"
    assert "max_bytes 1024 cannot be met: the smallest image reached is" in tiny.error_message
    assert not (tmp_path / "out" / "tiny.gif").exists()  # nothing over budget is written


def test_once_frames_are_dropped_quality_is_won_back_up_to_the_budget():
    """Bytes modelled as frames kept x (quality + 40) x 1,000. A budget of 850,000 is missed by
    every 2nd frame even at the floor quality 20 (900,000), so every 3rd frame it is: there
    quality 45 fits (850,000), not only the floor quality the ladder's rung carries."""
    from animated_previews.engine.decode import DecodedClip

    def encode(frames, delays, quality=None, effort=None):
        return bytes(len(delays) * ((quality or 75) + 40) * 1000)

    fmt = dataclasses.replace(WEBP, encode=encode, qualities=(75, 60, 45, 30, 20))
    clip = DecodedClip(frames=torch.zeros(30, 3, 8, 8, dtype=torch.uint8), index=torch.arange(30),
                       source_times=tuple(i / 10 for i in range(30)), frames_decoded=30)
    fitted = fit_budget(fmt, clip, [10] * 30, 850_000, lambda f, c: c.frames, encode(None, [10] * 30))
    assert (fitted.rung.every, fitted.rung.scale, fitted.rung.quality) == (3, 1.0, 45), fitted.rung
    assert len(fitted.data) == 850_000
    assert fitted.encodes <= 1 + MAX_ENCODES + REGAIN_ENCODES


def test_the_ladder_gives_up_quality_then_frames_then_size():
    for fmt in (GIF, WEBP, AVIF):
        rungs = ladder(fmt)
        assert len(rungs) + 1 <= 2 ** (MAX_ENCODES - 1)  # the floor plus a binary search stay in the bound
        everies = [r.every for r in rungs]
        scales = [r.scale for r in rungs]
        assert everies == sorted(everies) and scales == sorted(scales, reverse=True)
        first_fps = everies.index(2)
        assert all(r.scale == 1.0 for r in rungs[:first_fps + 2])  # frames go before size
        assert all(r.every == 1 for r in rungs[:first_fps])  # quality or colours go first
    assert [r.quality for r in ladder(WEBP)][:5] == [35, 27, 20, 12, 5]
    assert all(r.effort is None for r in ladder(WEBP))  # the slower effort is a way of its own
    gif = losses(GIF)
    assert gif[0].colours is None and gif[0].hold > DEFAULT_HOLD_SLACK  # first, pixels hold colours longer
    assert min(r.colours or 255 for r in gif) == 16 and max(r.hold for r in gif) == gif[-1].hold
    assert all((r.colours, r.hold) == (gif[-1].colours, gif[-1].hold) for r in ladder(GIF)[len(gif):])


def noisy_room(frames: int = 20, width: int = 160, height: int = 120):
    """A still room (smooth gradients) under sensor noise, as a camera films it: every frame differs
    from the one before in nearly every pixel, by a level or two. Decoded, not a file."""
    from animated_previews.engine.decode import DecodedClip

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    room = np.stack([150 + 60 * xx / width, 120 + 50 * yy / height, 110 + 30 * (xx + yy) / (width + height)], -1)
    shots = [np.clip(room + rng.normal(0, 2.5, (height, width, 1)), 0, 255).astype(np.uint8) for _ in range(frames)]
    pixels = torch.from_numpy(np.stack(shots)).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    return DecodedClip(frames=pixels, index=torch.arange(frames), source_times=tuple(i / 10 for i in range(frames)),
                       frames_decoded=frames)


def gif_psnr(data: bytes, clip) -> float:
    """PSNR of every frame a GIF shows against the clip's frames (one frame an instant)."""
    reference = clip.frames.permute(0, 2, 3, 1).numpy().astype(np.float64)
    with Image.open(io.BytesIO(data)) as image:
        assert image.n_frames == len(reference)
        errors = []
        for k in range(image.n_frames):
            image.seek(k)
            errors.append(np.mean((np.asarray(image.convert("RGB"), dtype=np.float64) - reference[k]) ** 2))
    return float(10 * np.log10(255 ** 2 / np.mean(errors)))


def test_a_noisy_scene_under_a_gif_budget_holds_colours_longer_and_uses_the_budget():
    """Noise makes a GIF re-send pixels every frame; letting each keep its colour while a little
    worse (the hold slack) takes those bytes at less cost than fewer colours: with only colours to
    give up, 40% off this scene cost 4.2 dB (32 colours, 73% of the budget used)."""
    from animated_previews.engine.render import render

    clip = noisy_room()
    delays = [10] * 20
    own = GIF.encode(render(GIF, clip), delays)
    budget = int(0.6 * len(own))
    fitted = fit_budget(GIF, clip, delays, budget, render, own)
    assert (fitted.rung.every, fitted.rung.scale) == (1, 1.0) and fitted.rung.hold > DEFAULT_HOLD_SLACK, fitted.rung
    assert 0.85 * budget <= len(fitted.data) <= budget
    assert gif_psnr(fitted.data, clip) >= gif_psnr(own, clip) - 2.6
    assert "hold slack" in fitted.note(GIF, budget, len(own))


def as_settings(fmt, clip) -> tuple[int, float]:
    """A stand-in for render: the palette size and hold slack it would render with."""
    return fmt.palette_colours, DEFAULT_HOLD_SLACK if fmt.hold_slack is None else fmt.hold_slack


def test_the_hold_slack_is_searched_down_to_the_least_that_fits():
    """Bytes modelled as (3 - slack) x 100,000 at full colours, 5% less at fewer: a budget of
    220,000 fits from a slack of 0.8; the ladder's first rungs (0.6, and 0.6 at 128 colours) miss
    it, the next (1.0 at full colours) fits, and the search between the own slack (0.35) and 1.0
    ends at most 1/8 of that span above 0.8."""
    def encode(frames, delays, quality=None):
        colours, slack = frames
        return bytes(int((3 - slack) * 100_000 * (1 if colours == 255 else 0.95)))

    fmt = dataclasses.replace(GIF, encode=encode)
    clip = noisy_room(frames=4, width=8, height=8)
    own = encode((255, DEFAULT_HOLD_SLACK), None)
    fitted = fit_budget(fmt, clip, [10] * 4, 220_000, as_settings, own)
    assert (fitted.rung.colours, fitted.rung.every) == (None, 1) and len(fitted.data) <= 220_000
    assert 0.8 <= fitted.rung.hold <= 0.8 + (1.0 - DEFAULT_HOLD_SLACK) / 8, fitted.rung
    assert fitted.encodes <= 1 + MAX_ENCODES + REGAIN_ENCODES


def test_once_frames_are_dropped_a_gifs_colours_and_hold_are_won_back_level_by_level():
    """Bytes modelled as frames x a size per setting falling along the GIF ladder (own 100 ..
    (32, 1.6) 60, (16, 1.6) 50): 12 frames at 360 miss every setting; every 2nd frame fits at
    (32, 1.6), the last level before the floor, which the search back up must reach."""
    sizes = {(255, DEFAULT_HOLD_SLACK): 100, (255, 0.6): 95, (128, 0.6): 90, (255, 1.0): 85, (128, 1.0): 80,
             (64, 1.0): 75, (64, 1.6): 70, (32, 1.6): 60, (16, 1.6): 50}
    assert list(sizes)[1:] == list(GIF_LOSSES)

    def render(fmt, clip):
        return (*as_settings(fmt, clip), len(clip.index))

    def encode(frames, delays, quality=None):
        colours, slack, count = frames
        return bytes(count * sizes[(colours, slack)])

    fmt = dataclasses.replace(GIF, encode=encode)
    clip = noisy_room(frames=12, width=8, height=8)
    fitted = fit_budget(fmt, clip, [10] * 12, 360, render, bytes(1200))
    assert (fitted.rung.every, fitted.rung.scale, fitted.rung.colours, fitted.rung.hold) == (2, 1.0, 32, 1.6)
    assert len(fitted.data) == 360 and fitted.encodes <= 1 + MAX_ENCODES + REGAIN_ENCODES


def test_a_quality_between_the_ladders_steps_is_found_when_every_frame_is_kept():
    """Bytes modelled as quality x 10,000: a budget of 390,000 misses the default (45) and fits
    the ladder's first step (35); the search between them ends at 39, the budget exactly."""
    def encode(frames, delays, quality=None, effort=None):
        return bytes((quality or 45) * 10_000)

    fmt = dataclasses.replace(WEBP, encode=encode)
    clip = noisy_room(frames=4, width=8, height=8)
    fitted = fit_budget(fmt, clip, [100] * 4, 390_000, lambda f, c: c.frames, encode(None, None))
    assert (fitted.rung.quality, fitted.rung.every, len(fitted.data)) == (39, 1, 390_000), fitted.rung
    assert "quality 39 (from 45)" in fitted.note(fmt, 390_000, 450_000)
    assert fitted.encodes <= 1 + MAX_ENCODES + REGAIN_ENCODES


def test_where_the_frames_chose_a_higher_quality_the_search_climbs_back_towards_it():
    """Modelled bytes quality x 10,000. A WebP the writer coded at quality 60 (text over flat
    ground) under 530,000: the ladder's first step (35) fits, and the search back up runs towards
    60, the job's own (4 halvings: 48, 54 misses, 51, 52). At the format's default (45) under
    430,000 it runs towards 45 (40, 42, 44 misses, 43)."""
    seen = []

    def encode(frames, delays, quality=None, effort=None):
        seen.append(effort)
        return bytes(quality * 10_000)

    fmt = dataclasses.replace(WEBP, encode=encode)
    clip = noisy_room(frames=4, width=8, height=8)
    chose = fit_budget(fmt, clip, [100] * 4, 530_000, lambda f, c: c.frames, bytes(600_000), own=Setting(60, 2))
    assert (chose.rung.quality, len(chose.data)) == (52, 520_000), chose.rung
    assert set(seen) == {2}  # every rung at the job's own method
    seen.clear()
    default = fit_budget(fmt, clip, [100] * 4, 430_000, lambda f, c: c.frames, bytes(450_000))
    assert (default.rung.quality, len(default.data)) == (43, 430_000), default.rung
    assert set(seen) == {1}


def test_the_other_efforts_tried_are_those_other_than_the_jobs_own():
    """A job coded at method 2 (the writer's choice) tries methods 1 and 4 beside its ladder."""
    tried = set()

    def encode(frames, delays, quality=None, effort=None):
        tried.add(effort)
        return marked_webp(quality, effort, len(delays))

    fmt = dataclasses.replace(WEBP, encode=encode)
    clip = noisy_room(frames=4, width=8, height=8)
    fit_budget(fmt, clip, [100] * 4, 300_000, lambda f, c: c.frames, encode(None, [100] * 4, 60, 2),
               image_error=lambda data, reference, delays_ms: 1.0, own=Setting(60, 2))
    assert tried == {1, 2, 4}
    tried.clear()
    fit_budget(fmt, clip, [100] * 4, 300_000, lambda f, c: c.frames, encode(None, [100] * 4, 45, 1),
               image_error=lambda data, reference, delays_ms: 1.0)
    assert tried == {1, 2, 4}


def marked_webp(quality: int | None, effort: int | None, frames: int) -> bytes:
    """A modelled WebP: (quality x 10,000 x frames / 4) bytes, four fifths of that at method 2,
    three fifths at method 4; its first byte says which method made it."""
    size = int((quality or 45) * 10_000 * frames / 4 * {2: 0.8, 4: 0.6}.get(effort, 1.0))
    return bytes([effort or 1]) * size


@pytest.mark.parametrize("better", ["method 4", "method 2", "method 1"])
def test_a_webp_codes_with_the_method_whose_decoded_frames_show_least_error(better):
    """Under 400,000 modelled bytes, method 1 fits from quality 40, method 2 from 50 and method 4
    from 66 (each found between two of the qualities tried in two halvings: within 4 of it);
    their quality numbers do not mean the same picture, so the decoded images decide (the
    talking head at ffmpeg's bytes: method 2; screen text: method 4)."""
    def encode(frames, delays, quality=None, effort=None):
        return marked_webp(quality, effort, len(delays))

    def image_error(data, reference, delays_ms):
        assert reference is clip and list(delays_ms) == [100.0] * 4  # the clip as decoded, at every instant
        return 1.0 if f"method {data[0]}" == better else 5.0

    fmt = dataclasses.replace(WEBP, encode=encode)
    clip = noisy_room(frames=4, width=8, height=8)
    fitted = fit_budget(fmt, clip, [100] * 4, 400_000, lambda f, c: c.frames, encode(None, [100] * 4),
                        image_error=image_error)
    assert len(fitted.data) <= 400_000 and fitted.rung.every == 1
    if better == "method 4":
        assert fitted.rung.effort == 4 and 63 <= fitted.rung.quality <= 66, fitted.rung
        note = f"speed (encoder effort 4, from 1), quality {fitted.rung.quality} (from 45)"
        assert note in fitted.note(fmt, 400_000, 450_000)
    elif better == "method 2":
        assert fitted.rung.effort == 2 and 46 <= fitted.rung.quality <= 50, fitted.rung
    else:
        assert (fitted.rung.effort, fitted.rung.quality) == (None, 40), fitted.rung
    slower = len(WEBP.efforts) - 1
    assert fitted.encodes <= 1 + MAX_ENCODES + REGAIN_ENCODES + slower * (EFFORT_ENCODES + EFFORT_SETTLE)


def test_a_webp_that_had_to_drop_frames_keeps_them_with_the_slower_method():
    """Under 36,000 modelled bytes method 1 misses even at quality 5 (50,000) and drops every 2nd
    frame, method 2 misses too (40,000); method 4 keeps every frame at full size at quality 6
    (36,000), and wins without being measured against an image that shows fewer frames."""
    def encode(frames, delays, quality=None, effort=None):
        return marked_webp(quality, effort, len(delays))

    fmt = dataclasses.replace(WEBP, encode=encode)
    clip = noisy_room(frames=4, width=8, height=8)
    fitted = fit_budget(fmt, clip, [100] * 4, 36_000, lambda f, c: c.frames, encode(None, [100] * 4),
                        image_error=lambda data, reference, delays_ms: 9.0)
    assert (fitted.rung.effort, fitted.rung.quality, fitted.rung.every, fitted.rung.scale) == (4, 6, 1, 1.0)
    assert fitted.frames == 4 and len(fitted.data) == 36_000


def test_webps_efforts_start_at_the_writers_default_method_and_other_formats_take_none():
    from animated_previews.engine.encode import IndexedFrames
    from animated_previews.engine.encode.webp import DEFAULT_METHOD

    assert WEBP.efforts == (DEFAULT_METHOD, 2, 4) and GIF.efforts == () and AVIF.efforts == ()
    from animated_previews.engine.encode import avif, webp

    # a job's encode is given its format's default setting explicitly: it must be the writers' own
    assert WEBP.default_setting == Setting(webp.DEFAULT_QUALITY, webp.DEFAULT_METHOD)
    assert AVIF.default_setting == Setting(avif.DEFAULT_QUALITY, None) and GIF.default_setting == Setting()
    frames = IndexedFrames(np.zeros((1, 4, 4), np.uint8), np.zeros((1, 3), np.uint8))
    with pytest.raises(TypeError, match="no effort"):
        GIF.encode(frames, [10], effort=4)


@pytest.mark.parametrize("better", ["fewer colours", "held colours"])
def test_a_gif_at_every_frame_takes_whichever_way_to_its_size_shows_less_error(better):
    """Bytes modelled as in the test above (held colours: the slack fits from 0.8; at the own
    slack 64 colours fit, 96 and 128 do not, 80 does); the error each setting shows decides."""
    def encode(frames, delays, quality=None):
        colours, slack = frames
        return bytes(int((3 - slack) * 100_000 * palette_factor(colours)))

    def error(frames, clip):
        colours, slack = frames
        alone = colours < 255 and slack == DEFAULT_HOLD_SLACK  # fewer colours, the own slack
        return {"fewer colours": 1.0 if alone else 5.0, "held colours": 5.0 if alone else 1.0}[better]

    fmt = dataclasses.replace(GIF, encode=encode)
    clip = noisy_room(frames=4, width=8, height=8)
    fitted = fit_budget(fmt, clip, [10] * 4, 220_000, as_settings,
                        encode((255, DEFAULT_HOLD_SLACK), None), error=error)
    if better == "fewer colours":
        assert (fitted.rung.colours, fitted.rung.hold) == (80, None), fitted.rung
    else:
        assert fitted.rung.colours is None and 0.8 <= fitted.rung.hold < 1.0, fitted.rung
    assert fitted.encodes <= (1 + MAX_ENCODES + REGAIN_ENCODES + COLOUR_ENCODES + COLOUR_SETTLE + DENOISE_ENCODES
                              + DENOISE_SETTLE)


def palette_factor(colours: int) -> float:
    """A GIF's bytes against 255 colours', growing with the palette (64: 0.775, 128: 0.95)."""
    return 1.0 if colours >= 255 else 0.6 + 0.35 * colours / 128


def more_colours_show_less_error(frames, clip) -> float:
    """An error model: fewer colours at the own hold slack show the least error, the more colours
    the less; held colours show more."""
    colours, slack = frames
    return 1.0 + (255 - colours) / 255 if slack == DEFAULT_HOLD_SLACK else 5.0


@pytest.mark.parametrize("settle, colours", [(COLOUR_SETTLE, 80), (0, 64)])
def test_fewer_colours_are_searched_between_the_palette_steps(monkeypatch, settle, colours):
    """A greyscale film under gifski's bytes took 32 colours where 40 fitted (42.17 dB against
    gifski's 42.81; with 40, 44.59): after the halving steps (128, 64, 32) the palette sizes
    between the one that fits and the one that missed are searched. Modelled: 64 fits, 128 and
    96 miss, 80 fits; without the search (``COLOUR_SETTLE`` 0) the budget stops at 64."""
    import animated_previews.engine.byte_budget as byte_budget

    monkeypatch.setattr(byte_budget, "COLOUR_SETTLE", settle)

    def encode(frames, delays, quality=None):
        colours, slack = frames
        return bytes(int((3 - slack) * 100_000 * palette_factor(colours)))

    fmt = dataclasses.replace(GIF, encode=encode)
    clip = noisy_room(frames=4, width=8, height=8)
    fitted = fit_budget(fmt, clip, [10] * 4, 220_000, as_settings, encode((255, DEFAULT_HOLD_SLACK), None),
                        error=more_colours_show_less_error)
    assert (fitted.rung.colours, fitted.rung.hold, fitted.frames) == (colours, None, 4), fitted.rung
    assert len(fitted.data) <= 220_000


def test_above_128_colours_the_sizes_up_to_the_formats_own_are_searched():
    """Eight-colour gradients moving fast (bench/library-holdout) under gifski's 2.12 MB took 128
    colours and 1.79 MB, -0.90 dB against gifski, where more colours fitted: when the first step
    fits, the sizes between it and the format's own 255 (which missed) are searched. Modelled:
    bytes in proportion to the colours; 192 fits, 224 misses."""
    def encode(frames, delays, quality=None):
        colours, slack = frames
        return bytes(int((3 - slack) * 100_000 * min(colours, 255) / 255))

    fmt = dataclasses.replace(GIF, encode=encode)
    clip = noisy_room(frames=4, width=8, height=8)
    fitted = fit_budget(fmt, clip, [10] * 4, 215_000, as_settings, encode((255, DEFAULT_HOLD_SLACK), None),
                        error=more_colours_show_less_error)
    assert (fitted.rung.colours, fitted.rung.hold, fitted.frames) == (192, None, 4), fitted.rung
    assert len(fitted.data) <= 215_000


def test_a_noisy_scene_under_a_gif_budget_is_rendered_from_denoised_frames_and_shows_less_error(monkeypatch):
    """A quarter of the bytes of a still room under sensor noise: held colours alone keep one
    noisy frame's colours on screen; the same frames with their noise averaged out over time hold
    as many pixels nearer every frame. Measured against the noisy frames themselves, not the
    averaged ones (at half the bytes the held colours still show less error here: the mean's
    own error, the noise, is then the larger part)."""
    import animated_previews.engine.byte_budget as byte_budget
    from animated_previews.engine.render import render, shown_error

    clip = noisy_room()
    delays = [10] * 20
    own = GIF.encode(render(GIF, clip), delays)
    budget = len(own) // 4
    fitted = fit_budget(GIF, clip, delays, budget, render, own, error=shown_error)
    assert fitted.rung.denoised and (fitted.rung.every, fitted.rung.scale) == (1, 1.0), fitted.rung
    assert len(fitted.data) <= budget and fitted.frames == 20
    assert "noise averaged out" in fitted.note(GIF, budget, len(own))
    monkeypatch.setattr(byte_budget, "_denoised", lambda *args: None)
    plain = fit_budget(GIF, clip, delays, budget, render, own, error=shown_error)
    assert not plain.rung.denoised and len(plain.data) <= budget
    assert gif_psnr(fitted.data, clip) > gif_psnr(plain.data, clip) + 0.5


def settings_and_source(clip):
    """A stand-in for render: palette size, hold slack, instants, and whether the frames are the
    clip's own (False: the byte budget's denoised copy)."""
    return lambda fmt, shaped: (*as_settings(fmt, shaped), len(shaped.index), shaped.frames is clip.frames)


@pytest.mark.parametrize("better", ["denoised", "as decoded"])
def test_denoised_frames_are_kept_only_where_they_show_less_error(better):
    """Bytes modelled as (3 - slack) x 100,000, a third less from denoised frames: both ways fit
    220,000 at every frame; the error each shows decides (film grain is the picture: there the
    frames as decoded win)."""
    def encode(frames, delays, quality=None):
        colours, slack, count, own_frames = frames
        return bytes(int((3 - slack) * 100_000 * (1 if own_frames else 0.67) * (1 if colours == 255 else 0.95)))

    def error(frames, reference):
        assert reference is clip  # always against the frames as decoded
        return 1.0 if (frames[3] is False) == (better == "denoised") else 5.0

    clip = noisy_room(frames=4, width=8, height=8)
    fmt = dataclasses.replace(GIF, encode=encode)
    fitted = fit_budget(fmt, clip, [10] * 4, 220_000, settings_and_source(clip),
                        encode((255, DEFAULT_HOLD_SLACK, 4, True), None), error=error)
    assert fitted.rung.denoised == (better == "denoised"), fitted.rung
    assert (fitted.rung.every, fitted.rung.scale) == (1, 1.0) and len(fitted.data) <= 220_000
    assert fitted.encodes <= 1 + MAX_ENCODES + REGAIN_ENCODES + COLOUR_ENCODES + DENOISE_ENCODES + DENOISE_SETTLE


def test_the_denoised_frames_hold_slack_is_searched_between_the_levels():
    """Denoised bytes modelled as (3 - slack) x 100,000 (the frames as decoded: 100,000 a frame,
    whatever the setting, so they must drop every 2nd frame): under 220,000 the denoised levels
    0.6 miss and 1.0 fit, and the search between them ends at 0.8, the budget exactly."""
    def encode(frames, delays, quality=None, effort=None):
        colours, slack, count, own_frames = frames
        if own_frames or count < 4:  # as decoded, or frames dropped (the denoised route keeps every one)
            return bytes(count * 100_000)
        return bytes(int(round((3 - slack) * 100_000)) * (1 if colours == 255 else 2))

    clip = noisy_room(frames=4, width=8, height=8)
    fmt = dataclasses.replace(GIF, encode=encode)
    fitted = fit_budget(fmt, clip, [10] * 4, 220_000, settings_and_source(clip), bytes(400_000),
                        error=lambda frames, reference: 1.0)
    assert fitted.rung.denoised and fitted.rung.hold == 0.8 and fitted.frames == 4, fitted.rung
    assert len(fitted.data) == 220_000


def test_denoised_frames_that_fit_at_every_frame_win_over_dropping_frames():
    """Bytes modelled as instants x a size, a quarter from denoised frames at slack 1.0 or more:
    12 frames under 400 bytes miss every setting of the frames as decoded (every 2nd frame is
    needed), and fit whole when denoised: frames are given up after hold and colours."""
    def encode(frames, delays, quality=None):
        colours, slack, count, own_frames = frames
        size = 100 if own_frames or slack < 1.0 else 25
        return bytes(count * (size if colours == 255 else size - 10))

    clip = noisy_room(frames=12, width=8, height=8)
    fmt = dataclasses.replace(GIF, encode=encode)
    fitted = fit_budget(fmt, clip, [10] * 12, 400, settings_and_source(clip), bytes(1200),
                        error=lambda frames, reference: 1.0)
    assert fitted.rung.denoised and fitted.rung.every == 1 and fitted.frames == 12, fitted.rung
    assert fitted.rung.hold == 1.0 and len(fitted.data) == 300


def test_the_error_shown_counts_what_stays_on_screen():
    from animated_previews.engine.encode import IndexedFrames
    from animated_previews.engine.render import shown_error

    clip = noisy_room(frames=2, width=4, height=4)
    clip = dataclasses.replace(clip, frames=torch.full_like(clip.frames, 100))
    clip.frames[1, 0, 0, 0] = 103  # the second frame's first pixel is 3 levels redder
    same = np.zeros((2, 4, 4), np.uint8)
    kept = same.copy()
    kept[1] = KEEP  # the second frame keeps the first's colours
    grey = np.array([[100, 100, 100]], np.uint8)
    assert shown_error(IndexedFrames(same, grey), clip, stride=1) == pytest.approx(9 / (2 * 16 * 3))
    assert shown_error(IndexedFrames(kept, grey), clip, stride=1) == pytest.approx(9 / (2 * 16 * 3))
    off = np.array([[101, 100, 100]], np.uint8)  # one level off everywhere, kept or not
    assert shown_error(IndexedFrames(kept, off), clip, stride=1) == pytest.approx((31 * 1 + 4) / 96)
    per_frame = np.stack([grey, off])  # each frame its own palette: the second's KEEP still shows grey
    assert shown_error(IndexedFrames(kept, per_frame), clip, stride=1) == pytest.approx(9 / 96)


def test_the_error_of_a_decoded_webp_is_taken_at_every_instant_though_the_file_merged_them():
    """Three instants of one picture and a fourth of another: the WebP writer stores the first
    three as one longer frame, and the error still compares each instant with what is on screen
    then (small: lossy coding), not file frame k with instant k (the clip shown backwards is
    far off)."""
    from animated_previews.engine.encode import RGBFrames
    from animated_previews.engine.render import decoded_error

    room = noisy_room(frames=2, width=64, height=48).frames
    picture = room[:1].clone()
    other = (255 - room[:1]).contiguous(memory_format=torch.channels_last)
    frames = torch.cat([picture, other]).contiguous(memory_format=torch.channels_last)
    clip = dataclasses.replace(noisy_room(frames=4, width=64, height=48), frames=frames,
                               index=torch.tensor([0, 0, 0, 1]))
    data = WEBP.encode(RGBFrames(frames[clip.index].permute(0, 2, 3, 1).contiguous().numpy()), [100] * 4)
    with Image.open(io.BytesIO(data)) as image:
        assert image.n_frames == 2  # the file merged the three
    assert decoded_error(data, clip, [100.0] * 4, stride=1) < 20
    backwards = dataclasses.replace(clip, index=torch.tensor([1, 1, 1, 0]))
    assert decoded_error(data, backwards, [100.0] * 4, stride=1) > 1000
    with pytest.raises(ValueError, match="3 delays for 4 instants"):
        decoded_error(data, clip, [100.0] * 3)


def test_fewer_instants_keep_the_animation_length():
    index = torch.arange(7)
    kept, delays = fewer_instants(index, [10, 10, 10, 10, 10, 10, 5], 3)
    assert kept.tolist() == [0, 3, 6] and delays == (30, 30, 5)
    assert Rung(colours=16, every=3, scale=0.5).describe(GIF) == "16 colours (from 255), every 3rd frame, 0.5 of the size"


def text_page_video(path: Path, frames: int = 20, width: int = 320, height: int = 192) -> Path:
    """:func:`clipmaker.text_page` as H.264 at 10 fps: footage the WebP writer codes at its
    mixed-detail setting."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "12"}
        for page in clipmaker.text_page(frames, height, width):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(page, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_a_webp_jobs_budget_note_counts_from_the_setting_its_frames_chose(tmp_path):
    clip = text_page_video(tmp_path / "page.mp4")
    results = run(tmp_path, clip, [{"id": "free", "format": "webp"}])
    budget = results["free"].bytes * 2 // 3
    results.update(run(tmp_path, clip, [{"id": "tight", "format": "webp", "max_bytes": budget}]))
    tight = results["tight"]
    assert tight.status == "success" and tight.bytes <= budget
    (note,) = [n for n in tight.notes if n.startswith("max_bytes")]
    assert "(from 60)" in note or "from 2)" in note, note
    assert "(from 45)" not in note and "from 1)" not in note, note


def test_the_note_starts_from_the_setting_the_frames_chose():
    """A WebP of text over flat ground is coded at method 2, quality 60 (the writer's choice), so
    what a budget gave up is counted from there, not from the format's defaults; what equals the
    job's own is no loss and is not named."""
    from animated_previews.engine.encode import RGBFrames
    from animated_previews.engine.encode.webp import MIXED_DETAIL_SETTING

    rung = Rung(quality=52, effort=4)
    assert rung.describe(WEBP) == "speed (encoder effort 4, from 1), quality 52 (from 45)"
    page = np.full((4, 64, 64, 3), 220, np.uint8)
    page[:, 8:40:4, 8:56] = 20  # strokes on a third of the blocks
    own = WEBP.setting_for(RGBFrames(page))
    assert own == Setting(*MIXED_DETAIL_SETTING) == Setting(60, 2)
    assert rung.describe(WEBP, own) == "speed (encoder effort 4, from 2), quality 52 (from 60)"
    assert Rung(quality=45, effort=2).describe(WEBP, own) == "quality 45 (from 60)"
    assert Rung(quality=60, effort=1).describe(WEBP, own) == "speed (encoder effort 1, from 2)"
    fitted = Fitted(b"x", rung, (100,) * 4, 4, 64, 64, 9)
    assert "quality 52 (from 60)" in fitted.note(WEBP, 1000, 2000, own)
    assert GIF.chooses is None and GIF.setting_for(None) == Setting(None, None)


@pytest.mark.parametrize("value", [1024, "50000", 2.0e6])
def test_max_bytes_is_a_whole_number_of_bytes(tmp_path, value):
    spec = parse_job({"input": "a.mp4", "format": "gif", "fps": 5, "duration": 1, "max_bytes": value},
                     default_id="a", input_root=tmp_path)
    assert spec.max_bytes == int(float(value))
    assert effective_config(spec)["max_bytes"] == spec.max_bytes


@pytest.mark.parametrize("value", [100, 0, -5, "lots", 1.5, True, 2**40])
def test_a_budget_that_is_not_a_size_is_refused(tmp_path, value):
    with pytest.raises(EngineError, match="max_bytes must be a whole number of bytes from 1024"):
        parse_job({"input": "a.mp4", "format": "gif", "fps": 5, "duration": 1, "max_bytes": value},
                  default_id="a", input_root=tmp_path)


def test_templateconfig_takes_maxbytes_and_a_line_without_it_keeps_its_identity(tmp_path):
    spec = parse_job({"input": "a.mp4", "TemplateConfig": {"Format": "webp", "Fps": "5", "MaxBytes": "65536",
                                                           "TimeSpan": {"Duration": "1"}}},
                     default_id="a", input_root=tmp_path)
    assert spec.max_bytes == 65536
    with pytest.raises(EngineError, match="MaxBytes must be"):
        parse_job({"input": "a.mp4", "TemplateConfig": {"Format": "webp", "Fps": "5", "MaxBytes": "1k",
                                                        "TimeSpan": {"Duration": "1"}}},
                  default_id="a", input_root=tmp_path)
    plain = parse_job({"input": "a.mp4", "format": "gif", "fps": 5, "duration": 1}, default_id="a", input_root=tmp_path)
    assert "max_bytes" not in effective_config(plain)


def test_a_templates_max_bytes_round_trips_through_the_store_and_reaches_its_jobs(tmp_path, busy_clip):
    from animated_previews.engine import Service

    with Service(store=tmp_path / "s.db") as service:
        small = service.add_template("small-webp", format="webp", fps=10, seek=0, duration=2, max_bytes=20_000)
        plain = service.add_template("plain-webp", format="webp", fps=10, seek=0, duration=2)
    with Service(store=tmp_path / "s.db") as service:  # read back from the file
        assert service.template_info(small.id)["TemplateConfig"]["MaxBytes"] == "20000"
        assert "MaxBytes" not in service.template_info(plain.id)["TemplateConfig"]
        assert service.update_template(small.id, max_bytes=30_000).max_bytes == 30_000
        manifest = tmp_path / "m.jsonl"
        manifest.write_text(json.dumps({"id": "t", "input": str(busy_clip), "template": "small-webp"}) + "\n")
        (result,) = service.run_batch(service.manifest(manifest), tmp_path / "out", workers=1)
    assert result.ok and result.bytes <= 30_000, result


def test_engine_template_add_takes_fit_pad_colour_and_max_bytes(tmp_path):
    from click.testing import CliRunner

    from animated_previews.cli.main import main
    from animated_previews.engine import Service

    store = tmp_path / "s.db"
    added = CliRunner().invoke(main, ["template", "add", "--store", str(store), "--name", "boxed-gif", "--format", "gif",
                                      "--fps", "5", "--duration", "1", "--width", "100", "--height", "100",
                                      "--fit", "pad", "--pad-colour", "FF0000", "--max-bytes", "5000"])
    assert added.exit_code == 0, added.output
    refused = CliRunner().invoke(main, ["template", "add", "--store", str(store), "--name", "huge-gif", "--format", "gif",
                                        "--fps", "5", "--duration", "1", "--max-bytes", "12"])
    assert refused.exit_code == 1 and "MaxBytes must be a whole number of bytes from 1024" in refused.output
    with Service(store=store) as service:
        template = service.template("boxed-gif")
    assert (template.fit, template.pad_colour, template.max_bytes) == ("pad", "#ff0000", 5000)


def test_a_queued_job_keeps_its_templates_max_bytes():
    from types import SimpleNamespace

    from animated_previews.engine.vod.worker import job_spec

    snapshot = {"format": "webp", "fps": 5, "seek": 0, "duration": 2, "trim_end": None, "width": None,
                "height": None, "set_as_cover": False}
    older = job_spec(SimpleNamespace(id="j", spec=snapshot), Path("/v.mp4"), Path("/o.webp"))
    budget = job_spec(SimpleNamespace(id="j", spec={**snapshot, "max_bytes": 30_000}), Path("/v.mp4"), Path("/o.webp"))
    assert (older.max_bytes, budget.max_bytes) == (None, 30_000)
