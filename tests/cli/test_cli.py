"""The `engine` command: exit statuses, the table, --json, and a --help that answers questions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import clipmaker
from animated_previews.cli.main import main


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return clipmaker.make_clip(tmp_path_factory.mktemp("cli") / "c.mp4", fps=10, frames=20, width=160, height=120)


def manifest(tmp_path: Path, *jobs: dict) -> Path:
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_all_good_exits_0_and_prints_a_table(tmp_path, clip):
    m = manifest(tmp_path, {"id": "a", "input": str(clip), "format": "gif", "fps": 5, "duration": 1})
    result = invoke("run", "--batch", str(m), "--out-dir", str(tmp_path / "o"), "--workers", "1")
    assert result.exit_code == 0
    assert "1 succeeded, 0 failed" in result.stdout
    assert (tmp_path / "o" / "a.gif").exists()


def test_some_failed_exits_1_and_json_gives_one_line_per_job_and_a_summary(tmp_path, clip):
    m = manifest(tmp_path,
                 {"id": "a", "input": str(clip), "format": "webp", "fps": 5, "duration": 1},
                 {"id": "b", "input": str(clip), "format": "gif", "fps": 5, "seek": 9, "duration": 1})
    result = invoke("run", "--batch", str(m), "--out-dir", str(tmp_path / "o"), "--json")
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_id = {l["id"]: l for l in lines[:-1]}
    assert by_id["a"]["status"] == "success" and by_id["b"]["error_code"] == "InvalidTimeRange"
    assert lines[-1]["summary"]["failed"] == 1 and lines[-1]["summary"]["jobs"] == 2


def test_an_interrupted_json_run_still_ends_with_a_summary_saying_it_stopped(tmp_path, clip, monkeypatch):
    """Ctrl-C or SIGTERM mid-run (exit 130): a --json reader still gets its last line."""
    import animated_previews.cli.main as cli_main

    real = cli_main.run_batch

    def stopped_after_one(*args, **kwargs):
        stream = real(*args, **kwargs)
        yield next(stream)
        stream.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "run_batch", stopped_after_one)
    m = manifest(tmp_path, *({"id": f"j{k}", "input": str(clip), "format": "gif", "fps": 5, "duration": 0.4}
                             for k in range(3)))
    result = CliRunner().invoke(main, ["run", "--batch", str(m), "--out-dir", str(tmp_path / "o"), "--json",
                                       "--workers", "1", "--no-store"])
    assert result.exit_code == 130, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and "id" in lines[0]
    assert lines[-1]["summary"]["stopped"] is True and lines[-1]["summary"]["jobs"] == 1


def test_missing_manifest_is_a_usage_error_with_exit_2(tmp_path):
    result = invoke("run", "--batch", str(tmp_path / "none.jsonl"), "--out-dir", str(tmp_path / "o"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_empty_manifest_is_a_usage_error(tmp_path):
    m = tmp_path / "empty.jsonl"
    m.write_text("\n# nothing\n")
    assert invoke("run", "--batch", str(m)).exit_code == 2


def test_help_explains_the_manifest_and_the_exit_statuses():
    text = invoke("run", "--help").stdout
    for needle in ("TemplateConfig", "trim_end", "results.jsonl", "Exit status", "--workers"):
        assert needle in text


def test_the_console_script_runs_as_a_real_process(tmp_path, clip):
    m = manifest(tmp_path, {"id": "p", "input": str(clip), "format": "gif", "fps": 5, "duration": 1})
    engine = Path(sys.executable).with_name("engine")
    done = subprocess.run([str(engine), "run", "--batch", str(m), "--out-dir", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "[1/1] p success" in done.stderr  # plain progress lines when not on a terminal
