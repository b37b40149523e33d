"""Hostile but honest inputs (issue 13, "Batch input" and "Paths and files"): one bad manifest line
never stops a batch, and no path given to a run can make it write where it must not.

Each test names the defect it closes; every one of them failed (or hung) before its fix."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import clipmaker
from animated_previews.cli.main import main
from animated_previews.engine import EngineError, load_manifest, parse_manifest_lines, run_batch
from animated_previews.engine.errors import ErrorCode
from animated_previews.engine.geometry import largest_output_size, output_size
from animated_previews.engine.manifest import MAX_LINE_BYTES, MAX_MANIFEST_BYTES
from animated_previews.engine.output import resolve_output, write_atomic
from animated_previews.engine.spec import MAX_JSON_DEPTH, MAX_SIDE, parse_job
from animated_previews.engine.vod import Service

ROOT = Path("/videos")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return clipmaker.make_clip(tmp_path_factory.mktemp("hostile") / "c.mp4", fps=10, frames=10, width=64, height=48)


def good(job_id: str, clip: Path, **extra) -> dict:
    return {"id": job_id, "input": str(clip), "format": "gif", "fps": 5, "duration": 0.4, **extra}


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((l if isinstance(l, bytes) else l.encode("utf-8")) + b"\n" for l in lines))
    return path


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def codes(entries) -> list[tuple[int, str, str | None]]:
    return [(e.line, e.id, e.error.code.value if e.error else None) for e in entries]


# -- Batch input: one bad line never stops a batch --------------------------------------------------------

def test_deeply_nested_json_fails_its_line_only(tmp_path, clip):
    deep = '{"id": "deep", "input": ' + "[" * 5000 + "]" * 5000 + "}"  # RecursionError in json
    nested = '{"id": "nested", "input": "a.mp4", "format": ' + "[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5) + "}"
    config = json.dumps({"id": "config", "input": "a.mp4", "TemplateConfig": "[" * 5000 + "]" * 5000})
    manifest = write_lines(tmp_path / "m.jsonl", [json.dumps(good("a", clip)), deep, nested, config,
                                                  json.dumps(good("b", clip))])
    entries = load_manifest(manifest)
    assert codes(entries) == [(1, "a", None), (2, "line-2", "InvalidParameter"), (3, "line-3", "InvalidParameter"),
                              (4, "config", "InvalidParameter"), (5, "b", None)]
    assert all("deeper than" in e.error.message for e in entries[1:4])
    results = {r.id: r for r in run_batch(entries, tmp_path / "out", workers=1)}
    assert results["a"].ok and results["b"].ok and results["line-2"].error_code == "InvalidParameter"


def test_template_add_body_nested_too_deeply_is_refused_without_a_traceback(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"TemplateType": "DynamicImage", "Name": "deep-one", "TemplateConfig": ' + "[" * 5000
                    + "]" * 5000 + "}")
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"TemplateType": "DynamicImage", "Name": "nested-one",
                                  "TemplateConfig": {"Format": "gif", "Fps": 5, "TimeSpan": {"Duration": 1},
                                                     "Width": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}))
    for body in (deep, nested):
        result = invoke("template", "add", "--body", body, "--store", tmp_path / "s.db")
        assert result.exit_code == 1 and "InvalidParameter" in result.output and "deeper than" in result.output
    with Service(store=tmp_path / "s.db") as service:
        with pytest.raises(EngineError) as caught:
            service.add_template_body({"Name": "deeper", "TemplateConfig": "[" * 5000 + "]" * 5000})
        assert caught.value.code is ErrorCode.INVALID_PARAMETER


@pytest.mark.parametrize("field", ["input", "output"])
def test_a_nul_in_input_or_output_fails_that_line_in_both_paths(tmp_path, clip, field):
    bad = good("nul", clip)
    bad[field] = str(clip) + "\0x" if field == "input" else "x\0y.gif"
    manifest = write_lines(tmp_path / "m.jsonl", [json.dumps(good("a", clip)), json.dumps(bad),
                                                  json.dumps(good("b", clip))])
    entries = load_manifest(manifest)
    assert codes(entries) == [(1, "a", None), (2, "nul", "InvalidParameter"), (3, "b", None)]
    assert "NUL" in entries[1].error.message
    plain = {r.id: r for r in run_batch(parse_job_entries(bad, clip), tmp_path / "plain", workers=1)}
    assert plain["nul"].error_code == "InvalidParameter" and plain["a"].ok
    with Service(store=tmp_path / "s.db") as service:
        stored = {r.id: r for r in service.run_batch(service.load_manifest(manifest), tmp_path / "out", workers=1)}
    assert stored["a"].ok and stored["b"].ok and stored["nul"].error_code == "InvalidParameter"


def parse_job_entries(bad: dict, clip: Path):
    return list(parse_manifest_lines([json.dumps(good("a", clip)), json.dumps(bad)], input_root=ROOT))


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"])
def test_line_separators_inside_a_json_string_do_not_split_the_line(tmp_path, separator):
    """Every break str.splitlines knows besides "\\n". Raw control characters (below U+0020) are
    not allowed in a JSON string, so such a line fails as not JSON: alone, and numbered right."""
    lines = [f'{{"id": "a", "input": "one{separator}two.mp4", "format": "gif", "fps": 5, "duration": 1}}',
             '{"input": "b.mp4", "format": "gif", "fps": 5, "duration": 1}']
    manifest = write_lines(tmp_path / "m.jsonl", lines)
    entries = load_manifest(manifest, input_root=ROOT)
    if separator < " ":
        assert codes(entries) == [(1, "line-1", "InvalidParameter"), (2, "line-2", None)]
        assert "not valid JSON" in entries[0].error.message
    else:
        assert codes(entries) == [(1, "a", None), (2, "line-2", None)]
        assert entries[0].spec.input == ROOT / f"one{separator}two.mp4"


def test_crlf_line_ends_still_work(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b'{"input": "a.mp4", "format": "gif", "fps": 5, "duration": 1}\r\n\r\n'
                         b'{"input": "b.mp4", "format": "gif", "fps": 5, "duration": 1}\r\n')
    assert codes(load_manifest(manifest, input_root=ROOT)) == [(1, "line-1", None), (3, "line-3", None)]


@pytest.mark.parametrize("job_id", ["intro\n", "intro\r", "in\ntro", "intro\x00", "intro\x1b", "intro\u2028", "intro "])
def test_an_id_with_a_newline_or_control_character_is_refused(job_id):
    with pytest.raises(EngineError) as caught:
        parse_job({"id": job_id, "input": "a.mp4", "format": "gif", "fps": 5, "duration": 1},
                  default_id="line-1", input_root=ROOT)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER and "id must be" in caught.value.message


def test_an_undecodable_line_fails_alone(tmp_path):
    manifest = write_lines(tmp_path / "m.jsonl", [b'{"input": "\xff\xfe.mp4", "format": "gif", "fps": 5, "duration": 1}',
                                                  '{"input": "b.mp4", "format": "gif", "fps": 5, "duration": 1}'])
    entries = load_manifest(manifest, input_root=ROOT)
    assert codes(entries) == [(1, "line-1", "InvalidParameter"), (2, "line-2", None)]
    assert "UTF-8" in entries[0].error.message


def test_a_lone_surrogate_fails_its_line_only(tmp_path):
    manifest = write_lines(tmp_path / "m.jsonl", ['{"input": "a\\ud800.mp4", "format": "gif", "fps": 5, "duration": 1}',
                                                  '{"template": "\\udfff", "input": "b.mp4"}',
                                                  '{"input": "c.mp4", "format": "gif", "fps": 5, "duration": 1}'])
    with Service(store=tmp_path / "s.db") as service:
        entries = service.load_manifest(manifest, input_root=ROOT)
    assert codes(entries) == [(1, "line-1", "InvalidParameter"), (2, "line-2", "InvalidParameter"),
                              (3, "line-3", None)]


def test_a_utf8_bom_does_not_cost_the_first_line(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b'\xef\xbb\xbf{"id": "first", "input": "a.mp4", "format": "gif", "fps": 5, "duration": 1}\n')
    assert codes(load_manifest(manifest, input_root=ROOT)) == [(1, "first", None)]


def test_an_over_long_line_fails_alone_and_line_numbers_stay_right(tmp_path):
    long_line = json.dumps({"id": "long", "input": "x" * (MAX_LINE_BYTES + 10), "format": "gif", "fps": 5, "duration": 1})
    manifest = write_lines(tmp_path / "m.jsonl", ['{"input": "a.mp4", "format": "gif", "fps": 5, "duration": 1}',
                                                  long_line,
                                                  '{"input": "c.mp4", "format": "gif", "fps": 5, "duration": 1}'])
    entries = load_manifest(manifest, input_root=ROOT)
    assert codes(entries) == [(1, "line-1", None), (2, "line-2", "InvalidParameter"), (3, "line-3", None)]
    assert str(MAX_LINE_BYTES) in entries[1].error.message


def _within(seconds: float, func):
    """func()'s value, failing the test (not hanging it) when it takes longer than ``seconds``."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # handed to the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory", "huge"])
def test_batch_that_is_not_a_regular_file_or_too_big_is_a_usage_error(tmp_path, kind):
    if kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "fifo":
        path = tmp_path / "fifo.jsonl"
        os.mkfifo(path)
    elif kind == "directory":
        path = tmp_path / "dir.jsonl"
        path.mkdir()
    else:
        path = tmp_path / "huge.jsonl"
        with open(path, "wb") as handle:
            handle.truncate(MAX_MANIFEST_BYTES + 1)  # sparse: costs no disk
    for extra in (["--store", tmp_path / "s.db"], ["--no-store"]):
        result = _within(20, lambda: invoke("run", "--batch", path, "--out-dir", tmp_path / "o", *extra))
        assert result.exit_code == 2, result.output
        assert ("regular file" in result.output or "MiB" in result.output or "directory" in result.output), result.output
    with pytest.raises(EngineError):
        _within(20, lambda: load_manifest(path))


# -- Paths and files -------------------------------------------------------------------------------------

def test_results_naming_the_store_manifest_an_input_or_an_output_is_refused_before_anything_runs(tmp_path, clip):
    manifest = write_lines(tmp_path / "m.jsonl", [json.dumps(good("a", clip, output="a.gif"))])
    store = tmp_path / "s.db"
    with Service(store=store) as service:
        service.add_template("kept-template", format="gif", fps=5, duration=1)
    clip_bytes = clip.read_bytes()
    manifest_bytes = manifest.read_bytes()
    out = tmp_path / "out"
    for target, extra in ((store, []), (Path(str(store) + "-wal"), []), (manifest, []), (manifest, ["--no-store"]),
                          (clip, []), (clip, ["--no-store"]), (out / "a.gif", []), (out / "a.gif", ["--no-store"]),
                          (tmp_path / "events.jsonl", [])):
        result = invoke("run", "--batch", manifest, "--out-dir", out, "--results", target,
                        *(extra or ["--store", store]))
        assert result.exit_code == 2, (target, result.output)
        assert "--results" in result.output
    assert not (out / "a.gif").exists()
    assert clip.read_bytes() == clip_bytes and manifest.read_bytes() == manifest_bytes
    with Service(store=store) as service:
        assert [t.name for t in service.templates()] == ["kept-template"]
    result = invoke("run", "--batch", manifest, "--out-dir", out, "--store", store, "--events", manifest)
    assert result.exit_code == 2 and "--events" in result.output and manifest.read_bytes() == manifest_bytes


@pytest.mark.parametrize("how", ["default", "--results", "--no-store"])
def test_a_results_file_that_is_a_symlink_is_not_followed(tmp_path, clip, how):
    manifest = write_lines(tmp_path / "m.jsonl", [json.dumps(good("a", clip))])
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    link = out / "results.jsonl" if how != "--results" else tmp_path / "r.jsonl"
    link.symlink_to(outside)
    args = ["run", "--batch", manifest, "--out-dir", out, "--workers", "1"]
    args += ["--no-store"] if how == "--no-store" else ["--store", tmp_path / "s.db"]
    args += ["--results", link] if how == "--results" else []
    result = invoke(*args)
    assert result.exit_code == 2 and "symbolic link" in result.output, result.output
    assert outside.read_text() == "precious\n" and link.is_symlink()
    with pytest.raises(EngineError) as caught:  # the engine refuses it too, whoever calls it
        list(run_batch(load_manifest(manifest), out, workers=1, results_path=link))
    assert "symbolic link" in caught.value.message and outside.read_text() == "precious\n"


def test_a_results_file_with_other_hard_links_is_refused_and_dev_null_is_taken(tmp_path, clip):
    manifest = write_lines(tmp_path / "m.jsonl", [json.dumps(good("a", clip))])
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    os.link(outside, tmp_path / "r.jsonl")
    with pytest.raises(EngineError) as caught:
        list(run_batch(load_manifest(manifest), tmp_path / "out", workers=1, results_path=tmp_path / "r.jsonl"))
    assert "hard links" in caught.value.message and outside.read_text() == "precious\n"
    (result,) = run_batch(load_manifest(manifest), tmp_path / "out", workers=1, results_path="/dev/null")
    assert result.ok


def test_a_directory_swapped_for_a_symlink_mid_job_does_not_put_the_image_outside(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    (out / "sub").mkdir(parents=True)
    outside.mkdir()
    spec = parse_job({"id": "a", "input": "a.mp4", "output": str(out / "sub" / "a.gif"), "format": "gif", "fps": 5,
                      "duration": 1}, default_id="line-1", input_root=out)
    destination = resolve_output(spec, out)  # planned: inside
    (out / "sub").rmdir()
    (out / "sub").symlink_to(outside)  # swapped before the write
    with pytest.raises(EngineError) as caught:
        write_atomic(destination, b"GIF89a")
    assert caught.value.code is ErrorCode.OUTPUT_ERROR
    assert list(outside.iterdir()) == []
    # a folder not there yet is made, and made inside
    write_atomic((out / "new" / "deeper" / "b.gif").resolve(), b"GIF89a")
    assert (out / "new" / "deeper" / "b.gif").read_bytes() == b"GIF89a" and not (out / "new").is_symlink()


def test_the_swap_check_holds_right_before_the_rename(tmp_path, monkeypatch):
    """The folder is swapped after the temporary file is written, just before the rename."""
    from animated_previews.engine import output

    out, outside = tmp_path / "out", tmp_path / "outside"
    (out / "sub").mkdir(parents=True)
    outside.mkdir()
    real_fsync = os.fsync

    def swap_then_fsync(fd):
        real_fsync(fd)
        if not (out / "sub").is_symlink():
            os.rename(out / "sub", tmp_path / "moved")
            (out / "sub").symlink_to(outside)

    monkeypatch.setattr(output.os, "fsync", swap_then_fsync)
    with pytest.raises(EngineError) as caught:
        write_atomic((out / "sub" / "a.gif").resolve(), b"GIF89a")
    assert caught.value.code is ErrorCode.OUTPUT_ERROR
    assert list(outside.iterdir()) == [] and list((tmp_path / "moved").iterdir()) == []


def test_a_worker_ended_mid_write_leaves_no_half_written_file(tmp_path, monkeypatch):
    """A worker whose run was killed ends at once (its watchdog's ``os._exit``), maybe in the middle
    of writing an output: the temporary file it was writing goes first (a killed run's worker left
    a ``.part`` once in CI, written after the next run had cleared the job's)."""
    import subprocess
    import time

    from animated_previews.engine import output
    from animated_previews.engine.executors import local

    out = tmp_path / "out"
    out.mkdir()
    seen: list[list[str]] = []
    real_fsync = os.fsync

    def fsync_then_end(fd):  # the watchdog fires while the temporary file is there
        real_fsync(fd)
        seen.append(sorted(p.name for p in out.iterdir()))
        output.drop_writes_in_progress()
        seen.append(sorted(p.name for p in out.iterdir()))
        raise SystemExit  # the write goes no further, as under os._exit

    monkeypatch.setattr(output.os, "fsync", fsync_then_end)
    with pytest.raises(SystemExit):
        write_atomic((out / "a.gif").resolve(), b"GIF89a")
    assert len(seen[0]) == 1 and seen[0][0].startswith(".a.gif.") and seen[1] == []
    monkeypatch.setattr(output.os, "fsync", real_fsync)
    write_atomic((out / "b.gif").resolve(), b"GIF89a")  # a finished write leaves nothing listed
    assert output._IN_PROGRESS == set() and sorted(p.name for p in out.iterdir()) == ["b.gif"]

    # and the watchdog drops them before it ends the worker
    calls: list[str] = []
    monkeypatch.setattr(local, "drop_writes_in_progress", lambda: calls.append("drop"))
    monkeypatch.setattr(local.os, "_exit", lambda status: calls.append(f"exit {status}"))
    gone = subprocess.Popen(["true"])
    gone.wait()
    local._exit_with_run(gone.pid, period=0.01)
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == ["drop", "exit 1"]


def test_two_lines_naming_one_output_with_different_settings_refuse_the_second_in_both_paths(tmp_path, clip):
    manifest = write_lines(tmp_path / "m.jsonl", [json.dumps(good("one", clip, output="same.gif")),
                                                  json.dumps(good("two", clip, output="same.gif", fps=10)),
                                                  json.dumps({**good("three", clip), "id": "same"})])
    plain = {r.id: r for r in run_batch(load_manifest(manifest), tmp_path / "plain", workers=1)}
    assert plain["one"].ok
    assert plain["two"].error_code == "InvalidParameter" and "line 1" in plain["two"].error_message
    assert plain["same"].error_code == "InvalidParameter" and "line 1" in plain["same"].error_message
    for attempt in range(2):
        with Service(store=tmp_path / "s.db") as service:
            stored = {r.id: r for r in service.run_batch(service.load_manifest(manifest), tmp_path / "out", workers=1)}
        assert stored["one"].ok and stored["one"].reused == (attempt == 1)  # not redone by the second run
        assert stored["two"].error_code == "InvalidParameter" and "line 1" in stored["two"].error_message
        assert stored["same"].error_code == "InvalidParameter"


def test_a_derived_side_over_the_limit_is_refused_naming_the_size_and_the_limit(tmp_path):
    thin = clipmaker.make_clip(tmp_path / "thin.mp4", fps=10, frames=10, width=4000, height=2)
    wide = clipmaker.make_clip(tmp_path / "wide.mp4", fps=10, frames=10, width=4200, height=16)
    manifest = write_lines(tmp_path / "m.jsonl", [
        json.dumps({"id": "gif", "input": str(thin), "format": "gif", "fps": 5, "height": 20, "duration": 1}),
        json.dumps({"id": "webp", "input": str(thin), "format": "webp", "fps": 5, "height": 20, "duration": 1}),
        json.dumps({"id": "none-given", "input": str(wide), "format": "gif", "fps": 5, "duration": 1}),
        json.dumps({"id": "fits", "input": str(thin), "format": "gif", "fps": 5, "width": 400, "duration": 1})])
    results = {r.id: r for r in run_batch(load_manifest(manifest), tmp_path / "out", workers=1)}
    for job_id, size in (("gif", "40000x20"), ("webp", "40000x20"), ("none-given", "4200x16")):
        assert results[job_id].error_code == "InvalidParameter", results[job_id]
        assert size in results[job_id].error_message and str(MAX_SIDE) in results[job_id].error_message
    assert results["fits"].ok and (results["fits"].width, results["fits"].height) == (400, 1)


def test_geometry_is_the_one_place_that_computes_and_checks_the_size():
    spec = parse_job({"input": "a.mp4", "format": "gif", "fps": 5, "height": 20, "duration": 1},
                     default_id="a", input_root=ROOT)
    with pytest.raises(EngineError) as caught:
        output_size(spec, (4000, 2))
    assert caught.value.code is ErrorCode.INVALID_PARAMETER and "40000x20" in caught.value.message
    assert output_size(spec, (2, 4000)) == (1, 20)
    from fractions import Fraction
    # before decoding the rotation is unknown: the bound takes the larger orientation that fits
    assert largest_output_size(spec, 4000, 2, Fraction(1)) == (1, 20)
    wide = parse_job({"input": "a.mp4", "format": "gif", "fps": 5, "width": 2560, "duration": 1},
                     default_id="a", input_root=ROOT)
    assert largest_output_size(wide, 1920, 1080, Fraction(1)) == (2560, 1440)  # landscape, not 2560x4551
    whole = parse_job({"input": "a.mp4", "format": "gif", "fps": 5, "duration": 1}, default_id="a", input_root=ROOT)
    with pytest.raises(EngineError) as caught:
        largest_output_size(whole, 5000, 4000, Fraction(1))  # over the limit whichever way up
    assert "5000x4000" in caught.value.message and str(MAX_SIDE) in caught.value.message


# -- Inputs that cannot be reached (found by a sweep of odd files, 2026-12-04) ---------------------------

@pytest.mark.parametrize("extra", [["--store"], ["--no-store"]])
def test_an_input_that_is_a_symlink_loop_or_too_long_a_name_fails_its_line_alone(tmp_path, clip, extra):
    """Before: with the store, a loop's line raised Python's RuntimeError from Path.resolve and the
    whole batch died with a traceback; a name over 255 bytes was an InternalError."""
    (tmp_path / "loop_a.mp4").symlink_to(tmp_path / "loop_b.mp4")
    (tmp_path / "loop_b.mp4").symlink_to(tmp_path / "loop_a.mp4")
    lines = [good("before", clip), {**good("loop", clip), "input": str(tmp_path / "loop_a.mp4")},
             {**good("long", clip), "input": str(tmp_path / ("a" * 300 + ".mp4"))}, good("after", clip)]
    manifest = write_lines(tmp_path / "m.jsonl", [json.dumps(line) for line in lines])
    store = [tmp_path / "s.db"] if extra == ["--store"] else []
    result = invoke("run", "--batch", manifest, "--out-dir", tmp_path / "o", *extra, *store, "--workers", "1")
    assert result.exit_code == 1, result.output  # some lines failed, the batch finished
    results = {r["id"]: r for r in map(json.loads, (tmp_path / "o" / "results.jsonl").read_text().splitlines())}
    assert results["before"]["status"] == results["after"]["status"] == "success"
    assert results["loop"]["error_code"] == results["long"]["error_code"] == "InputNotFound"
    assert "symbolic link loop" in results["loop"]["error_message"]
    assert "name too long" in results["long"]["error_message"]


def test_a_manifest_that_is_a_symlink_loop_is_a_usage_error(tmp_path):
    (tmp_path / "a.jsonl").symlink_to(tmp_path / "b.jsonl")
    (tmp_path / "b.jsonl").symlink_to(tmp_path / "a.jsonl")
    for extra in (["--store", tmp_path / "s.db"], ["--no-store"]):
        result = invoke("run", "--batch", tmp_path / "a.jsonl", "--out-dir", tmp_path / "o", *extra)
        assert result.exit_code == 2 and "symbolic links" in result.output, result.output


def test_registering_a_symlink_loop_says_so(tmp_path):
    (tmp_path / "a.mp4").symlink_to(tmp_path / "b.mp4")
    (tmp_path / "b.mp4").symlink_to(tmp_path / "a.mp4")
    with Service(store=tmp_path / "s.db") as service, pytest.raises(EngineError) as caught:
        service.add_video(tmp_path / "a.mp4")
    assert caught.value.code is ErrorCode.INPUT_NOT_FOUND and "symbolic link loop" in caught.value.message
