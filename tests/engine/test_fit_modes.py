"""``fit`` and ``pad_colour``: how a picture goes into width x height, from a manifest line, a
TemplateConfig, a stored template or the Python API, to the pixels of the image.

The source is the 320x240 test clip (frame k shows index k over a colour gradient) asked
200x200: fill stretches it, contain makes it 200x150, cover keeps its middle 240x240, pad puts it
at 200x150 between two 25-row bars. The rotated clip is shown 240x320, so its bars are at the
sides and its cover keeps the middle rows. Pixels are compared with the frame clipmaker drew,
resized by the engine's own resize kernel.
"""

from __future__ import annotations

import json
import sqlite3
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch

import clients
import clipmaker
from animated_previews.engine import Service
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.errors import EngineError, ErrorCode
from animated_previews.engine.geometry import largest_output_size, output_size
from animated_previews.engine.job import run_job
from animated_previews.engine.spec import JobSpec, parse_job
from animated_previews.engine.store.batch_jobs import effective_config
from animated_previews.engine.store.schema import MIGRATIONS
from animated_previews.engine.vod.worker import job_spec
from animated_previews.kernels.resize import resize

ROOT = Path("/videos")
MAGENTA = (255, 0, 255)
ALLOWED = "fill, contain, cover, pad"


def line(**fields) -> dict:
    return {"input": "a.mp4", "format": "gif", "fps": 5, "duration": 1, **fields}


def spec(**fields) -> JobSpec:
    return parse_job(line(**fields), default_id="j", input_root=ROOT)


def refused(fields: dict, **kwargs) -> EngineError:
    with pytest.raises(EngineError) as caught:
        parse_job(fields, default_id="j", input_root=ROOT, **kwargs)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    return caught.value


def expected(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """``picture`` (H x W x 3) resized by the engine's kernel, as ints."""
    tensor = torch.from_numpy(np.ascontiguousarray(picture)).permute(2, 0, 1)[None]
    return resize(tensor, height, width)[0].permute(1, 2, 0).numpy().astype(int)


def first_frame(result) -> np.ndarray:
    assert result.ok, result.error_message
    return clients.pillow_frames(Path(result.output))[0][0].astype(int)


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


# -- the request -------------------------------------------------------------------------------------

def test_fill_is_the_default_and_lines_without_fit_are_the_same_job_as_before():
    plain = spec(width=200, height=200)
    assert (plain.fit, plain.pad_colour) == ("fill", None)
    assert plain == JobSpec(id="j", input=ROOT / "a.mp4", format="gif", fps=5.0, duration=1.0, width=200, height=200)
    assert spec(width=200, height=200, fit="fill") == plain
    assert "fit" not in effective_config(plain)  # the batch key of an existing line does not change


@pytest.mark.parametrize("mode", ["fill", "contain", "cover", "pad"])
def test_every_mode_in_every_shape(mode):
    snake = spec(width=200, height=200, fit=mode.upper())
    flat = parse_job({"input": "a.mp4", "TemplateConfig": {"Format": "gif", "Fps": "5", "Width": "200", "Height": "200",
                      "TimeSpan": {"Duration": "1"}, "Fit": mode}}, default_id="j", input_root=ROOT)
    nested = parse_job({"input": "a.mp4", "TemplateConfig": json.dumps({
        "Video": {"Width": "200", "Height": "200", "Fps": "5"}, "Container": {"Format": "gif"},
        "Clip": {"TimeSpan": {"Duration": "1"}}, "Fit": mode})}, default_id="j", input_root=ROOT)
    assert snake.fit == flat.fit == nested.fit == mode
    assert snake == flat == nested
    assert snake.pad_colour == ("#000000" if mode == "pad" else None)  # black bars unless told


@pytest.mark.parametrize("given, stored", [("#FF00aa", "#ff00aa"), ("ff00aa", "#ff00aa"), (" #123456 ", "#123456"),
                                           ("000000", "#000000")])
def test_pad_colour_is_rrggbb_with_or_without_the_hash(given, stored):
    job = spec(width=200, height=200, fit="pad", pad_colour=given)
    assert job.pad_colour == stored
    assert job.pad_rgb == tuple(int(stored[i:i + 2], 16) for i in (1, 3, 5))


@pytest.mark.parametrize("value", ["zoom", "stretch", 3, True, ["pad"], {"mode": "pad"}])
def test_an_unknown_fit_is_refused_with_the_allowed_modes(value):
    err = refused(line(width=200, height=200, fit=value))
    assert f"fit must be one of {ALLOWED}" in err.message and repr(value) in err.message
    assert "the overflow cropped" in err.message  # each mode says what it does


def test_a_template_config_names_its_own_fields():
    err = refused({"input": "a.mp4", "TemplateConfig": {"Format": "gif", "Fps": 5, "Width": 9, "Height": 9,
                                                        "TimeSpan": {"Duration": 1}, "Fit": "zoom"}})
    assert err.message.startswith(f"Fit must be one of {ALLOWED}")
    err = refused({"input": "a.mp4", "TemplateConfig": {"Format": "gif", "Fps": 5, "Width": 9, "Height": 9,
                                                        "TimeSpan": {"Duration": 1}, "Fit": "pad", "PadColour": "red"}})
    assert err.message.startswith("PadColour must be a colour as #rrggbb or rrggbb")


@pytest.mark.parametrize("value", ["red", "#fff", "#12345g", "#1234567", "0x00ff00", 0xFF00FF, ["#000000"]])
def test_a_pad_colour_that_is_not_rrggbb_is_refused(value):
    err = refused(line(width=200, height=200, fit="pad", pad_colour=value))
    assert "pad_colour must be a colour as #rrggbb or rrggbb" in err.message and repr(value) in err.message


@pytest.mark.parametrize("mode", ["contain", "cover", "pad"])
@pytest.mark.parametrize("sides", [{"width": 200}, {"height": 200}, {}])
def test_a_fit_other_than_fill_needs_both_sides_and_says_why(mode, sides):
    err = refused(line(fit=mode, **sides))
    assert f"fit {mode} needs both width and height" in err.message
    assert "keeps the source's aspect ratio anyway" in err.message


def test_fill_with_one_side_keeps_the_aspect_as_before():
    assert spec(width=200, fit="fill").fit == "fill"


@pytest.mark.parametrize("mode", ["fill", "contain", "cover", None])
def test_a_pad_colour_without_pad_is_refused(mode):
    fields = line(width=200, height=200, pad_colour="#ff0000", **({"fit": mode} if mode else {}))
    err = refused(fields)
    assert "pad_colour colours the bars of fit pad" in err.message and f"fit is {mode or 'fill'}" in err.message


def test_unknown_spellings_are_refused_listing_the_fields():
    err = refused(line(width=200, height=200, fit="pad", pad_color="#ff0000"))
    assert "pad_color" in err.message and "pad_colour" in err.message and "fit" in err.message


def test_a_line_changing_a_templates_fit_drops_the_templates_bars():
    stored = {"format": "gif", "fps": 5.0, "seek": 0.0, "duration": 1.0, "trim_end": None, "width": 200,
              "height": 200, "set_as_cover": False, "fit": "pad", "pad_colour": "#ff0000"}

    def from_template(**fields):
        return parse_job({"input": "a.mp4", "template": "t", **fields}, default_id="j", input_root=ROOT,
                         templates=lambda ref: stored)

    assert (from_template().fit, from_template().pad_colour) == ("pad", "#ff0000")
    assert (from_template(fit="cover").fit, from_template(fit="cover").pad_colour) == ("cover", None)
    assert from_template(fit="pad").pad_colour == "#ff0000"
    assert from_template(pad_colour="00ff00").pad_colour == "#00ff00"
    with pytest.raises(EngineError, match="fit cover needs both"):  # the template has one side only
        parse_job({"input": "a.mp4", "template": "t", "fit": "cover"}, default_id="j", input_root=ROOT,
                  templates=lambda ref: {**stored, "height": None})


# -- the output size -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, landscape, portrait", [
    ("fill", (200, 200), (200, 200)), ("contain", (200, 150), (150, 200)),
    ("cover", (200, 200), (200, 200)), ("pad", (200, 200), (200, 200)),
])
def test_output_size_of_each_mode_for_a_landscape_and_a_portrait_display(mode, landscape, portrait):
    job = spec(width=200, height=200, fit=mode)
    assert output_size(job, (320, 240)) == landscape
    assert output_size(job, (240, 320)) == portrait


def test_the_memory_bound_and_the_size_limit_use_the_contained_size():
    contain = spec(width=4096, height=4096, fit="contain")
    assert largest_output_size(contain, 4000, 2, Fraction(1)) == (4096, 2)  # not 4096x4096
    assert output_size(contain, (2, 4000)) == (2, 4096)
    assert largest_output_size(spec(width=200, height=200, fit="pad"), 320, 240, Fraction(1)) == (200, 200)


def test_contain_is_budgeted_at_its_own_size(tmp_path, monkeypatch, h264_clip):
    from animated_previews.engine import job as engine_job

    def needs(width, height):  # a GIF of 5 frames of width x height from this source
        return engine_job.job_memory_estimate(palette=True, frames=5, distinct=5, width=width, height=height,
                                              source_width=320, source_height=240)

    # Before decoding the rotation is unknown: contain into 320x320 is 320x240 either way up.
    monkeypatch.setattr(engine_job, "FRAME_MEMORY_BUDGET", (needs(320, 240) + needs(320, 320)) // 2)
    fields = {"input": str(h264_clip), "format": "gif", "fps": 5, "duration": 1, "width": 320, "height": 320}
    made = run_job(parse_job({**fields, "fit": "contain"}, default_id="c", input_root=tmp_path), tmp_path / "o",
                   PyAVDecoder())
    assert made.ok and (made.width, made.height) == (320, 240)
    stretched = run_job(parse_job(fields, default_id="f", input_root=tmp_path), tmp_path / "o", PyAVDecoder())
    assert stretched.error_code == "InvalidParameter" and "320x320" in stretched.error_message


# -- the pixels, end to end ----------------------------------------------------------------------------

def test_a_320x240_clip_asked_200x200_in_each_mode(tmp_path, h264_clip):
    from animated_previews.engine import load_manifest, run_batch

    base = {"input": str(h264_clip), "format": "webp", "fps": 5, "duration": 0.4, "width": 200, "height": 200}
    lines = [{"id": mode, **base, "fit": mode} for mode in ("fill", "contain", "cover")]
    lines.append({"id": "pad", **base, "fit": "pad", "pad_colour": "#ff00ff"})
    lines.append({"id": "vod", "input": str(h264_clip), "TemplateConfig": {
        "Format": "gif", "Fps": "5", "Width": "200", "Height": "200", "TimeSpan": {"Duration": "0.4"},
        "Fit": "pad", "PadColour": "FF00FF"}})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    results = {r.id: r for r in run_batch(load_manifest(manifest), tmp_path / "out", workers=2)}
    frame = clipmaker.render_frame(0)  # 240 x 320

    fill = first_frame(results["fill"])
    assert fill.shape == (200, 200, 3) and mean_error(fill, expected(frame, 200, 200)) < 4

    contain = first_frame(results["contain"])
    assert (results["contain"].width, results["contain"].height) == (200, 150) and contain.shape == (150, 200, 3)
    assert mean_error(contain, expected(frame, 150, 200)) < 4
    assert clipmaker.read_index(contain.astype(np.uint8)) == 0

    cover = first_frame(results["cover"])
    assert (results["cover"].width, results["cover"].height) == (200, 200)
    assert mean_error(cover, expected(frame[:, 40:280], 200, 200)) < 4  # the middle 240x240
    assert mean_error(cover, expected(frame, 200, 200)) > 8  # not the whole frame squeezed

    # WebP (lossy, quality 45, 4:2:0) strays a few levels on a saturated colour: its bars are
    # magenta on average within a level, no pixel more than 8 off; GIF's palette is exact.
    for name, worst, mean in (("pad", 8, 1.0), ("vod", 0, 0.0)):
        pad = first_frame(results[name])
        assert (results[name].width, results[name].height) == (200, 200)
        bars = np.concatenate([pad[2:23], pad[177:198]])
        assert np.abs(bars - MAGENTA).max() <= worst and np.abs(bars - MAGENTA).mean() <= mean
        assert mean_error(pad[25:175], expected(frame, 150, 200)) < 4
        assert clipmaker.read_index(pad.astype(np.uint8), box=(0, 25, 200, 175)) == 0


@pytest.mark.parametrize("mode", ["cover", "pad"])
def test_a_rotated_source_is_fitted_upright(tmp_path, rotated_clip, mode):
    job = parse_job({"input": str(rotated_clip), "format": "gif", "fps": 5, "duration": 0.4, "width": 200,
                     "height": 200, "fit": mode, "pad_colour": "#ff00ff" if mode == "pad" else None},
                    default_id=mode, input_root=tmp_path)
    result = run_job(job, tmp_path / "out", PyAVDecoder())
    out = first_frame(result)
    frame = clipmaker.render_frame(0, 240, 320)  # shown 240 wide, 320 high
    assert (result.width, result.height) == (200, 200) and out.shape == (200, 200, 3)
    if mode == "cover":  # the middle 240 rows
        assert mean_error(out, expected(frame[40:280], 200, 200)) < 5
        assert mean_error(out, expected(frame, 200, 200)) > 8
    else:  # bars left and right of a 150x200 picture
        assert (out[:, :25] == MAGENTA).all() and (out[:, 175:] == MAGENTA).all()
        assert mean_error(out[:, 25:175], expected(frame, 200, 150)) < 5
        assert clipmaker.read_index(out.astype(np.uint8), box=(25, 0, 175, 200)) == 0


@pytest.fixture(scope="module")
def anamorphic_clip(tmp_path_factory) -> Path:
    """160x240 coded, sample aspect ratio 2:1: shown as the 320x240 test frame."""
    path = tmp_path_factory.mktemp("sar") / "sar.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 240, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2, 1)
        for k in range(5):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(clipmaker.render_frame(k)[:, ::2]), format="rgb24")
            picture.pts = k
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("mode", ["cover", "pad", "contain"])
def test_non_square_pixels_are_fitted_at_their_display_shape(tmp_path, anamorphic_clip, mode):
    job = parse_job({"input": str(anamorphic_clip), "format": "gif", "fps": 5, "duration": 0.2, "width": 200,
                     "height": 200, "fit": mode}, default_id=mode, input_root=tmp_path)
    result = run_job(job, tmp_path / "out", PyAVDecoder())
    out = first_frame(result)
    frame = clipmaker.render_frame(0)
    if mode == "contain":
        assert (result.width, result.height) == (200, 150)
    elif mode == "cover":
        assert mean_error(out, expected(frame[:, 40:280], 200, 200)) < 8  # half the columns were coded
    else:
        assert (out[:25] == 0).all() and (out[175:] == 0).all()  # black by default, above and below
        assert mean_error(out[25:175], expected(frame, 150, 200)) < 8


# -- templates, the store, the service -----------------------------------------------------------------

BODY = {"TemplateType": "DynamicImage", "Name": "padded-square",
        "TemplateConfig": {"Format": "gif", "Fps": "5", "Width": "200", "Height": "200",
                           "TimeSpan": {"Seek": "0", "Duration": "0.4"}, "Fit": "pad", "PadColour": "FF00FF"}}


def test_fit_and_pad_colour_round_trip_through_the_store_and_get_vod_template(tmp_path):
    with Service(store=tmp_path / "s.db") as engine:
        padded = engine.add_template_body(BODY)
        covered = engine.add_template("covered-square", format="webp", fps=5, width=200, height=200, seek=0,
                                      duration=1, fit="cover")
        plain = engine.add_template("plain-square", format="webp", fps=5, width=200, height=200, seek=0, duration=1)
    with Service(store=tmp_path / "s.db") as engine:  # read back from the file
        config = engine.template_info(padded.id)["TemplateConfig"]
        assert (config["Fit"], config["PadColour"]) == ("pad", "#ff00ff")
        assert engine.template("padded-square").job_fields()["pad_colour"] == "#ff00ff"
        assert engine.template_info(covered.id)["TemplateConfig"]["Fit"] == "cover"
        assert "PadColour" not in engine.template_info(covered.id)["TemplateConfig"]
        plain_config = engine.template_info(plain.id)["TemplateConfig"]
        assert "Fit" not in plain_config and "PadColour" not in plain_config  # answered as the service's are
        again = engine.add_template_body({**BODY, "Name": "sent-back", "TemplateConfig": config})
        assert (again.fit, again.pad_colour) == ("pad", "#ff00ff")

        changed = engine.update_template(padded.id, fit="cover")  # PadColour goes with pad
        assert (changed.fit, changed.pad_colour) == ("cover", None)
        assert "PadColour" not in engine.template_info(changed)["TemplateConfig"]
        recoloured = engine.update_template(again.id, pad_colour="#00FF00")
        assert (recoloured.fit, recoloured.pad_colour) == ("pad", "#00ff00")
        back = engine.update_template(changed.id, body={"TemplateConfig": {**BODY["TemplateConfig"], "Fit": "contain",
                                                                            "PadColour": None}})
        assert (back.fit, back.pad_colour) == ("contain", None)


@pytest.mark.parametrize("config, words", [
    ({"Fit": "zoom"}, [f"Fit must be one of {ALLOWED}"]),
    ({"PadColour": "magenta"}, ["PadColour must be a colour as #rrggbb"]),
    ({"Fit": "cover", "Height": None}, ["Fit cover needs both width and height", "aspect ratio"]),
    ({"Fit": "fill"}, ["PadColour colours the bars of Fit pad"]),
])
def test_bad_template_values_are_refused_and_nothing_is_stored(tmp_path, config, words):
    body_config = {**BODY["TemplateConfig"], **config}
    body_config = {k: v for k, v in body_config.items() if v is not None}
    with Service(store=tmp_path / "s.db") as engine:
        with pytest.raises(EngineError) as caught:
            engine.add_template_body({**BODY, "TemplateConfig": body_config})
        assert engine.templates() == []
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert all(w in caught.value.message for w in words), caught.value.message


def test_submitted_jobs_are_fitted_and_override_params_can_change_the_fit(tmp_path, h264_clip):
    with Service(store=tmp_path / "s.db") as engine:
        template = engine.add_template_body(BODY)
        video = engine.add_video(h264_clip)
        padded = engine.submit(video.id, template.id)
        contained = engine.submit(video.id, template.id, {"Fit": "contain"})
        engine.run_worker(until_empty=True)
        images = {i["JobId"]: i for i in engine.list_dynamic_images(video.id)["DynamicImageList"]}
        with pytest.raises(EngineError, match="PadColour colours the bars of Fit pad"):
            engine.submit(video.id, template.id, {"Fit": "cover", "PadColour": "#000000"})
    assert (images[padded.id]["Width"], images[padded.id]["Height"]) == (200, 200)
    assert (images[contained.id]["Width"], images[contained.id]["Height"]) == (200, 150)
    out = clients.pillow_frames(Path(images[padded.id]["FileURL"].removeprefix("file://")))[0][0]
    assert (out[:25] == MAGENTA).all() and (out[175:] == MAGENTA).all()


def test_a_store_from_before_fit_is_migrated_and_its_templates_and_jobs_stretch(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in MIGRATIONS:
        if number <= 5:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
    conn.execute("PRAGMA user_version = 5")
    conn.execute("INSERT INTO templates (id, name, format, fps, width, height, seek, duration, trim_end, set_as_cover,"
                 " created, modified) VALUES ('t' , 'old-template', 'gif', 5, 200, 200, 0, 1, NULL, 0, 0, 0)")
    conn.close()
    with Service(store=path) as engine:
        old = engine.template("old-template")
        assert (old.fit, old.pad_colour) == ("fill", None)
        assert "Fit" not in engine.template_info(old)["TemplateConfig"]
        assert engine.update_template(old.id, fit="pad").pad_colour == "#000000"
    snapshot = {"format": "gif", "fps": 5, "seek": 0, "duration": 1, "trim_end": None, "width": 200, "height": 200,
                "set_as_cover": False}  # a job queued by an older engine
    queued = job_spec(SimpleNamespace(id="j", spec=snapshot), Path("/v.mp4"), Path("/o.gif"))
    assert (queued.fit, queued.pad_colour) == ("fill", None)


def test_a_batch_line_with_another_fit_is_another_job(tmp_path, h264_clip):
    base = {"id": "a", "input": str(h264_clip), "format": "gif", "fps": 5, "duration": 0.2, "width": 200, "height": 200}

    def run(**fields):
        manifest = tmp_path / "m.jsonl"
        manifest.write_text(json.dumps({**base, **fields}) + "\n")
        with Service(store=tmp_path / "s.db") as engine:
            [result] = engine.run_batch(engine.load_manifest(manifest), tmp_path / "out", workers=1)
        return result

    first = run(fit="cover")
    assert first.ok and not first.reused
    assert run(fit="cover").reused
    other = run(fit="pad", pad_colour="#ff00ff")
    assert other.ok and not other.reused and other.job_id != first.job_id
    assert not run(fit="pad").reused  # black bars are another image


def test_a_manifest_line_naming_a_fitted_template_is_fitted(tmp_path, h264_clip):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "t", "input": str(h264_clip), "template": "padded-square"}) + "\n"
                        + json.dumps({"id": "c", "input": str(h264_clip), "template": "padded-square",
                                      "fit": "contain"}) + "\n")
    with Service(store=tmp_path / "s.db") as engine:
        engine.add_template_body(BODY)
        results = {r.id: r for r in engine.run_batch(engine.load_manifest(manifest), tmp_path / "out", workers=1)}
    out = first_frame(results["t"])
    assert out.shape == (200, 200, 3) and (out[:25] == MAGENTA).all() and (out[175:] == MAGENTA).all()
    assert (results["c"].width, results["c"].height) == (200, 150)  # the line's fit won, the bars' colour went


# -- HDR: frames are fitted before their tone map ---------------------------------------------------------

def test_pad_bars_of_hdr_frames_are_painted_again_after_the_tone_map():
    from animated_previews.engine.decode import DecodedClip
    from animated_previews.engine.render import Fitter
    from animated_previews.kernels.tonemap import hdr_to_sdr

    fitter = Fitter(spec(width=40, height=40, fit="pad", pad_colour="#ff00ff"),
                    SimpleNamespace(sample_aspect_ratio=Fraction(1)))
    signal = torch.full((2, 3, 30, 60), 0.5)  # 16-bit values scaled to [0, 1], as the decoder hands them over
    mapped = hdr_to_sdr(fitter(signal, 0).clamp(0, 1), "pq")  # what the decoder does next
    assert not (mapped[:, :, :10] == torch.tensor(MAGENTA, dtype=torch.uint8).view(1, 3, 1, 1)).all()
    clip = fitter.finish(DecodedClip(frames=mapped, index=torch.tensor([0, 1]), source_times=(0.0, 0.2),
                                     frames_decoded=2))
    bars = torch.cat([clip.frames[:, :, :10], clip.frames[:, :, 30:]], dim=2)
    assert (bars == torch.tensor(MAGENTA, dtype=torch.uint8).view(1, 3, 1, 1)).all()
    assert torch.equal(clip.frames[:, :, 10:30], mapped[:, :, 10:30])  # the picture is left as it was


@pytest.mark.skipif(not clipmaker.ffmpeg_can(*clipmaker.HDR_CLIPS),
                    reason="needs ffmpeg with zscale and libx265 (Debian's ffmpeg has them)")
def test_an_hdr_source_gets_bars_of_the_asked_colour(tmp_path):
    clip = clipmaker.hdr_clip(tmp_path / "pq.mp4", "smpte2084")
    job = parse_job({"input": str(clip), "format": "gif", "fps": 5, "duration": 0.2, "width": 200, "height": 200,
                     "fit": "pad", "pad_colour": "#ff00ff"}, default_id="hdr", input_root=tmp_path)
    result = run_job(job, tmp_path / "out", PyAVDecoder())
    out = first_frame(result)
    assert any("HDR" in note for note in result.notes)
    assert (out[:25] == MAGENTA).all() and (out[175:] == MAGENTA).all()


# -- rotated sources: cropped and shrunk as coded, turned at the output size ------------------------

@pytest.mark.parametrize("mode", ["cover", "pad", "fill", "contain"])
@pytest.mark.parametrize("turns", [1, 2, 3])
@pytest.mark.parametrize("hdr", [False, True])
def test_a_rotated_chunk_fits_as_coded_to_the_picture_turning_first_gives(mode, turns, hdr):
    """Fitter.fit_coded (the decoder hands it frames as coded) gives the picture that turning
    the frames upright first gives: the same crop, the same bars, the same size; the pixels
    differ only by the resize's rounding (its two passes run in the other order)."""
    from animated_previews.engine.render import Fitter

    torch.manual_seed(turns)
    coded = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 75, 121) * 255, 5, stride=1, padding=2)
    coded = coded.round().to(torch.uint8).contiguous(memory_format=torch.channels_last)
    if hdr:  # 16-bit codes, as the decoder's RGB48 route hands them over
        coded = (coded.to(torch.int32) * 257).to(torch.uint16)
    media = SimpleNamespace(sample_aspect_ratio=Fraction(4, 3))  # non-square pixels too
    job = spec(width=64, height=48, fit=mode, pad_colour="#ff00ff" if mode == "pad" else None)
    as_coded, upright_first = Fitter(job, media), Fitter(job, media)
    turned = torch.rot90(coded.view(torch.int16) if hdr else coded, turns, dims=(2, 3))
    turned = turned.view(torch.uint16) if hdr else turned

    a, b = as_coded.fit_coded(coded, turns), upright_first(turned, turns)

    assert a.shape == b.shape and as_coded.size == upright_first.size
    assert as_coded._bars == upright_first._bars and as_coded._repaint == upright_first._repaint
    scale = 1 / 255 if hdr else 1
    difference = (a.double() - b.double()).abs() / scale
    # written: uint8 means 0-0.27 levels apart, at most 2 (the byte resize rounds each pass);
    # 16-bit codes shrunk as floats, 1e-4 levels at most
    assert difference.mean() < 0.5 and difference.max() <= (2 if not hdr else 0.01)
    if mode == "pad" and as_coded._bars != (0, 0, *as_coded.size):
        left, top, width, height = as_coded._bars
        outside = torch.ones(a.shape[-2:], dtype=torch.bool)
        outside[top:top + height, left:left + width] = False
        assert torch.equal(a[..., outside], b[..., outside])  # the bars, exactly
