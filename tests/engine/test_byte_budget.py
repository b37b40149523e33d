"""``max_bytes``: the image is at most that many bytes, what was given up is in its notes, and a
budget nothing can meet fails with MaxBytesUnreachable naming the smallest size reached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import clipmaker
from animated_previews.engine import EngineError, Manifest, run_batch
from animated_previews.engine.byte_budget import MAX_ENCODES, REGAIN_ENCODES, Rung, fewer_instants, fit_budget, ladder
from animated_previews.engine.encode import AVIF, GIF, WEBP
from animated_previews.engine.spec import parse_job
from animated_previews.engine.store.batch_jobs import effective_config


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
    import dataclasses

    from animated_previews.engine.decode import DecodedClip

    def encode(frames, delays, quality=None):
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
    assert [r.colours for r in ladder(GIF)][:4] == [128, 64, 32, 16]
    assert [r.quality for r in ladder(WEBP)][:3] == [35, 27, 20]


def test_fewer_instants_keep_the_animation_length():
    index = torch.arange(7)
    kept, delays = fewer_instants(index, [10, 10, 10, 10, 10, 10, 5], 3)
    assert kept.tolist() == [0, 3, 6] and delays == (30, 30, 5)
    assert Rung(colours=16, every=3, scale=0.5).describe(GIF) == "16 colours (from 255), every 3rd frame, 0.5 of the size"


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
