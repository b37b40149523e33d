"""The store when things go wrong around it (issue 13, "Store"): a full disk, a read-only store,
damaged pages, a store emptied to 0 bytes, SIGTERM in the middle of a batch; and the small
things: exact numbers through `template update`, names that are ids or hold control characters,
secrets never printed, `video info` after the file was replaced, a bad --events path.

We run as root, so a chmod 0400 store is still writable, and no tmpfs or loop device can be
mounted: a read-only store is simulated with SQLite's ``PRAGMA query_only`` (writes fail with
SQLITE_READONLY, as on a read-only mount), a full disk with ``PRAGMA max_page_count`` (SQLITE_FULL,
as when the disk fills; mid-run, on the temporary database a trigger writes to, so it strikes at a
chosen statement), damaged pages by overwriting one table's root page with garbage. Each pragma is
set on the connection the command itself uses, so the errors come from SQLite, through the engine's
own statements.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import clipmaker
from animated_previews.cli.main import main
from animated_previews.engine import EngineError, ErrorCode, Service
from animated_previews.engine.store import db as store_db
from animated_previews.engine.store.db import marker_path, open_store
from animated_previews.engine.vod import site as site_module
from animated_previews.engine.vod import stored_batch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return clipmaker.make_clip(tmp_path_factory.mktemp("faults") / "talk.mp4", fps=10, frames=20, width=96, height=64)


def cli(*args, code: int | None = None):
    """``engine ARGS`` in this process; an exception that escapes the command fails the test (a
    traceback is exactly what must never happen)."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if code is not None:
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result


def write_manifest(path: Path, clip: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"j{i}", "input": str(clip), "format": "gif", "fps": 5,
                                        "width": 32 + 8 * i, "duration": 0.6}) + "\n" for i in range(count)))
    return path


def rows(store: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(store)
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def page_count(conn) -> int:
    return conn.execute("PRAGMA page_count").fetchone()[0]


def fill_up(conn) -> None:
    """From now on the disk is full for this connection's next event: SQLite itself answers
    SQLITE_FULL inside the engine's own transaction (a temporary trigger needs pages the connection
    may not have). Limiting the store's own pages would fail only once the room left in them is used,
    which depends on row sizes: this fails at a chosen moment."""
    conn.execute("CREATE TEMP TABLE ballast (b BLOB)")
    conn.execute(f"PRAGMA temp.max_page_count = {conn.execute('PRAGMA temp.page_count').fetchone()[0]}")
    conn.execute("CREATE TEMP TRIGGER no_room AFTER INSERT ON main.events BEGIN "
                 "INSERT INTO ballast VALUES (zeroblob(1000000)); END")


def assert_no_sqlite_trace(result) -> None:
    assert "Traceback" not in result.output and "sqlite3." not in result.output, result.output


# -- 1. full disk, read-only store, damaged pages: StoreError naming the file and the way out ----------

def test_a_disk_that_fills_mid_run_stops_engine_run_with_a_usage_error_and_reports_only_what_was_recorded(
        tmp_path, clip, monkeypatch):
    manifest = write_manifest(tmp_path / "m.jsonl", clip, 4)
    store, out = tmp_path / "store.db", tmp_path / "out"
    real_record = stored_batch.record_line
    recorded: list[str] = []

    def fill_the_disk_after_the_first(site, job, entry, *args, **kwargs):
        if len(recorded) == 1:
            fill_up(site.connection)  # the disk is full from the second result on
        result = real_record(site, job, entry, *args, **kwargs)
        recorded.append(entry.id)
        return result

    monkeypatch.setattr(stored_batch, "record_line", fill_the_disk_after_the_first)
    result = cli("run", "--batch", manifest, "--out-dir", out, "--store", store, "--workers", "1", "--json")
    assert result.exit_code == 2, result.output
    assert_no_sqlite_trace(result)
    assert f"the store {store} cannot be written: the disk is full" in result.stderr
    assert "Free space" in result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    logged = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in printed] == [r["id"] for r in logged] == recorded  # only what the store holds
    assert rows(store, "SELECT name FROM jobs WHERE state = 'success'") == [("j0",)] and recorded == ["j0"]
    assert rows(store, "SELECT count(*) FROM jobs WHERE state = 'running'") == [(0,)]  # given back

    monkeypatch.setattr(stored_batch, "record_line", real_record)  # space again: the rest is done once
    again = cli("run", "--batch", manifest, "--out-dir", out, "--store", store, "--workers", "1", "--json", code=0)
    results = [json.loads(line) for line in again.stdout.splitlines()][:-1]
    assert sorted((r["id"], r["reused"]) for r in results) == [
        (f"j{i}", f"j{i}" == recorded[0]) for i in range(4)]
    assert rows(store, "SELECT count(*), count(DISTINCT job_id) FROM events") == [(4, 4)]


def test_a_full_disk_through_the_service_is_a_store_error_and_the_transaction_leaves_nothing(tmp_path):
    with Service(store=tmp_path / "s.db") as service:
        service.add_template("kept-one", format="gif", fps=5, duration=1)
        service.connection.execute(f"PRAGMA max_page_count = {page_count(service.connection)}")
        with pytest.raises(EngineError) as info:
            for n in range(200):  # each template takes a row; the file may not grow
                service.add_template(f"template-{n:03d}-" + "x" * 40, format="gif", fps=5, duration=1)
        assert info.value.code is ErrorCode.STORE_ERROR and "disk is full" in info.value.message
        assert str(tmp_path / "s.db") in info.value.message
        assert not service.connection.in_transaction  # rolled back: the next command starts clean
        service.connection.execute("PRAGMA max_page_count = 1073741823")
        names = [t.name for t in service.templates()]
        assert names[0] == "kept-one" and len(names) == 1 + n
        service.add_template("after-room", format="gif", fps=5, duration=1)


@pytest.fixture
def read_only_store(tmp_path, monkeypatch):
    """A store whose every connection is read-only (as on a read-only mount: reads work, writes fail)."""
    store = tmp_path / "ro" / "store.db"
    with Service(store=store) as service:
        service.add_template("existing", format="gif", fps=5, duration=1)
    real_open = site_module.open_store

    def read_only(path):
        conn = real_open(path)
        conn.execute("PRAGMA query_only = ON")
        return conn

    monkeypatch.setattr(site_module, "open_store", read_only)
    monkeypatch.setenv("ENGINE_STORE", str(store))
    return store


def test_a_read_only_store_answers_reads_and_refuses_writes_with_a_store_error(read_only_store):
    assert "existing" in cli("template", "list", code=0).stdout
    result = cli("template", "add", "--name", "another", "--format", "gif", "--fps", "5", "--duration", "1", code=1)
    assert_no_sqlite_trace(result)
    assert f"error: StoreError: the store {read_only_store} is read-only" in result.stderr
    assert "writable" in result.stderr
    as_json = cli("config", "set", "base_url", "https://cdn.test/", "--json", code=1)
    assert json.loads(as_json.stdout)["Code"] == "StoreError"


def test_engine_run_on_a_read_only_store_is_a_usage_error_before_any_job_runs(read_only_store, tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", clip, 2)
    result = cli("run", "--batch", manifest, "--out-dir", tmp_path / "out", "--json", code=2)
    assert_no_sqlite_trace(result)
    assert f"the store {read_only_store} is read-only" in result.stderr and result.stdout == ""
    assert not (tmp_path / "out" / "results.jsonl").exists()


def damage_table(store: Path, table: str) -> None:
    """Overwrite ``table``'s root page with garbage (the store closed and checkpointed first)."""
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    [(root,)] = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchall()
    conn.close()
    with open(store, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(bytes((i * 37 + 11) % 256 for i in range(page_size)))


def test_damaged_pages_are_a_store_error_that_names_the_file_and_the_way_out(tmp_path, monkeypatch, clip):
    store = tmp_path / "store.db"
    monkeypatch.setenv("ENGINE_STORE", str(store))
    for n in range(30):
        cli("template", "add", "--name", f"template-{n:02d}", "--format", "gif", "--fps", "5", "--duration", "1", code=0)
    damage_table(store, "templates")

    listed = cli("template", "list", code=1)
    assert_no_sqlite_trace(listed)
    assert f"StoreError: the store {store} is damaged" in listed.stderr and "backup" in listed.stderr
    shown = cli("template", "show", "template-03", "--json", code=1)
    assert json.loads(shown.stdout)["Code"] == "StoreError"
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "input": str(clip), "template": "template-03"}) + "\n")
    run = cli("run", "--batch", manifest, "--out-dir", tmp_path / "out", code=2)  # the store failed, not the line
    assert_no_sqlite_trace(run)
    assert "is damaged" in run.stderr and not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_store_at_all_is_a_store_error_at_open(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00garbage" * 2000)
    with pytest.raises(EngineError) as info:
        open_store(bad)
    assert info.value.code is ErrorCode.STORE_ERROR and str(bad) in info.value.message
    assert "not a store" in info.value.message


def test_a_failed_commit_is_rolled_back_and_reported(tmp_path):
    conn = open_store(tmp_path / "s.db")
    conn.execute("PRAGMA max_page_count = %d" % page_count(conn))
    with pytest.raises(EngineError) as info:
        with store_db.transaction(conn):
            conn.executemany("INSERT INTO config (key, value) VALUES (?, ?)",
                             [(f"k{i}", "x" * 3000) for i in range(50)])
    assert info.value.code is ErrorCode.STORE_ERROR and not conn.in_transaction
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert conn.execute("SELECT count(*) FROM config WHERE key LIKE 'k%'").fetchone()[0] == 0
    conn.close()


# -- 2. a store emptied to 0 bytes is refused, not started anew -------------------------------------------

def test_a_store_truncated_to_zero_bytes_is_refused_not_taken_as_new(tmp_path, clip):
    store = tmp_path / "store.db"
    manifest = write_manifest(tmp_path / "m.jsonl", clip, 2)
    cli("run", "--batch", manifest, "--out-dir", tmp_path / "out", "--store", store, "--json", code=0)
    assert marker_path(store).exists()
    for leftover in (Path(f"{store}-wal"), Path(f"{store}-shm")):
        leftover.unlink(missing_ok=True)
    store.write_bytes(b"")  # what a full disk or an interrupted copy leaves

    result = cli("run", "--batch", manifest, "--out-dir", tmp_path / "out", "--store", store, "--json", code=2)
    assert f"the store {store} is empty" in result.stderr and str(marker_path(store)) in result.stderr
    assert store.stat().st_size == 0  # left as it was, for whoever restores it
    with pytest.raises(EngineError) as info:
        Service(store=store)
    assert info.value.code is ErrorCode.STORE_ERROR and "truncated" in info.value.message

    marker_path(store).unlink()  # started over on purpose, as the message says
    cli("run", "--batch", manifest, "--out-dir", tmp_path / "out", "--store", store, "--json", code=0)


def test_a_store_deleted_on_purpose_starts_anew(tmp_path):
    store = tmp_path / "store.db"
    with Service(store=store) as service:
        service.add_template("first-one", format="gif", fps=5, duration=1)
    for path in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        path.unlink(missing_ok=True)
    assert marker_path(store).exists()
    with Service(store=store) as service:  # no file: a new store (the stale marker is replaced)
        assert service.templates() == []
    assert marker_path(store).exists()


def test_a_store_from_before_markers_gets_one_when_opened(tmp_path):
    store = tmp_path / "store.db"
    open_store(store).close()
    marker_path(store).unlink()
    open_store(store).close()
    assert marker_path(store).exists()


def _open_new_store(path: str, start_at: float) -> int:
    while time.time() < start_at:
        time.sleep(0.001)
    conn = open_store(Path(path))
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_processes_creating_one_new_store_at_once_never_refuse_each_other(tmp_path):
    """The race the emptied-store rule must not lose: several processes open the same new file at
    the same instant (the creator's 0-byte file is not an emptied store), also where a store
    deleted on purpose left its marker behind."""
    import multiprocessing

    from animated_previews.engine.store.schema import LATEST_VERSION

    context = multiprocessing.get_context("forkserver")
    with context.Pool(8) as pool:
        for attempt in range(24):
            path = tmp_path / f"s{attempt}.db"
            if attempt % 2:
                marker_path(path).write_text("left by a store deleted on purpose\n")
            start_at = time.time() + 0.15
            outcomes = pool.starmap(_open_new_store, [(str(path), start_at)] * 8)
            assert outcomes == [LATEST_VERSION] * 8, attempt
            assert marker_path(path).exists()


# -- 3. template update keeps the other fields exactly ------------------------------------------------

def test_updating_one_field_keeps_the_others_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "store.db"))
    cli("template", "add", "--name", "ntsc-preview", "--format", "gif", "--fps", "29.97002997",
        "--seek", "1234567", "--duration", "1.000001", code=0)
    cli("template", "update", "ntsc-preview", "--width", "320", code=0)
    config = json.loads(cli("template", "show", "ntsc-preview", "--json", code=0).stdout)["VodTemplate"]["TemplateConfig"]
    assert config == {"Format": "gif", "Fps": "29.97002997", "Width": "320",
                      "TimeSpan": {"Seek": "1234567", "Duration": "1.000001"}, "SetAsCover": "false"}
    with Service() as service:
        template = service.template("ntsc-preview")
        assert (template.fps, template.seek, template.duration) == (29.97002997, 1234567.0, 1.000001)
    listed = cli("template", "list", code=0).stdout
    assert "29.97002997" in listed and "1234567+1.000001s" in listed


# -- 4. SIGTERM: nothing queued starts, nothing is written and then given back -------------------------

def running(store: Path) -> int | None:
    try:
        return rows(store, "SELECT count(*) FROM jobs WHERE state = 'running'")[0][0]
    except sqlite3.Error:  # not made yet
        return None


def test_sigterm_starts_no_queued_job_and_writes_nothing_it_then_gives_back(tmp_path):
    long_clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=100, width=640, height=480)
    lines = [{"id": f"t{i}", "input": str(long_clip), "format": "webp", "fps": 25, "duration": 3.9} for i in range(4)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out, store = tmp_path / "out", tmp_path / "store.db"
    command = [sys.executable, "-c", "from animated_previews.cli.main import main; main()", "run", "--batch",
               str(manifest), "--out-dir", str(out), "--store", str(store), "--workers", "1", "--json"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                           start_new_session=True)
    deadline = time.monotonic() + 120
    # the pool holds two jobs for its one worker: one running, one handed to it in advance
    while time.monotonic() < deadline and run.poll() is None and running(store) != 2:
        time.sleep(0.02)
    time.sleep(0.5)  # the first job is under way in the worker
    assert run.poll() is None, run.communicate()
    signalled = time.monotonic()
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    stopped_in = time.monotonic() - signalled

    assert run.returncode == 130, stderr
    states = dict(rows(store, "SELECT name, state FROM jobs"))
    assert "running" not in states.values()
    given_back = sorted(name for name, state in states.items() if state == "queued")
    assert given_back, states  # the signal came mid-job
    # no job given back has an image: nothing started after the signal, and what ran was stopped
    assert [name for name in given_back if (out / f"{name}.webp").exists()] == []
    assert stopped_in < 5.0, stopped_in  # it did not wait for the queued job to run

    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert again.returncode == 0, again.stderr
    assert rows(store, "SELECT name, state FROM jobs ORDER BY name") == [(f"t{i}", "success") for i in range(4)]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no partial file left


# -- 5. minor: names, secrets, stale video facts, --events ----------------------------------------------

@pytest.mark.parametrize("name", ["bad\nname", "tab\there", "nul\x00name", "bell\x07s", "del\x7fete", "next\x85line",
                                  "line\u2028sep", "bidi\u202eevil", "zero\u200bwidth", "lone\ud800half"])
def test_names_with_line_breaks_or_control_characters_are_refused(tmp_path, name):
    with Service(store=tmp_path / "s.db") as service:
        with pytest.raises(EngineError) as info:
            service.add_template(name, format="gif", fps=5, duration=1)
        assert info.value.code is ErrorCode.INVALID_PARAMETER and "printable on one line" in info.value.message
        kept = service.add_template("good-name", format="gif", fps=5, duration=1)
        with pytest.raises(EngineError):
            service.update_template(kept.id, name=name)
        assert service.templates() == [kept]


def test_a_name_shaped_like_a_template_id_is_refused_and_ids_win_over_names(tmp_path):
    with Service(store=tmp_path / "s.db") as service:
        first = service.add_template("first-one", format="gif", fps=5, duration=1)
        for name in (first.id, first.id.upper(), "0123456789abcdef0123456789abcdef"):
            with pytest.raises(EngineError) as info:
                service.add_template(name, format="webp", fps=5, duration=1)
            assert "VodTemplateId" in info.value.message
        with pytest.raises(EngineError):
            service.update_template(first.id, name=first.id)
        # a store from before the rule may hold such a name: the id still means its own template
        other = service.add_template("other-one", format="webp", fps=7, duration=1)
        service.connection.execute("UPDATE templates SET name = ? WHERE id = ?", (first.id, other.id))
        assert service.template(first.id).id == first.id
        assert service.delete_template(first.id).id == first.id
        assert service.template(first.id).id == other.id  # now only the name matches
        service.update_template(other.id, width=64)  # its legacy name does not block other changes


def test_a_32_character_name_that_is_not_hex_is_fine(tmp_path):
    with Service(store=tmp_path / "s.db") as service:
        assert service.add_template("g" * 32, format="gif", fps=5, duration=1).name == "g" * 32


@pytest.mark.parametrize("key", ["callback_secret", "callback_auth_key", "url_signing_key"])
def test_config_set_never_prints_a_secret(tmp_path, monkeypatch, key):
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "store.db"))
    secret = "s3cr3t-value-that-must-not-show"
    for args in (("--json",), ()):
        result = cli("config", "set", key, secret, *args, code=0)
        assert secret not in result.output
    assert json.loads(cli("config", "set", key, secret, "--json", code=0).stdout) == {key: "***"}
    assert secret not in cli("config", "show", "--json", code=0).output
    assert secret not in cli("config", "show", code=0).output


def test_video_info_probes_a_replaced_file_again(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "store.db"))
    path = clipmaker.make_clip(tmp_path / "talk.mp4", fps=10, frames=20, width=96, height=64)
    video_id = json.loads(cli("video", "add", path, "--json", code=0).stdout)["Videos"][0]["VideoId"]
    before = json.loads(cli("video", "info", video_id, "--json", code=0).stdout)["Video"]
    assert (before["Width"], before["Height"], before["Duration"]) == (96, 64, 2.0)

    replacement = clipmaker.make_clip(tmp_path / "new.mp4", fps=10, frames=35, width=160, height=120)
    os.replace(replacement, path)  # a new file under the registered path
    after = json.loads(cli("video", "info", video_id, "--json", code=0).stdout)["Video"]
    assert (after["VideoId"], after["Width"], after["Height"], after["Duration"]) == (video_id, 160, 120, 3.5)
    assert after["Size"] == path.stat().st_size
    listed = json.loads(cli("video", "list", "--json", code=0).stdout)["VideoList"]
    assert [(v["Width"], v["Duration"]) for v in listed] == [(160, 3.5)]
    again = json.loads(cli("video", "add", path, "--json", code=0).stdout)["Videos"][0]["VideoId"]
    assert again == video_id  # still the same video

    path.unlink()  # gone: the facts of the last good probe stay
    gone = json.loads(cli("video", "info", video_id, "--json", code=0).stdout)["Video"]
    assert (gone["Width"], gone["Duration"]) == (160, 3.5)


def test_a_batch_job_on_a_replaced_input_refreshes_its_video(tmp_path, clip):
    path = tmp_path / "in.mp4"
    path.write_bytes(clip.read_bytes())
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "input": str(path), "format": "gif", "fps": 5, "duration": 0.5}) + "\n")
    store = tmp_path / "store.db"
    cli("run", "--batch", manifest, "--out-dir", tmp_path / "out", "--store", store, code=0)
    replacement = clipmaker.make_clip(tmp_path / "new.mp4", fps=10, frames=30, width=128, height=96)
    os.replace(replacement, path)
    cli("run", "--batch", manifest, "--out-dir", tmp_path / "out", "--store", store, code=0)  # a new job: new file
    with Service(store=store) as service:
        [video] = service.videos()
        assert (video.width, video.height, video.size) == (128, 96, path.stat().st_size)


def test_a_bad_events_path_blames_events_and_nothing_runs(tmp_path, clip):
    manifest = write_manifest(tmp_path / "m.jsonl", clip, 1)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = blocker / "events.jsonl"
    result = cli("run", "--batch", manifest, "--out-dir", tmp_path / "out", "--store", tmp_path / "store.db",
                 "--events", bad, code=2)
    assert f"cannot write the event log {bad} (--events)" in result.stderr
    assert "--out-dir" not in result.stderr and str(tmp_path / "out") not in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "store.db").exists()
    worker = cli("worker", "--until-empty", "--store", tmp_path / "store.db", "--events", bad, code=1)
    assert "(--events)" in worker.stderr
