"""The reliability table: faults injected on purpose, and what held.

Each row is one fault, tried a number of times, with the checks that decide whether it held. The
faults are made with the mechanisms the tests use (they are imported from ``tests/``, so this runs
from a checkout with the ``test`` extra installed):

* ``kill -9`` of ``engine run`` at a random moment (the run alone, or the run and its pool workers),
  then the same command again (tests/engine/test_batch_kill_resume.py);
* ``kill -9`` of one pool worker mid-batch (tests/engine/test_worker_crash.py);
* ``kill -9`` of ``engine worker`` mid-job, then another worker (tests/vod/test_vod_worker_processes.py);
* a full store: SQLite's ``max_page_count`` on the Service's connection, and a disk that fills at a
  chosen result of ``engine run`` (tests/vod/test_store_faults.py);
* a corrupted store: each table's root page overwritten, random pages overwritten, the file emptied
  to 0 bytes, a file that is no store (tests/vod/test_store_faults.py);
* failing callback receivers: down, answering 503 then 200, slow, redirecting, trickling one byte at a
  time (tests/vod/test_callback_hardening.py's Hook and Trickler).

    python -m bench.reliability [--kill-trials 10] [--worker-trials 5] [--corrupt-trials 20] [--seed 0]

writes ``bench/results/reliability.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
for folder in (TESTS, TESTS / "engine", TESTS / "vod"):  # as pytest imports them (rootdir, no __init__.py)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import clipmaker  # noqa: E402
from processes import alive, children_of, descendants, parents  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"


@dataclass
class Row:
    """One fault: how often it was tried, what was checked each time, how many times it held."""

    fault: str
    checked: str
    trials: list[dict] = field(default_factory=list)
    note: str = ""

    def add(self, held: bool, **details: Any) -> None:
        self.trials.append({"held": held, **details})

    @property
    def held(self) -> int:
        return sum(1 for t in self.trials if t["held"])

    def as_dict(self) -> dict:
        return {"fault": self.fault, "checked": self.checked, "trials": len(self.trials), "held": self.held,
                "failed": len(self.trials) - self.held, "note": self.note, "details": self.trials}


def _trial(row: Row, body: Callable[[], dict], **known: Any) -> None:
    """Run one trial: ``body`` returns its details and raises AssertionError when a check fails."""
    started = time.perf_counter()
    try:
        details = body() or {}
    except AssertionError as failed:
        row.add(False, seconds=round(time.perf_counter() - started, 2), why=str(failed)[:1500], **known)
        print(f"  FAILED {row.fault}: {str(failed)[:300]}", file=sys.stderr, flush=True)
        return
    except Exception:  # noqa: BLE001 - a fault that got past every handler: that is the finding
        row.add(False, seconds=round(time.perf_counter() - started, 2), why=traceback.format_exc()[-1500:], **known)
        print(f"  FAILED {row.fault}: {traceback.format_exc()[-300:]}", file=sys.stderr, flush=True)
        return
    row.add(True, seconds=round(time.perf_counter() - started, 2), **known, **details)


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"reliability-{prefix}-") as tmp:
        yield Path(tmp)


def _whole(path: Path, frames: int | None = None) -> None:
    """Every frame of an image decodes (and there are ``frames`` of them, when given)."""
    from PIL import Image
    with Image.open(path) as image:
        if frames is not None:
            assert image.n_frames == frames, f"{path.name}: {image.n_frames} frames, the result says {frames}"
        for k in range(image.n_frames):
            image.seek(k)
            image.load()


# -- kill -9 of engine run at a random moment ---------------------------------------------------------

def kill_engine_run(trials: int, rng: random.Random) -> Row:
    from test_batch_kill_resume import batch_files, engine_run, stored_jobs
    row = Row("kill -9 of `engine run` at a random moment (the run alone, or the run and its workers), then "
              "the same command again",
              "the second run exits 0; every line answered once in results.jsonl and on stdout, the jobs the "
              "killed run finished reused; every job `success` with exactly 1 event in the store; every image "
              "decodes whole with the frames its result states; no temporary file left; the killed run's "
              "processes gone within 30 s")
    with scratch("kill-run") as base:
        # ten jobs of about half a second each after ~2 s of start-up: most kills fall among the jobs
        clip = clipmaker.make_clip(base / "c.mp4", fps=25, frames=75, width=480, height=360)
        lines = [{"id": f"j{i}", "input": str(clip), "format": "gif" if i % 2 else "webp", "fps": 25, "seek": 0,
                  "duration": 2.9, "width": 240 + 16 * i} for i in range(10)]
        # How long a whole run takes here: the kills fall anywhere inside it.
        (base / "clean").mkdir()
        manifest, out, store = batch_files(base / "clean", lines)
        started = time.monotonic()
        clean = engine_run(manifest, out, store)
        first_result = None
        while clean.poll() is None:  # (its output is small: the pipes cannot fill)
            if first_result is None and (out / "results.jsonl").exists() and (out / "results.jsonl").stat().st_size:
                first_result = time.monotonic() - started
            time.sleep(0.01)
        clean.communicate(timeout=600)
        assert clean.returncode == 0
        whole_run = time.monotonic() - started
        first_result = first_result or whole_run / 2
        print(f"  a whole run takes {whole_run:.1f} s, its first result {first_result:.1f} s", file=sys.stderr,
              flush=True)
        for n in range(trials):
            victims = "the run" if n % 2 == 0 else "the run and its workers"
            # half the kills anywhere in the run (start-up included), half among the jobs
            window = (0.1, whole_run * 0.9) if (n // 2) % 2 == 0 else (first_result, whole_run * 0.9)
            for attempt in range(5):  # a kill that came after the run had ended is no trial: another moment
                folder = base / f"t{n}-{attempt}"
                folder.mkdir()
                moment = rng.uniform(*window)
                _trial(row, lambda: _one_kill(folder, lines, moment, victims, batch_files, engine_run, stored_jobs),
                       kill_after_s=round(moment, 2), victims=victims)
                if not row.trials[-1].get("run_had_ended"):
                    break
                row.trials.pop()
        done = sorted(t.get("finished_before_kill", -1) for t in row.trials)
        row.note = (f"kills landed in start-up (no job done yet) {done.count(0)} times, mid-batch (1-{len(lines) - 1} "
                    f"of {len(lines)} jobs done) {sum(1 for d in done if 0 < d < len(lines))} times; a whole run "
                    f"takes {whole_run:.1f} s (its first result at {first_result:.1f} s); kill moments drawn from 0.1 s to 90 % "
                    "of it for half the trials, from the first result on for the other half")
    return row


def _one_kill(folder: Path, lines: list[dict], moment: float, victims: str, batch_files, engine_run,
              stored_jobs) -> dict:
    manifest, out, store = batch_files(folder, lines)
    first = engine_run(manifest, out, store)
    time.sleep(moment)
    family = descendants(first.pid)
    if first.poll() is None:
        if victims == "the run":
            os.kill(first.pid, signal.SIGKILL)
        else:
            os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    ended_first = first.returncode is not None and first.returncode >= 0  # it finished before the kill
    before = stored_jobs(store) if store.exists() else {}
    done_before = {name for name, (state, _) in before.items() if state == "success"}

    second = engine_run(manifest, out, store)
    stdout, stderr = second.communicate(timeout=600)
    assert second.returncode == 0, f"the second run exited {second.returncode}: {stderr[-800:]}"
    printed = [json.loads(line) for line in stdout.splitlines()]
    results = [r for r in printed if "summary" not in r]
    logged = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    ids = sorted(line["id"] for line in lines)
    assert sorted(r["id"] for r in results) == ids, f"stdout answered {sorted(r['id'] for r in results)}"
    assert sorted(r["id"] for r in logged) == ids, f"results.jsonl holds {sorted(r['id'] for r in logged)}"
    assert {r["id"] for r in results if r["reused"]} == done_before, "reused is not what the killed run finished"
    assert all(r["status"] == "success" for r in results), [r for r in results if r["status"] != "success"]
    assert stored_jobs(store) == {i: ("success", 1) for i in ids}, stored_jobs(store)
    for result in results:
        _whole(Path(result["output"]), result["frames"])
    leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert leftovers == [], f"temporary files left: {leftovers}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(pid) for pid in family):
        time.sleep(0.1)
    orphans = [pid for pid in family if alive(pid)]
    assert orphans == [], f"processes of the killed run still alive: {orphans}"
    return {"finished_before_kill": len(done_before), "run_had_ended": ended_first}


# -- kill -9 of one pool worker mid-batch ---------------------------------------------------------------

def kill_pool_worker(trials: int, rng: random.Random) -> Row:
    from animated_previews.engine import load_manifest, run_batch
    row = Row("kill -9 of one pool worker of a batch (in-process `run_batch`, 2 workers) at a random moment",
              "every line answered exactly once and succeeded (the killed worker's job run again); no file but "
              "the images and results.jsonl in the output folder; every image decodes whole")
    with scratch("kill-worker") as base:
        clip = clipmaker.make_clip(base / "c.mp4", fps=25, frames=75, width=480, height=360)
        jobs = [{"id": f"j{i}", "input": str(clip), "format": "webp", "fps": 25, "duration": 2.9, "width": 320}
                for i in range(8)]
        manifest = base / "m.jsonl"
        manifest.write_text("".join(json.dumps(j) + "\n" for j in jobs))
        for n in range(trials):
            delay = rng.uniform(0.0, 1.0)  # after both workers are up; the batch takes a few seconds

            def body(n: int = n, delay: float = delay) -> dict:
                killed: list[int] = []

                def kill_one() -> None:
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and not killed:
                        table = parents()
                        workers = children_of(set(children_of({os.getpid()}, table)), table)
                        if len(workers) >= 2:
                            time.sleep(delay)
                            victim = rng.choice(workers)
                            with contextlib.suppress(ProcessLookupError):
                                os.kill(victim, signal.SIGKILL)
                                killed.append(victim)
                        time.sleep(0.02)

                killer = threading.Thread(target=kill_one, daemon=True)
                killer.start()
                out = base / f"out{n}"
                results = list(run_batch(load_manifest(manifest), out, workers=2))
                killer.join(timeout=5)
                assert killed, "the batch ended before a worker could be killed: not a trial"
                assert sorted(r.id for r in results) == sorted(j["id"] for j in jobs), [r.id for r in results]
                assert all(r.ok for r in results), [r.error_message for r in results if not r.ok]
                leftovers = [p.name for p in out.iterdir() if p.suffix not in (".webp", ".jsonl")]
                assert leftovers == [], leftovers
                for r in results:
                    _whole(out / f"{r.id}.webp", r.frames)
                return {"killed": len(killed)}

            _trial(row, body, kill_after_workers_up_s=round(delay, 2))
    return row


# -- kill -9 of engine worker mid-job ------------------------------------------------------------------

def kill_queue_worker(trials: int, rng: random.Random) -> Row:
    from test_vod_worker_processes import worker
    from animated_previews.engine import Service
    row = Row("kill -9 of `engine worker` at a random moment while it holds a job, then another worker",
              "the rescuer exits 0; every submitted job `success` once, with exactly one image and one event; "
              "each image decodes whole and has the size recorded; nothing else in the images folder")
    with scratch("kill-queue") as base:
        clip = clipmaker.make_clip(base / "c.mp4", fps=25, frames=75, width=480, height=360)
        for n in range(trials):
            moment = rng.uniform(0.0, 1.0)

            def body(n: int = n, moment: float = moment) -> dict:
                store = base / f"s{n}" / "store.db"
                with Service(store=store) as engine:
                    video = engine.add_video(clip)
                    template = engine.add_template("kill-test", format="webp", fps=25, duration=2.9)
                    jobs = [engine.submit(video.id, template.id).id for _ in range(3)]
                victim = worker(store, "--lease", "2", "--threads", "1")
                watch = sqlite3.connect(store)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    if watch.execute("SELECT count(*) FROM jobs WHERE state = 'running'").fetchone()[0]:
                        break
                    time.sleep(0.02)
                time.sleep(moment)
                held = watch.execute("SELECT count(*) FROM jobs WHERE state = 'running'").fetchone()[0]
                watch.close()
                os.kill(victim.pid, signal.SIGKILL)
                victim.communicate(timeout=30)
                rescuer = worker(store, "--until-empty", "--lease", "2", "--threads", "1")
                _, err = rescuer.communicate(timeout=300)
                assert rescuer.returncode == 0, err[-800:]
                with Service(store=store) as engine:
                    states = {j: engine.job(j).state for j in jobs}
                    assert set(states.values()) == {"success"}, states
                    images = engine.images(video.id)
                    assert sorted(i.job_id for i in images) == sorted(jobs), [i.job_id for i in images]
                    events = [e["JobId"] for e in engine.events()]
                    assert sorted(events) == sorted(jobs), events
                    for image in images:
                        _whole(image.path)
                        assert image.path.stat().st_size == image.bytes
                    folder = images[0].path.parent
                    extra = sorted(p.name for p in folder.iterdir() if p not in {i.path for i in images})
                    assert extra == [], f"left in the images folder: {extra}"
                return {"held_when_killed": held}

            _trial(row, body, kill_after_claim_s=round(moment, 2))
    return row


# -- a full store ---------------------------------------------------------------------------------------

def full_store(rng: random.Random) -> list[Row]:
    from click.testing import CliRunner
    from test_store_faults import fill_up, page_count, rows, write_manifest
    from animated_previews.cli.main import main
    from animated_previews.engine import EngineError, ErrorCode, Service
    from animated_previews.engine.vod import stored_batch

    service_row = Row("a full store under the Service (SQLite `max_page_count` = the pages it has) while adding "
                      "templates, registering videos, submitting jobs",
                      "a StoreError that names the file and says the disk is full, never a raw sqlite3 error; the "
                      "failed write rolled back whole (no transaction left open); with room again the store holds "
                      "exactly what was answered and takes the next write")
    with scratch("full") as base:
        clip = clipmaker.make_clip(base / "c.mp4", fps=10, frames=20, width=96, height=64)
        for operation in ("add templates", "register videos", "submit jobs"):
            def body(operation: str = operation) -> dict:
                store = base / operation.replace(" ", "-") / "s.db"
                with Service(store=store) as service:
                    template = service.add_template("first-one", format="gif", fps=5, duration=1)
                    video = service.add_video(clip)
                    service.connection.execute(f"PRAGMA max_page_count = {page_count(service.connection)}")
                    done = 0
                    try:
                        for n in range(5000):
                            if operation == "add templates":
                                service.add_template(f"template-{n:04d}-" + "x" * 40, format="gif", fps=5, duration=1)
                            elif operation == "register videos":
                                copy = base / f"v{n}.mp4"
                                shutil.copy(clip, copy)
                                service.add_video(copy)
                            else:
                                service.submit(video.id, template.id)
                            done += 1
                    except EngineError as error:
                        assert error.code is ErrorCode.STORE_ERROR, error
                        assert "disk is full" in error.message and str(store) in error.message, error.message
                    else:
                        raise AssertionError(f"{operation}: 5000 writes and the store never filled")
                    assert not service.connection.in_transaction
                    service.connection.execute("PRAGMA max_page_count = 1073741823")
                    counts = {"add templates": len(service.templates()) - 1, "register videos":
                              len(service.videos()) - 1, "submit jobs": len(service.jobs())}
                    assert counts[operation] == done, (counts[operation], done)
                    service.add_template("after-room", format="gif", fps=5, duration=1)
                return {"writes_before_full": done}

            _trial(service_row, body, operation=operation)

    run_row = Row("the disk fills while `engine run` records its k-th result (a temporary trigger needing pages "
                  "the connection may not have: SQLITE_FULL inside the engine's own transaction)",
                  "exit 2 with a StoreError naming the file, no traceback or sqlite3 text; what was printed = what "
                  "results.jsonl holds = what the store recorded; no job left `running`; the same command with room "
                  "again does the rest, each job once (one event per job)")
    jobs = 5
    with scratch("full-run") as base:
        clip = clipmaker.make_clip(base / "c.mp4", fps=10, frames=20, width=96, height=64)
        for k in range(jobs):
            def body(k: int = k) -> dict:
                folder = base / f"k{k}"
                folder.mkdir()
                manifest = write_manifest(folder / "m.jsonl", clip, jobs)
                store, out = folder / "store.db", folder / "out"
                real = stored_batch.record_line
                recorded: list[str] = []

                def fill_at_k(site, job, entry, *args, **kwargs):
                    if len(recorded) == k:
                        fill_up(site.connection)
                    result = real(site, job, entry, *args, **kwargs)
                    recorded.append(entry.id)
                    return result

                args = ["run", "--batch", str(manifest), "--out-dir", str(out), "--store", str(store),
                        "--workers", "1", "--json"]
                stored_batch.record_line = fill_at_k
                try:
                    result = CliRunner().invoke(main, args, catch_exceptions=False)
                finally:
                    stored_batch.record_line = real
                assert result.exit_code == 2, (result.exit_code, result.output[-800:])
                assert "Traceback" not in result.output and "sqlite3." not in result.output, result.output[-800:]
                assert f"the store {store} cannot be written: the disk is full" in result.stderr, result.stderr[-500:]
                printed = [json.loads(line)["id"] for line in result.stdout.splitlines()]
                logged = [json.loads(line)["id"] for line in (out / "results.jsonl").read_text().splitlines()] \
                    if (out / "results.jsonl").exists() else []
                assert printed == logged == recorded[:k], (printed, logged, recorded)
                assert rows(store, "SELECT count(*) FROM jobs WHERE state = 'running'") == [(0,)]
                again = CliRunner().invoke(main, args, catch_exceptions=False)
                assert again.exit_code == 0, again.output[-800:]
                results = [json.loads(line) for line in again.stdout.splitlines()][:-1]
                assert sorted((r["id"], r["reused"]) for r in results) == sorted(
                    (f"j{i}", f"j{i}" in recorded[:k]) for i in range(jobs)), results
                assert rows(store, "SELECT count(*), count(DISTINCT job_id) FROM events") == [(jobs, jobs)]
                return {"recorded_before_full": k}

            _trial(run_row, body, full_at_result=k + 1)
    return [service_row, run_row]


# -- a corrupted store ------------------------------------------------------------------------------------

COMMANDS = [["template", "list"], ["template", "show", "template-03"], ["template", "add", "--name", "after-damage",
            "--format", "gif", "--fps", "5", "--duration", "1"], ["video", "list"], ["jobs", "list"],
            ["events", "list"], ["config", "show"], ["events", "flush"], ["worker", "--until-empty"]]


def _populated_store(base: Path, clip: Path) -> Path:
    from animated_previews.engine import Service
    store = base / "store.db"
    with Service(store=store) as service:
        for n in range(30):
            service.add_template(f"template-{n:02d}", format="gif", fps=5, duration=1)
        video = service.add_video(clip)
        for n in range(10):
            service.submit(video.id, service.template(f"template-{n:02d}").id)
        service.run_worker(until_empty=True, device="cpu", threads=1, max_jobs=4)
    return store


def _every_command_fails_cleanly(store: Path, clip: Path, folder: Path) -> dict:
    """Each command answers (any exit status but a traceback); a failure is a StoreError."""
    from click.testing import CliRunner
    from animated_previews.cli.main import main
    manifest = folder / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "input": str(clip), "format": "gif", "fps": 5, "duration": 1}) + "\n"
                        + json.dumps({"id": "b", "input": str(clip), "template": "template-03"}) + "\n")
    outcomes = {}
    for command in COMMANDS + [["run", "--batch", str(manifest), "--out-dir", str(folder / "out"), "--workers", "1"]]:
        result = CliRunner().invoke(main, [*command, "--store", str(store)])
        name = " ".join(command[:2]) if command[0] != "run" else "run"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"engine {name} raised {result.exception!r}")
        assert "Traceback" not in result.output and "sqlite3." not in result.output, (name, result.output[-600:])
        assert result.exit_code in (0, 1, 2), (name, result.exit_code)
        on_store = "StoreError" in result.output or "the store" in result.output
        outcomes[name] = "ok" if result.exit_code == 0 else "StoreError" if on_store else f"exit {result.exit_code}"
    return outcomes


def corrupt_store(random_trials: int, rng: random.Random) -> list[Row]:
    from test_store_faults import damage_table
    from animated_previews.engine import EngineError, ErrorCode
    from animated_previews.engine.store.db import open_store

    tables_row = Row("a store with one table's root page overwritten with garbage (each table in turn)",
                     "every command (template list/show/add, video list, jobs list, events list/flush, config show, "
                     "worker, run) answers with an exit status and, when it fails, a StoreError: never a traceback or "
                     "raw sqlite3 text")
    random_row = Row("a store with random pages overwritten (1-4 pages of random bytes at random places, "
                     "header page included)", tables_row.checked)
    empty_row = Row("a store emptied to 0 bytes (its marker beside it), and a file that is no store at all",
                    "a StoreError saying so at open, never taken as a new store (no job redone, no event re-sent)")
    with scratch("corrupt") as base:
        clip = clipmaker.make_clip(base / "c.mp4", fps=10, frames=20, width=96, height=64)
        pristine = _populated_store(base / "pristine", clip)
        conn = sqlite3.connect(pristine)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND rootpage > 0 "
                                             "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.close()

        def copy_of(name: str) -> Path:
            folder = base / name
            folder.mkdir()
            store = folder / "store.db"
            for suffix in ("", "-wal", "-shm", ".marker"):
                source = Path(f"{pristine}{suffix}")
                if source.exists():
                    shutil.copy(source, Path(f"{store}{suffix}"))
            return store

        for table in tables:
            def body(table: str = table) -> dict:
                store = copy_of(f"table-{table}")
                damage_table(store, table)
                return _every_command_fails_cleanly(store, clip, store.parent)
            _trial(tables_row, body, table=table)

        pages = pristine.stat().st_size // page_size
        for n in range(random_trials):
            chosen = sorted(rng.sample(range(pages), k=min(pages, rng.randint(1, 4))))
            seed = rng.randrange(2**32)

            def body(n: int = n, chosen: list[int] = chosen, seed: int = seed) -> dict:
                store = copy_of(f"random-{n}")
                noise = random.Random(seed)
                with open(store, "r+b") as f:
                    for page in chosen:
                        start = noise.randrange(page_size)
                        length = noise.randint(1, page_size - start)
                        f.seek(page * page_size + start)
                        f.write(bytes(noise.randrange(256) for _ in range(length)))
                return _every_command_fails_cleanly(store, clip, store.parent)
            _trial(random_row, body, pages=[p + 1 for p in chosen])

        def emptied() -> dict:
            store = copy_of("emptied")
            for suffix in ("-wal", "-shm"):
                Path(f"{store}{suffix}").unlink(missing_ok=True)
            store.write_bytes(b"")
            try:
                open_store(store)
            except EngineError as error:
                assert error.code is ErrorCode.STORE_ERROR and "is empty" in error.message, error.message
            else:
                raise AssertionError("an emptied store was opened as a new one")
            assert store.stat().st_size == 0, "the emptied store was written to"
            return {}

        def garbage() -> dict:
            bad = base / "garbage.db"
            bad.write_bytes(b"\x00garbage" * 2000)
            try:
                open_store(bad)
            except EngineError as error:
                assert error.code is ErrorCode.STORE_ERROR and "not a store" in error.message, error.message
            else:
                raise AssertionError("a garbage file was opened as a store")
            return {}

        _trial(empty_row, emptied, case="emptied to 0 bytes")
        _trial(empty_row, garbage, case="not a store")
    return [tables_row, random_row, empty_row]


# -- failing callback receivers ---------------------------------------------------------------------------

def failing_receivers() -> Row:
    import test_callback_hardening as hooks
    from click.testing import CliRunner
    from animated_previews.cli.main import main
    from animated_previews.engine import Service
    from animated_previews.engine.vod.webhook import EVENT_ID_HEADER

    row = Row("failing callback receivers: down, 503 then 200, slow (2 s an answer), redirecting (302 elsewhere), "
              "trickling (one byte every 0.2 s)",
              "`engine run` never slowed by its receiver beyond --drain and never a traceback; every event waits "
              "in the store until a 2xx (a redirect is a failed attempt, never followed; a trickle ends at the "
              "deadline); once the receiver is healthy every event arrives, each EventId once, every attempt signed")
    secret = "reliability-secret"

    def invoke(*args: Any) -> Any:
        result = CliRunner().invoke(main, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"engine {args[0]} raised {result.exception!r}")
        assert "Traceback" not in result.output, result.output[-800:]
        return result

    def run(folder: Path, url: str, count: int, drain: str) -> tuple[Any, float]:
        started = time.monotonic()
        result = invoke("run", "--batch", hooks.failing_manifest(folder, count), "--out-dir", folder / "out",
                        "--store", folder / "s.db", "--workers", "1", "--json", "--callback", url,
                        "--callback-secret", secret, "--drain", drain)
        return result, time.monotonic() - started

    def flush_all(folder: Path, hook: Any, count: int) -> None:
        flush = invoke("events", "flush", "--store", folder / "s.db", "--wait", "30", "--json")
        assert json.loads(flush.stdout)["Pending"] == 0, flush.stdout
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len({r["headers"][EVENT_ID_HEADER] for r in hook.taken()}) < count:
            time.sleep(0.1)
        taken = hook.taken()
        ids = [r["headers"][EVENT_ID_HEADER] for r in taken]
        assert len(set(ids)) == count, f"{len(set(ids))} of {count} events arrived"
        assert all(hooks.signed_with(secret, r) for r in taken), "an attempt was not signed"

    with scratch("receivers") as base:
        def down() -> dict:
            folder = base / "down"
            folder.mkdir()
            port = hooks.free_port()
            result, took = run(folder, f"http://127.0.0.1:{port}/hook", 20, "1")
            assert hooks.summary(result)["callbacks_waiting"] == 20 and took < 30, (hooks.summary(result), took)
            with hooks.Hook(status=200, port=port) as hook:
                flush_all(folder, hook, 20)
            return {"run_s": round(took, 2)}

        def recovering() -> dict:
            folder = base / "recovering"
            folder.mkdir()
            with hooks.Hook(status=lambda n: 503 if n <= 25 else 200) as hook:
                result, took = run(folder, hook.url, 20, "0.5")
                flush_all(folder, hook, 20)
            return {"run_s": round(took, 2)}

        def slow() -> dict:
            folder = base / "slow"
            folder.mkdir()
            with hooks.Hook(status=200, delay=2.0) as hook:
                result, took = run(folder, hook.url, 12, "0")
                assert took < 10, f"a 2 s receiver stretched the run to {took:.1f} s"
                flush_all(folder, hook, 12)
                time.sleep(2.5)
            return {"run_s": round(took, 2)}

        def redirecting() -> dict:
            folder = base / "redirect"
            folder.mkdir()
            with hooks.Hook(status=200) as elsewhere, \
                    hooks.Hook(status=302, headers={"Location": elsewhere.url}) as hook:
                result, took = run(folder, hook.url, 5, "0.5")
                assert hooks.summary(result)["callbacks_waiting"] == 5
                assert elsewhere.requests == [], "a redirect was followed"
                rows = hooks.outbox_rows(folder / "s.db")
                assert all(r["delivered_at"] is None and "HTTP 302" in (r["last_error"] or "") for r in rows), rows
            with hooks.Hook(status=200) as healthy:
                conn = sqlite3.connect(folder / "s.db")
                with conn:
                    conn.execute("UPDATE outbox SET url = ?, next_attempt_at = 0", (healthy.url,))
                conn.close()
                flush_all(folder, healthy, 5)
            return {"run_s": round(took, 2)}

        def trickling() -> dict:
            folder = base / "trickle"
            folder.mkdir()
            # The events are queued by a run whose receiver is down (refused at once: nothing of the run is
            # still in flight), then sent to the trickler by a flush with a 1 s deadline.
            result, took = run(folder, f"http://127.0.0.1:{hooks.free_port()}/hook", 3, "2")
            assert all(r["attempts"] >= 1 for r in hooks.outbox_rows(folder / "s.db")), "not all tried by the run"
            trickler = hooks.Trickler(pace=0.2)
            try:
                conn = sqlite3.connect(folder / "s.db")
                with conn:
                    conn.execute("UPDATE outbox SET url = ?, next_attempt_at = 0, lease_until = NULL", (trickler.url,))
                conn.close()
                with Service(store=folder / "s.db", callback_timeout_s=1.0) as engine:
                    started = time.monotonic()
                    report = engine.flush_events()
                    flushed = time.monotonic() - started
                    waiting = engine.pending_deliveries()
            finally:
                trickler.close()
            assert report.delivered == 0 and len(waiting) == 3, (report, waiting)
            assert flushed < 4.0, f"a trickling receiver held the flush {flushed:.1f} s"
            # one event per receiver is tried first; after its failure the others wait for the next pass
            assert any("no answer within 1 s" in (w["last_error"] or "") for w in waiting), waiting
            with hooks.Hook(status=200) as healthy:
                conn = sqlite3.connect(folder / "s.db")
                with conn:
                    conn.execute("UPDATE outbox SET url = ?, next_attempt_at = 0", (healthy.url,))
                conn.close()
                flush_all(folder, healthy, 3)
            return {"run_s": round(took, 2), "flush_s": round(flushed, 2)}

        for name, body in (("down", down), ("503 then 200", recovering), ("slow", slow),
                           ("redirecting", redirecting), ("trickling", trickling)):
            _trial(row, body, receiver=name)
    return row


# -- the table --------------------------------------------------------------------------------------------

def write_results(rows: list[Row], *, command: str, seconds: float, results_dir: Path, name: str) -> tuple[Path, Path]:
    record = {"name": name, "command": command, "seconds": round(seconds, 1),
              "rows": [r.as_dict() for r in rows],
              "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / f"{name}.json"
    json_path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    trials = sum(len(r.trials) for r in rows)
    held = sum(r.held for r in rows)
    lines = ["# Reliability: faults injected, and what held", "",
             f"`{command}`: {trials} trials in {seconds:.0f} s, {record['date']}, "
             f"Python {record['machine']['python']}, "
             f"{record['machine']['cpus']} CPUs. **Held: {held} of {trials}.** Every trial's details (kill moments, "
             "pages overwritten, timings, why a check failed) are in `reliability.json`; the faults are made as "
             "the tests make them (`bench/reliability.py`).", "",
             "| fault | trials | what was checked | held | failed |", "|---|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.fault} | {len(r.trials)} | {r.checked} | {r.held} | {len(r.trials) - r.held} |")
    notes = [f"- {r.fault}: {r.note}." for r in rows if r.note]
    if notes:
        lines += ["", *notes]
    failures = [(r.fault, t) for r in rows for t in r.trials if not t["held"]]
    if failures:
        lines += ["", "## What failed", ""]
        lines += [f"- {fault}: `{t.get('why', '')[:400]!r}`" for fault, t in failures]
    md_path = results_dir / f"{name}.md"
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


SECTIONS = ("kill-run", "kill-pool-worker", "kill-queue-worker", "full-store", "corrupt-store", "receivers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kill-trials", type=int, default=10, help="kills of engine run (default 10)")
    parser.add_argument("--pool-trials", type=int, default=4, help="kills of a batch's pool worker (default 4)")
    parser.add_argument("--worker-trials", type=int, default=5, help="kills of engine worker (default 5)")
    parser.add_argument("--corrupt-trials", type=int, default=20, help="stores with random pages overwritten")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="reliability")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    rng = random.Random(args.seed)
    started = time.perf_counter()
    rows: list[Row] = []
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}")
    # Commands run here never touch the per-user store: the ones given no --store get a scratch one.
    os.environ["ENGINE_STORE"] = str(Path(tempfile.mkdtemp(prefix="reliability-default-")) / "store.db")
    os.environ.pop("ENGINE_CALLBACK_SECRET", None)
    for section in sections:
        print(f"{section} ...", file=sys.stderr, flush=True)
        before = len(rows)
        if section == "kill-run":
            rows.append(kill_engine_run(args.kill_trials, rng))
        elif section == "kill-pool-worker":
            rows.append(kill_pool_worker(args.pool_trials, rng))
        elif section == "kill-queue-worker":
            rows.append(kill_queue_worker(args.worker_trials, rng))
        elif section == "full-store":
            rows += full_store(rng)
        elif section == "corrupt-store":
            rows += corrupt_store(args.corrupt_trials, rng)
        else:
            rows.append(failing_receivers())
        for row in rows[before:]:
            print(f"  {row.fault[:70]}: {row.held}/{len(row.trials)} held", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    command = "python -m bench.reliability " + " ".join(argv if argv is not None else sys.argv[1:])
    json_path, md_path = write_results(rows, command=command.strip(), seconds=seconds, results_dir=args.results_dir,
                                       name=args.name)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    return 0 if all(r.held == len(r.trials) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
