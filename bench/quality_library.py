"""Quality and speed across the previews library: the engine against gifski and ffmpeg, per clip.

    python -m bench.make_library --preset previews      # the library (bench/library/, ~30 s)
    python -m bench.quality_library                     # every clip, source size and resized, 2 jobs at a time
    python -m bench.quality_library --only talking_head,bars_4x3 --kinds source --jobs 1

For every clip of the library (``library.json``'s ``"clips"``, made by ``bench/make_library.py
--preset previews``) and every kind of job (``source``: the clip's own displayed size, no resizing
anywhere, so no scaler can tilt the score; ``resized``: the longer side at 480 px, as users ask),
the same job (seek, duration, fps from the library) goes through six sides:

========== ==================================================================================
engine-gif  ``engine.run_batch`` (bench/harness.py's engine runner), GIF
gifski      gifski 1.7.1, ``--quality 90``, on PNG frames extracted by ffmpeg (bench/gifski.py);
            skipped with a note when it cannot be had
ffmpeg-gif  ffmpeg ``palettegen``/``paletteuse`` (the harness's ffmpeg command)
floor       ffmpeg decode + ``fps`` (+ ``scale``) to ``-f null``: what any tool must at least spend
engine-webp ``engine.run_batch``, animated WebP
ffmpeg-webp ffmpeg ``libwebp_anim -quality 75`` (the harness's ffmpeg command)
========== ==================================================================================

With both engine-gif and gifski, one more batch (``engine-gif@gifski``, run once after the
others, not timed against them): each engine GIF job again with ``max_bytes`` set to gifski's
bytes for that job, the engine's own way down to a size (``engine/byte_budget.py``), so each
clip's GIF is also compared at equal or fewer bytes (the issue's "PSNR at <= gifski's bytes",
per clip; where the engine's own GIF is already smaller it is the same image); likewise
``engine-webp@ffmpeg``, the WebP jobs at ffmpeg's WebP bytes (:data:`MATCHED`). Where the
engine's own image is the smaller, the tool runs again at the highest quality whose bytes are at
most the engine's (``gifski@engine``, ``ffmpeg-webp@engine``: :data:`AT_ENGINE`), so that every
clip is compared at equal bytes one way or the other (:func:`equal_bytes_rows`).

Every side runs every job of one kind as one batch with the same number of jobs in flight
(``--jobs``, default 2; ffmpeg and the frame extraction single-threaded per job as in the
harness; gifski threads as it does by itself). Reported per side: s/clip (the batch's wall time ÷
jobs, the mean rows) and each job's own latency (the per-clip rows, with the other job running
beside it), bytes, and the PSNR of what a viewer sees against one common reference per job
(bench/psnr.py): the reference is decoded once per clip and job (turned upright by the display
rotation; for an HDR clip, its SDR master, the picture a tone-mapped preview should give back),
and every output is scored against each sampling convention of bench/psnr.py (the frame on
screen at the instant, the frame nearest it, the frame on screen mid-slot as ffmpeg's ``fps``
filter takes it) with the best kept. Output: a table per kind (printed, and in
``bench/results/NAME.md``), every number in ``NAME.json``, and one contact sheet per clip
(``bench/results/contact/CLIP.png``: the same source-size frame from each tool, a region at 2x).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/quality_library.py` puts bench/ first, not the repo root
    sys.path.insert(0, str(REPO))

from bench import gifski, harness, make_library, psnr, report  # noqa: E402

DEFAULT_LIBRARY = make_library.DEFAULT_OUT
DEFAULT_NAME = "quality-library"
KINDS = ("source", "resized")
SIDES = ("engine-gif", "gifski", "ffmpeg-gif", "floor", "engine-webp", "ffmpeg-webp")
LABELS = {"engine-gif": "engine GIF", "gifski": "gifski GIF", "ffmpeg-gif": "ffmpeg GIF", "floor": "floor",
          "engine-webp": "engine WebP", "ffmpeg-webp": "ffmpeg WebP"}
FORMAT = {"engine-gif": "gif", "gifski": "gif", "ffmpeg-gif": "gif", "floor": "gif", "engine-webp": "webp",
          "ffmpeg-webp": "webp"}
CONTACT_SIDES = ("engine-gif", "gifski", "ffmpeg-gif", "engine-webp", "ffmpeg-webp")
AT_GIFSKI = "engine-gif@gifski"
"""The engine's GIF jobs again, each under a byte budget of gifski's bytes for the same job."""
AT_FFMPEG_WEBP = "engine-webp@ffmpeg"
"""The engine's WebP jobs again, each under a byte budget of ffmpeg's WebP bytes for the same job."""
MATCHED = {AT_GIFSKI: ("engine-gif", "gifski"), AT_FFMPEG_WEBP: ("engine-webp", "ffmpeg-webp")}
"""Each batch run at another side's bytes: (the engine side it runs again, the side whose bytes it
is given as ``max_bytes``)."""
GIFSKI_AT_ENGINE = "gifski@engine"
"""gifski again where the engine's own GIF is smaller than gifski's: at the engine's bytes."""
FFMPEG_WEBP_AT_ENGINE = "ffmpeg-webp@engine"
"""ffmpeg's WebP again where the engine's own WebP is smaller than ffmpeg's: at the engine's bytes."""
AT_ENGINE = {GIFSKI_AT_ENGINE: ("gifski", "engine-gif", gifski.QUALITY),
             FFMPEG_WEBP_AT_ENGINE: ("ffmpeg-webp", "engine-webp", harness.FFMPEG_WEBP_QUALITY)}
"""The other way round from :data:`MATCHED`, for the clips whose own engine image is the smaller:
(the tool run again, the engine side whose bytes it must come under, the tool's default quality).
Each is run at the highest whole-number quality below its default whose bytes are at most the
engine's (:func:`anchor_at_bytes`), so every clip is compared at equal bytes one way or the other."""
ANCHOR_SEARCH_STEPS = 5
"""Batches that halve a tool's quality range (1 .. its default): 90 resolves to within 3."""
LABELS.update({AT_GIFSKI: "engine GIF at gifski's bytes", AT_FFMPEG_WEBP: "engine WebP at ffmpeg's bytes",
               GIFSKI_AT_ENGINE: "gifski GIF at the engine's bytes",
               FFMPEG_WEBP_AT_ENGINE: "ffmpeg WebP at the engine's bytes"})
FORMAT.update({AT_GIFSKI: "gif", AT_FFMPEG_WEBP: "webp", GIFSKI_AT_ENGINE: "gif", FFMPEG_WEBP_AT_ENGINE: "webp"})
CONTACT_MAX_BYTES = 300_000


@dataclass(frozen=True)
class Case:
    """One clip at one kind of size: its GIF job and WebP job, and what they are judged against."""

    clip: str
    kind: str
    gif: harness.Job
    webp: harness.Job
    reference: Path  # the file the reference frames come from (an HDR clip: its SDR master)
    size: tuple[int, int]  # the displayed size of the outputs
    hdr: str | None
    categories: tuple[str, ...]

    def job(self, side: str, formats: dict[str, str] = FORMAT) -> harness.Job:
        return self.gif if formats[side] == "gif" else self.webp


# --------------------------------------------------------------------------------------------
# the library and its jobs


def _index(library: Path) -> dict:
    """``library.json`` ({} when there is none)."""
    index = library / "library.json"
    return json.loads(index.read_text()) if index.exists() else {}


def library_preset(library: Path) -> str:
    """The make_library preset a library was made with (``library.json``'s ``"preset"``; a library
    made before 2026-12-05 says none and is the previews one)."""
    return _index(library).get("preset") or "previews"


def load_library(library: Path) -> dict:
    """``library.json``'s clips ({} when there is no previews library there)."""
    return _index(library).get("clips") or {}


def make_cases(clips: dict, library: Path, kinds=KINDS, only: list[str] | None = None) -> list[Case]:
    """The cases in library order, then kind order (all of one kind together)."""
    names = [n for n in clips if not only or n in only]
    cases = []
    for kind in kinds:
        for name in names:
            c = clips[name]
            j = c["job"]
            size = (c["display_width"], c["display_height"])
            wh = (None, None)
            if kind == "resized":
                size = (c["resized"]["width"], c["resized"]["height"])
                wh = size
            base = harness.Job(id=f"{name}-{kind}-gif", input=(library / c["file"]).resolve(), format="gif",
                               fps=float(j["fps"]), seek=float(j["seek"]), duration=float(j["duration"]),
                               width=wh[0], height=wh[1])
            cases.append(Case(name, kind, base, replace(base, id=f"{name}-{kind}-webp", format="webp"),
                              (library / c.get("reference_file", c["file"])).resolve(), size, c.get("hdr"),
                              tuple(c.get("categories", ()))))
    return cases


# --------------------------------------------------------------------------------------------
# the sides


def floor_command(job: harness.Job) -> list[str]:
    """ffmpeg decoding the job's span and taking its frames (``fps``, ``scale`` when resized), nothing
    encoded: the least any tool spends on the job (one thread, as the ffmpeg baseline)."""
    fps_q = Fraction(str(job.fps))
    chain = f"fps={fps_q.numerator}/{fps_q.denominator}"
    if job.width and job.height:
        chain += f",scale={job.width}:{job.height}:flags=lanczos"
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", "-ss", repr(job.seek),
            "-i", str(job.input), "-t", repr(job.duration), "-an", "-sn", "-dn", "-filter_threads", "1", "-vf", chain,
            "-f", "null", "-"]


def run_floor(jobs: list[harness.Job], *, workers: int) -> dict:
    t0 = time.perf_counter()
    cpu0 = os.times()

    def one(job):
        s0 = time.perf_counter()
        r = subprocess.run(floor_command(job), capture_output=True, text=True)
        return {"id": job.id, "status": "success" if r.returncode == 0 else "failed", "output": None, "bytes": None,
                "timings": {"total": time.perf_counter() - s0},
                "error_message": None if r.returncode == 0 else r.stderr.strip()[-500:]}

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, jobs))
    cpu1 = os.times()
    return {"wall_s": time.perf_counter() - t0, "results": results, "error": None,
            "cpu_s": (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system),
            "command": floor_command(jobs[0]) if jobs else None}


def run_side(side: str, jobs: list[harness.Job], out_dir: Path, *, workers: int,
             gifski_binary: Path | None) -> dict:
    """One batch of ``jobs`` through ``side``; a run record as bench/harness.py's."""
    if side.startswith("engine-"):
        run = harness.run_engine(jobs, out_dir, workers=workers)
        run.pop("memory_series", None)
        return run
    if side.startswith("ffmpeg-"):
        return harness.run_ffmpeg(jobs, out_dir, workers=workers)
    if side == "gifski":
        return gifski.run_gifski(jobs, out_dir, workers=workers, binary=gifski_binary)
    if side == "floor":
        return run_floor(jobs, workers=workers)
    raise ValueError(f"unknown side {side!r}")


def anchor_at_bytes(side: str, jobs: dict[str, harness.Job], targets: dict[str, int], default: int, out_dir: Path,
                    *, workers: int, gifski_binary: Path | None) -> dict:
    """``side`` (a tool with a quality setting) run on ``jobs`` (clip -> job) at the highest
    whole-number quality below ``default`` whose bytes are at most ``targets[clip]``, found by
    halving 1 .. ``default`` in :data:`ANCHOR_SEARCH_STEPS` batches (each batch every clip still
    searching, at its own midpoint). A run record: ``wall_s`` the batches' time together,
    ``results`` one per clip, the best fit with its ``quality`` (or, none fitting, status
    ``unreached`` with the smallest tried)."""
    low = {clip: 0 for clip in jobs}  # qualities at or below: fit or untried (0 is no quality)
    high = {clip: default for clip in jobs}  # the lowest quality known to miss
    best: dict[str, dict] = {}
    smallest: dict[str, dict] = {}
    wall = 0.0
    for step in range(ANCHOR_SEARCH_STEPS):
        asked = {clip: (low[clip] + high[clip] + 1) // 2 for clip in jobs if high[clip] - low[clip] > 1}
        if not asked:
            break
        batch = [replace(jobs[clip], id=f"{jobs[clip].id}-q{q}", quality=q) for clip, q in asked.items()]
        record = run_side(side, batch, out_dir / f"step-{step}", workers=workers, gifski_binary=gifski_binary)
        wall += record.get("wall_s") or 0.0
        by_id = {r["id"]: r for r in record["results"]}
        for clip, q in asked.items():
            r = by_id.get(f"{jobs[clip].id}-q{q}") or {}
            if r.get("status") != "success" or not r.get("bytes"):
                high[clip] = q  # a failed run counts as a miss: the search moves down
                continue
            r = {**r, "quality": q}
            if r["bytes"] <= targets[clip]:
                low[clip], best[clip] = q, r
            else:
                high[clip] = q
                if clip not in smallest or r["bytes"] < smallest[clip]["bytes"]:
                    smallest[clip] = r
    results = []
    for clip, job in jobs.items():
        if clip in best:
            results.append({**best[clip], "id": job.id})
        else:
            tried = smallest.get(clip) or {}
            results.append({"id": job.id, "status": "unreached", "output": None, "bytes": tried.get("bytes"),
                            "quality": tried.get("quality"), "timings": tried.get("timings") or {},
                            "error_message": f"over the engine's {targets[clip]} bytes at every quality tried"})
    return {"wall_s": wall, "cpu_s": None, "results": results, "error": None, "command": None}


# --------------------------------------------------------------------------------------------
# scoring (in worker processes, one case at a time) and the contact sheet


def _crop_box(errors: list, size: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of the ``crop`` window where the outputs differ most from the reference."""
    import numpy as np

    w, h = size
    cw, ch = crop
    err = np.zeros((h, w), np.float64)
    for e in errors:
        err += e
    integral = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, where = -1.0, (0, 0)
    for y in range(0, h - ch + 1, 4):
        for x in range(0, w - cw + 1, 4):
            s = integral[y + ch, x + cw] - integral[y, x + cw] - integral[y + ch, x] + integral[y, x]
            if s > best:
                best, where = s, (x, y)
    return where


def contact_sheet(reference, panels: list[tuple[str, object]], path: Path, title: str) -> dict:
    """One PNG: the reference frame and each tool's frame at the same instant, the same region of
    each at 2x (nearest neighbour, so dither patterns stay visible), labelled; kept under
    CONTACT_MAX_BYTES by shrinking the region."""
    import numpy as np
    from PIL import Image, ImageDraw

    h, w = reference.shape[:2]
    errors = [np.abs(f.astype(np.int16) - reference.astype(np.int16)).mean(axis=2) for _, f in panels
              if f is not None and f.shape == reference.shape]
    cw, ch = min(192, w), min(112, h)
    while True:
        x, y = _crop_box(errors, (w, h), (cw, ch))
        tiles = [("source (reference)", reference)] + panels
        cols = 3
        rows = math.ceil(len(tiles) / cols)
        label_h = 16
        sheet = Image.new("RGB", (cols * 2 * cw + (cols - 1) * 4, 18 + rows * (2 * ch + label_h + 4)), (255, 255, 255))
        draw = ImageDraw.Draw(sheet)
        draw.text((4, 3), f"{title}: region {cw}x{ch} at ({x},{y}) of {w}x{h}, shown at 2x", fill=(0, 0, 0))
        for i, (label, frame) in enumerate(tiles):
            cx, cy = (i % cols) * (2 * cw + 4), 18 + (i // cols) * (2 * ch + label_h + 4)
            draw.text((cx + 2, cy + 2), label, fill=(0, 0, 0))
            if frame is None or frame.shape != reference.shape:
                draw.text((cx + 2, cy + label_h + 4), "(no output)", fill=(160, 0, 0))
                continue
            tile = Image.fromarray(np.ascontiguousarray(frame[y:y + ch, x:x + cw]))
            sheet.paste(tile.resize((2 * cw, 2 * ch), Image.Resampling.NEAREST), (cx, cy + label_h))
        path.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(path, optimize=True)
        size = path.stat().st_size
        if size <= CONTACT_MAX_BYTES or cw <= 64:
            return {"file": path.name, "bytes": size, "region": [x, y, cw, ch]}
        cw, ch = max(64, int(cw * 0.8)), max(40, int(ch * 0.8))


def score_case(case: Case, outputs: dict[str, str | None], contact: str | None,
               formats: dict[str, str] = FORMAT) -> dict:
    """PSNR of each side's output of one case (best of the two conventions), and its contact sheet.
    ``formats``: each side's format (default: this benchmark's sides; bench/gpu_session names its
    own, "cuda-gif" and so on)."""
    import numpy as np

    job = case.gif
    times = psnr.instants(job.seek, job.duration, job.fps)
    t0 = time.perf_counter()
    refs = psnr.decode_conventions(case.reference, times, rotate=True, fps=job.fps)
    sized: dict[tuple[int, int], dict[str, psnr.SourceFrames]] = {}
    out: dict[str, dict] = {}
    # the contact sheet's instant: the one nearest the middle where every convention takes the same
    # source frame, so that every tool is shown the same picture whichever rule it follows
    agreed = [k for k in range(len(times)) if len({src.source_times[k] for src in refs.values()}) == 1]
    middle = min(agreed or [len(times) // 2], key=lambda k: abs(k - len(times) // 2))
    shown_frames: dict[str, np.ndarray] = {}
    for side, path in outputs.items():
        if not path:
            continue
        side_job = case.job(side, formats)
        anim = psnr.decode_animation(Path(path))
        if anim.size not in sized:
            sized[anim.size] = {name: psnr.SourceFrames(psnr.resize_reference(src, anim.size), src.source_times,
                                                        src.notes) for name, src in refs.items()}
        s = psnr.score_best(anim, sized[anim.size], side_job.fps, side_job.duration,
                            (side_job.width, side_job.height) if side_job.width else case.size)
        out[side] = {k: s[k] for k in ("psnr_mean_db", "psnr_min_db", "psnr_pooled_db", "convention",
                                       "psnr_mean_db_by_convention", "frames_stored", "frames_compared",
                                       "total_duration_ms", "width", "height", "flags")}
        out[side]["psnr_per_frame_db"] = s["psnr_per_frame_db"]
        shown_frames[side] = anim.frames[s["shown_index"][middle]]
    sheet = None
    if contact:
        ref = sized.get(case.size, {}).get("on_screen")
        reference = ref.frames[middle] if ref else psnr.resize_reference(refs["on_screen"], case.size)[middle]
        panels = [(f"{LABELS[side]}" + (f"  {out[side]['psnr_per_frame_db'][middle]:.1f} dB" if side in out else ""),
                   shown_frames.get(side)) for side in CONTACT_SIDES if side in outputs]
        sheet = contact_sheet(reference, panels, Path(contact),
                              f"{case.clip} ({case.size[0]}x{case.size[1]}), instant {middle} "
                              f"(t = {float(times[middle]):.3f} s)")
    return {"clip": case.clip, "kind": case.kind, "scores": out, "contact": sheet,
            "reference_notes": refs["on_screen"].notes, "score_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------
# the tables


def _fmt_bytes(x) -> str:
    if x is None:
        return "–"
    return f"{x / 1e6:.2f} MB" if x >= 1e6 else f"{x / 1e3:.0f} KB"


def _fmt(x, spec="{:.2f}") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else spec.format(x)


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def _delta(a, b):
    return None if a is None or b is None else a - b


def table_rows(kind_report: dict, sides: list[str]) -> list[list[str]]:
    """The per-clip rows of one kind, then the means: header first. Per side: s (the job's latency;
    in the batch row, wall ÷ jobs), PSNR dB and bytes (floor: s only), then the engine's GIF minus
    gifski and WebP minus ffmpeg in dB."""
    header = ["clip"]
    for side in sides:
        header += [f"{LABELS[side]} s"] + ([] if side == "floor" else [f"{LABELS[side]} dB", f"{LABELS[side]} bytes"])
    header += ["GIF dB engine−gifski", "WebP dB engine−ffmpeg"]
    rows = [header]
    clips = kind_report["clips"]

    def cells(get) -> list[str]:
        row = []
        for side in sides:
            s, db, b = get(side)
            row.append(_fmt(s))
            if side != "floor":
                row += [_fmt(db), _fmt_bytes(b)]
        return row

    def deltas(get) -> list[str]:
        return [_fmt(_delta(get("engine-gif")[1], get("gifski")[1]), "{:+.2f}"),
                _fmt(_delta(get("engine-webp")[1], get("ffmpeg-webp")[1]), "{:+.2f}")]

    def of_clip(name):
        def get(side):
            r = clips[name]["sides"].get(side) or {}
            return r.get("latency_s"), r.get("psnr_mean_db"), r.get("bytes")
        return get

    for name in clips:
        get = of_clip(name)
        hdr = clips[name].get("hdr")
        rows.append([name + (f" ({hdr.upper()})" if hdr else "")] + cells(get) + deltas(get))

    def mean_of(names, timing="latency"):
        def get(side):
            vals = [clips[n]["sides"].get(side) or {} for n in names]
            if timing == "batch":
                s = (kind_report["batches"].get(side) or {}).get("s_per_clip")
            else:
                s = _mean([v.get("latency_s") for v in vals])
            return s, _mean([v.get("psnr_mean_db") for v in vals]), _mean([v.get("bytes") for v in vals])
        return get

    names = list(clips)
    sdr = [n for n in names if not clips[n].get("hdr")]
    for label, group, timing in ((f"**mean, {len(names)} clips** (s: batch wall ÷ jobs)", names, "batch"),
                                 (f"mean, {len(names)} clips (s: job latency)", names, "latency"),
                                 (f"mean, {len(sdr)} SDR clips (s: job latency)", sdr, "latency")):
        if not group or (label.startswith("mean, ") and group is sdr and len(sdr) == len(names)):
            continue
        get = mean_of(group, timing)
        rows.append([label] + cells(get) + deltas(get))
    return rows


def matched_rows(kind_report: dict, matched: str) -> list[list[str]]:
    """Per clip, the engine at another tool's bytes (a :data:`MATCHED` batch) beside that tool's
    and the engine's own image, what the budget gave up, and the difference in dB; then the
    means and how many clips are at least 0.5 dB above the tool and how many more than 0.5 dB
    below. Header first; [] when that batch did not run."""
    engine, anchor = MATCHED[matched]
    clips = kind_report["clips"]
    if not any(matched in clip["sides"] for clip in clips.values()):
        return []
    rows = [["clip", f"{LABELS[anchor]} dB", "bytes", f"{LABELS[engine]} dB", "bytes", f"{LABELS[matched]}: dB",
             "bytes", "gave up", f"dB −{LABELS[anchor].split()[0]}"]]
    deltas, columns = [], [[] for _ in range(6)]
    for name, clip in clips.items():
        theirs, own, fitted = (clip["sides"].get(side) or {} for side in (anchor, engine, matched))
        values = [theirs.get("psnr_mean_db"), theirs.get("bytes"), own.get("psnr_mean_db"), own.get("bytes"),
                  fitted.get("psnr_mean_db"), fitted.get("bytes")]
        for column, value in zip(columns, values):
            column.append(value)
        note = next((n for n in fitted.get("notes") or [] if n.startswith("max_bytes")), None)
        gave_up = (note.split("gave up ", 1)[1].split(" -> ")[0] if note and "gave up " in note
                   else "nothing" if fitted.get("status") == "success" else fitted.get("error") or "–")
        delta = _delta(values[4], values[0])
        deltas.append(delta)
        hdr = clip.get("hdr")
        rows.append([name + (f" ({hdr.upper()})" if hdr else ""), _fmt(values[0]), _fmt_bytes(values[1]),
                     _fmt(values[2]), _fmt_bytes(values[3]), _fmt(values[4]), _fmt_bytes(values[5]), gave_up,
                     _fmt(delta, "{:+.2f}")])
    means = [_mean(column) for column in columns]
    measured = [d for d in deltas if d is not None]
    rows.append([f"mean, {len(clips)} clips", _fmt(means[0]), _fmt_bytes(means[1]), _fmt(means[2]),
                 _fmt_bytes(means[3]), _fmt(means[4]), _fmt_bytes(means[5]),
                 f"{sum(d >= 0.5 for d in measured)} of {len(measured)} clips >= +0.5 dB, "
                 f"{sum(d < -0.5 for d in measured)} below -0.5", _fmt(_delta(means[4], means[0]), "{:+.2f}")])
    return rows


EQUAL_BYTES = (("engine-gif", "gifski", AT_GIFSKI, GIFSKI_AT_ENGINE),
               ("engine-webp", "ffmpeg-webp", AT_FFMPEG_WEBP, FFMPEG_WEBP_AT_ENGINE))
"""(engine side, tool, the engine at the tool's bytes, the tool at the engine's bytes): the
pairs :func:`equal_bytes_rows` compares."""


def equal_bytes_rows(kind_report: dict, pair: tuple[str, str, str, str]) -> list[list[str]]:
    """Per clip, the engine and a tool at equal bytes whichever way round they had to be: where
    the engine's own image is bigger, the engine under the tool's bytes (:data:`MATCHED`); where
    it is smaller, the tool at the highest quality that comes under the engine's bytes
    (:data:`AT_ENGINE`); then the means and how many clips are at least 0.5 dB above the tool
    and how many more than 0.5 dB below. Header first; [] when neither batch ran."""
    engine, anchor, engine_at, anchor_at = pair
    clips = kind_report["clips"]
    if not any(engine_at in clip["sides"] or anchor_at in clip["sides"] for clip in clips.values()):
        return []
    tool = LABELS[anchor].split()[0]
    rows = [["clip", "how", f"{LABELS[engine]} dB", "bytes", f"{tool} dB", "bytes", f"dB −{tool}"]]
    deltas, columns = [], [[] for _ in range(4)]
    for name, clip in clips.items():
        own, theirs = clip["sides"].get(engine) or {}, clip["sides"].get(anchor) or {}
        if anchor_at in clip["sides"]:
            theirs = clip["sides"][anchor_at]
            how = (f"{tool} at quality {theirs.get('quality')}" if theirs.get("status") == "success"
                   else f"{tool} over the engine's bytes at every quality tried")
        elif engine_at in clip["sides"] and (own.get("bytes") or 0) > (theirs.get("bytes") or 0):
            own = clip["sides"][engine_at]
            how = f"engine under {tool}'s bytes"
        else:
            how = "each as it is"
        if theirs.get("status") not in (None, "success"):  # failed, skipped, or never under the engine's bytes
            theirs = {}
        values = [own.get("psnr_mean_db"), own.get("bytes"), theirs.get("psnr_mean_db"), theirs.get("bytes")]
        for column, value in zip(columns, values):
            column.append(value)
        delta = _delta(values[0], values[2])
        deltas.append(delta)
        hdr = clip.get("hdr")
        rows.append([name + (f" ({hdr.upper()})" if hdr else ""), how, _fmt(values[0]), _fmt_bytes(values[1]),
                     _fmt(values[2]), _fmt_bytes(values[3]), _fmt(delta, "{:+.2f}")])
    means = [_mean(column) for column in columns]
    measured = [d for d in deltas if d is not None]
    rows.append([f"mean, {len(clips)} clips", f"{sum(d >= 0.5 for d in measured)} of {len(measured)} clips >= +0.5 dB, "
                 f"{sum(d < -0.5 for d in measured)} below -0.5", _fmt(means[0]), _fmt_bytes(means[1]),
                 _fmt(means[2]), _fmt_bytes(means[3]), _fmt(_delta(means[0], means[2]), "{:+.2f}")])
    return rows


STAGES = ("decode", "kernels", "encode")
"""The engine's stages shown in :func:`stage_rows` (its ``timings``; probe and write are small)."""


def stage_rows(kind_report: dict, sides: list[str]) -> list[list[str]]:
    """Where each engine job's time goes, per clip: the seconds of each of :data:`STAGES`, the
    job's total and that total over the floor's latency for the same job (the issue's "x the
    decode floor", per clip), then the means. Header first; [] when no engine side ran."""
    engines = [side for side in sides if side.startswith("engine-")]
    if not engines:
        return []
    header = ["clip", "floor s"]
    for side in engines:
        header += [f"{LABELS[side]} {stage}" for stage in STAGES] + [f"{LABELS[side]} s", f"{LABELS[side]} ÷ floor"]
    rows = [header]
    clips = kind_report["clips"]
    columns: list[list[float | None]] = [[] for _ in header[1:]]
    for name, clip in clips.items():
        floor = (clip["sides"].get("floor") or {}).get("latency_s")
        values = [floor]
        for side in engines:
            result = clip["sides"].get(side) or {}
            timings = result.get("timings") or {}
            total = result.get("latency_s")
            values += [timings.get(stage) for stage in STAGES] + [total]
            values.append(total / floor if total and floor else None)
        for column, value in zip(columns, values):
            column.append(value)
        hdr = clip.get("hdr")
        rows.append([name + (f" ({hdr.upper()})" if hdr else "")] + [_fmt(v) for v in values])
    means = [_mean(column) for column in columns]
    for k, label in enumerate(header[1:]):  # the mean ratio is the ratio of the means
        if label.endswith("÷ floor"):
            means[k] = means[k - 1] / means[0] if means[k - 1] and means[0] else None
    rows.append([f"mean, {len(clips)} clips"] + [_fmt(v) for v in means])
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def render_markdown(rep: dict) -> str:
    cfg, m = rep["config"], rep["machine"]
    lines = [
        f"# Quality and speed across the {cfg.get('preset', 'previews')} library",
        "",
        f"`{cfg['command']}` on {m.get('date')}, {m.get('cpu_model', '?')} ({m.get('cpus_usable')} CPUs usable), "
        f"{cfg['jobs']} jobs in flight on every side, "
        f"{'one run' if cfg.get('repeat', 1) == 1 else 'each side the fastest of ' + str(cfg['repeat']) + ' runs taken in turn'}, "
        f"{cfg.get('total_s', '?')} s in all; engine at "
        f"{(m.get('git_commit') or '?')[:7]}{' (engine/ or kernels/ modified)' if m.get('git_dirty') else ''}. "
        f"{' '.join(str(m.get('ffmpeg_version', 'ffmpeg ?')).split()[:3])}; "
        f"gifski: {'gifski ' + rep['gifski']['version'] + ' --quality ' + str(rep['gifski']['quality']) if rep['gifski'].get('version') else rep['gifski']['note']}. Library: {cfg['clips']} clips (bench/make_library.py --preset {cfg.get('preset', 'previews')}); "
        f"each job {cfg['job_summary']}.",
        "",
        "s: per clip, the job's own latency with the other jobs running beside it (engine: its `timings.total`; "
        "gifski: ffmpeg's PNG extraction + gifski); in the first mean row, the batch's wall time ÷ jobs (what a "
        "batch costs per clip, pool start included). dB: mean over the displayed instants of the PSNR of what a "
        "viewer sees against one common reference (bench/psnr.py), the best of its sampling conventions "
        "(frame on screen at the instant, frame nearest it, frame on screen mid-slot as ffmpeg's fps filter takes "
        "it; the JSON has each). HDR clips are judged against the SDR master they were "
        "made from. floor: ffmpeg decode + fps (+ scale) alone.",
        "",
    ]
    for kind in rep["kinds"]:
        k = rep["kinds"][kind]
        lines += [f"## {kind} size" + (" (scaler-neutral: no resizing anywhere)" if kind == "source" else
                                      " (longer side 480 px; gifski and ffmpeg use ffmpeg's Lanczos, the reference "
                                      "Pillow's: not scaler-neutral)"), ""]
        lines.append(markdown_table(table_rows(k, rep["sides"])))
        lines.append("")
        for matched, (engine, anchor) in MATCHED.items():
            budgeted = matched_rows(k, matched)
            if budgeted:
                lines += [f"{LABELS[matched][len('engine '):]} ({kind} size): each {LABELS[engine]} job again with "
                          f"`max_bytes` = {LABELS[anchor]}'s bytes for that job (one batch after the others, not timed "
                          "against them); where the engine's own image is smaller it is the same image.", "",
                          markdown_table(budgeted), ""]
        for pair in EQUAL_BYTES:
            equal = equal_bytes_rows(k, pair)
            if equal:
                engine, anchor = pair[0], pair[1]
                lines += [f"{LABELS[engine]} and {LABELS[anchor]} at equal bytes ({kind} size): where the engine's "
                          f"own image is bigger, the engine under {LABELS[anchor]}'s bytes (the table above); where it "
                          f"is smaller, {LABELS[anchor].split()[0]} again at the highest quality below its default "
                          "whose bytes are at most the engine's (halving its quality range, "
                          f"{ANCHOR_SEARCH_STEPS} batches, not timed).", "", markdown_table(equal), ""]
        stages = stage_rows(k, rep["sides"])
        if stages:
            lines += [f"Where the engine's time goes ({kind} size), s per job with the other jobs beside it: "
                      "decode (PyAV, conversion to RGB), kernels (resize, tone map, palettes, remap, hold), "
                      "encode; ÷ floor is the job's total over the floor's latency for the same job.", "",
                      markdown_table(stages), ""]
        notes = k.get("notes") or []
        if notes:
            lines += ["Notes:", ""] + [f"* {n}" for n in notes] + [""]
    lines += ["## Contact sheets", "",
              "bench/results/contact/CLIP.png: the source-size job at the instant nearest the middle where every "
              "sampling convention takes the same source frame (so every tool shows the same picture), the same "
              "region from the reference and from each tool at 2x (where the outputs differ most from the source).",
              ""]
    for name, sheet in rep.get("contact", {}).items():
        if sheet:
            lines.append(f"* [{name}](contact/{sheet['file']}) ({sheet['bytes'] / 1e3:.0f} KB)")
    lines.append("")
    return "\n".join(lines)


def render_text(rep: dict) -> str:
    """The tables for the terminal: aligned columns."""
    out = []

    def aligned(rows: list[list[str]]) -> None:
        rows = [[c.replace("**", "") for c in r] for r in rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))

    for kind, k in rep["kinds"].items():
        out.append(f"== {kind} size ==")
        aligned(table_rows(k, rep["sides"]))
        for n in k.get("notes") or []:
            out.append(f"note: {n}")
        for matched in MATCHED:
            budgeted = matched_rows(k, matched)
            if budgeted:
                out += ["", f"-- {kind} size: {LABELS[matched]} --"]
                aligned(budgeted)
        for pair in EQUAL_BYTES:
            equal = equal_bytes_rows(k, pair)
            if equal:
                out += ["", f"-- {kind} size: {LABELS[pair[0]]} and {LABELS[pair[1]]} at equal bytes --"]
                aligned(equal)
        stages = stage_rows(k, rep["sides"])
        if stages:
            out += ["", f"-- {kind} size: the engine's stages, s per job --"]
            aligned(stages)
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# the run


def run(library: Path, *, jobs: int = 2, only: list[str] | None = None, kinds=KINDS, sides=SIDES,
        install_gifski: bool = True, contact_dir: Path | None = None, keep_dir: Path | None = None,
        log=lambda m: None, command: str = "", repeat: int = 1) -> dict:
    """Every side on every case of ``kinds``; ``repeat`` > 1 runs each kind's sides that many
    times, in turn (the order reversed every other round, so no side always follows the same
    one), and keeps each side's fastest batch: on a shared machine whose speed drifts over
    minutes, one pass per side can hand one side a slow stretch (single runs moved the resized
    ratios by 0.3)."""
    clips = load_library(library)
    if not clips:
        raise SystemExit(f"{library}/library.json has no clips: run `python -m bench.make_library --preset "
                         f"{'holdout' if library.resolve() == make_library.HOLDOUT_OUT.resolve() else 'previews'}`")
    unknown = sorted(set(only or []) - set(clips))
    if unknown:
        raise SystemExit(f"--only: no clip {', '.join(unknown)} in {library} (clips: {', '.join(clips)})")
    cases = make_cases(clips, library, kinds, only)
    sides = [s for s in SIDES if s in sides]
    gifski_binary, gifski_note = (None, "not asked for")
    if "gifski" in sides:
        gifski_binary, gifski_note = gifski.ensure(allow_install=install_gifski, log=log)
        log(f"gifski: {gifski_note}")
        if gifski_binary is None:
            print(f"note: {gifski_note}; the gifski columns stay empty", file=sys.stderr)
    first = cases[0]
    rep: dict = {
        "kind": "quality-library",
        "config": {"command": command, "library": str(library), "preset": library_preset(library), "jobs": jobs,
                   "repeat": repeat, "kinds": list(kinds),
                   "clips": len({c.clip for c in cases}), "sides": sides,
                   "job_summary": (f"{first.gif.duration:g} s from {first.gif.seek:g} s at {first.gif.fps:g} fps "
                                   "unless the library says otherwise (see the JSON)")},
        "machine": harness.machine_info(jobs),
        "gifski": {"note": gifski_note, "binary": str(gifski_binary) if gifski_binary else None,
                   "version": gifski.version_of(gifski_binary) if gifski_binary else None,
                   "quality": gifski.QUALITY},
        "sides": sides,
        "library": {name: {k: clips[name].get(k) for k in ("file", "categories", "description", "display_width",
                                                          "display_height", "rotation", "hdr", "reference_file",
                                                          "job", "resized")}
                    for name in dict.fromkeys(c.clip for c in cases)},
        "kinds": {},
        "contact": {},
    }
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="quality-library-") as tmp, \
            ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as scorers:
        tmp = Path(tmp)
        # warm-up, untimed: one short job per side (page cache, first start of each tool)
        warm = min((c for c in cases if c.kind == cases[0].kind), key=lambda c: c.size[0] * c.size[1])
        for side in sides:
            run_side(side, [replace(warm.job(side), duration=min(1.0, warm.gif.duration))], tmp / "warmup" / side,
                     workers=1, gifski_binary=gifski_binary)
        log("warm-up done")
        pending = []
        for kind in kinds:
            kcases = [c for c in cases if c.kind == kind]
            if not kcases:
                continue
            k: dict = {"batches": {}, "clips": {c.clip: {"hdr": c.hdr, "size": list(c.size), "sides": {}}
                                                for c in kcases}, "notes": []}
            rep["kinds"][kind] = k
            outputs: dict[str, dict[str, str | None]] = {c.clip: {} for c in kcases}
            records: dict[str, dict] = {}  # each side's fastest batch
            for round_ in range(repeat):
                for side in (sides if round_ % 2 == 0 else sides[::-1]):
                    record = run_side(side, [c.job(side) for c in kcases], tmp / kind / f"{side}-{round_}",
                                      workers=jobs, gifski_binary=gifski_binary)
                    if side not in records or (record.get("wall_s") or math.inf) < (records[side].get("wall_s")
                                                                                  or math.inf):
                        records[side] = record
                    if repeat > 1:
                        log(f"{kind}: round {round_ + 1}/{repeat}: {side}: "
                            + (f"{record['wall_s']:.1f} s" if record.get("wall_s") is not None else "no time"))
            jobs_of = {side: {c.clip: c.job(side) for c in kcases} for side in sides}
            for matched, (engine, anchor) in MATCHED.items():
                if engine not in sides or anchor not in records:
                    continue
                budgets = {r["id"]: r["bytes"] for r in records[anchor]["results"]
                           if r.get("status") == "success" and r.get("bytes")}
                jobs_of[matched] = {c.clip: replace(c.job(engine), id=f"{c.job(engine).id}-at-{anchor}",
                                                    as_written={"max_bytes": budgets[c.job(anchor).id]})
                                    for c in kcases if c.job(anchor).id in budgets}
                if jobs_of[matched]:
                    records[matched] = run_side(engine, list(jobs_of[matched].values()), tmp / kind / matched,
                                                workers=jobs, gifski_binary=None)
                    log(f"{kind}: {matched}: {len(jobs_of[matched])} jobs")
            for anchored, (anchor, engine, default) in AT_ENGINE.items():
                if anchor not in records or engine not in records:
                    continue
                sizes = {side: {r["id"]: r["bytes"] for r in records[side]["results"]
                                if r.get("status") == "success" and r.get("bytes")} for side in (anchor, engine)}
                targets = {c.clip: sizes[engine][c.job(engine).id] for c in kcases
                           if c.job(engine).id in sizes[engine] and c.job(anchor).id in sizes[anchor]
                           and sizes[engine][c.job(engine).id] < sizes[anchor][c.job(anchor).id]}
                if targets:
                    jobs_of[anchored] = {clip: replace(jobs_of[anchor][clip], id=f"{jobs_of[anchor][clip].id}-at-engine")
                                         for clip in targets}
                    records[anchored] = anchor_at_bytes(anchor, jobs_of[anchored], targets, default,
                                                        tmp / kind / anchored, workers=jobs,
                                                        gifski_binary=gifski_binary)
                    log(f"{kind}: {anchored}: {len(targets)} jobs")
            for side in [s for s in (*sides, *MATCHED, *AT_ENGINE) if s in records]:
                side_jobs = list(jobs_of[side].values())
                record = records[side]
                by_id = {r["id"]: r for r in record["results"]}
                skipped = all(r.get("status") == "skipped" for r in record["results"])
                failed = [r for r in record["results"] if r.get("status") == "failed"]
                k["batches"][side] = {"wall_s": record["wall_s"], "jobs": len(side_jobs),
                                      "s_per_clip": None if skipped or record["wall_s"] is None
                                      else record["wall_s"] / len(side_jobs),
                                      "cpu_s": record.get("cpu_s"), "failed": len(failed),
                                      "command_example": record.get("command")}
                for c in kcases:
                    if c.clip not in jobs_of[side]:
                        continue
                    r = by_id.get(jobs_of[side][c.clip].id) or {}
                    entry = {"status": r.get("status"), "latency_s": (r.get("timings") or {}).get("total"),
                             "bytes": r.get("bytes"), "error": harness.error_of(r) if r.get("status") == "failed"
                             else None}
                    if side == "gifski" and r.get("timings"):
                        entry["extract_s"] = r["timings"].get("extract")
                    if side in AT_ENGINE:
                        entry["quality"] = r.get("quality")
                    if r.get("status") == "success" and side.startswith("engine-"):
                        entry["timings"] = r.get("timings")
                        entry["notes"] = r.get("notes")
                    k["clips"][c.clip]["sides"][side] = entry
                    if r.get("status") == "failed":
                        k["notes"].append(f"{c.clip}: {LABELS[side]} failed: {entry['error']}")
                    if side != "floor":
                        out = r.get("output") if r.get("status") == "success" else None
                        outputs[c.clip][side] = out
                        if out and keep_dir is not None:
                            dest = keep_dir / kind
                            dest.mkdir(parents=True, exist_ok=True)
                            shutil.copy2(out, dest / f"{c.clip}-{side}{Path(out).suffix}")
                b = k["batches"][side]
                log(f"{kind}: {side}: {len(side_jobs)} jobs" + (" skipped" if skipped else
                    f" in {b['wall_s']:.1f} s ({b['s_per_clip']:.2f} s/clip)") + (f", {len(failed)} FAILED" if failed
                                                                                 else ""))
            if skipped_note := (gifski_note if "gifski" in sides and gifski_binary is None else None):
                k["notes"].append(f"gifski: {skipped_note}")
            # scoring needs the outputs, which live in tmp: score this kind before the next kind runs
            log(f"{kind}: scoring {len(kcases)} clips, {jobs} at a time ...")
            for c in kcases:
                sheet = str(contact_dir / f"{c.clip}.png") if contact_dir is not None and kind == "source" else None
                pending.append((kind, c, scorers.submit(score_case, c, outputs[c.clip], sheet)))
            for kind_, c, fut in pending:
                res = fut.result()
                for side, s in res["scores"].items():
                    entry = rep["kinds"][kind_]["clips"][c.clip]["sides"][side]
                    entry.update({key: s[key] for key in ("psnr_mean_db", "psnr_min_db", "psnr_pooled_db",
                                                          "convention", "psnr_mean_db_by_convention",
                                                          "frames_stored", "frames_compared", "total_duration_ms",
                                                          "width", "height", "flags")})
                    entry["psnr_per_frame_db"] = s["psnr_per_frame_db"]
                    if s["flags"]:
                        rep["kinds"][kind_]["notes"].append(f"{c.clip}: {LABELS[side]}: {'; '.join(s['flags'])}")
                rep["kinds"][kind_]["clips"][c.clip]["reference_notes"] = res["reference_notes"]
                rep["kinds"][kind_]["clips"][c.clip]["score_s"] = round(res["score_s"], 2)
                if res["contact"]:
                    rep["contact"][c.clip] = res["contact"]
            pending = []
            log(f"{kind}: scored")
    rep["machine"]["loadavg_end"] = os.getloadavg()
    return rep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.quality_library", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--library", type=Path, default=DEFAULT_LIBRARY,
                    help="the previews library (made here first when it has no clips)")
    ap.add_argument("--corpus", type=Path, default=make_library.DEFAULT_CORPUS,
                    help="footage for making the library when it is not there")
    ap.add_argument("--jobs", type=int, default=2, help="jobs in flight on every side (and scoring processes)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each kind's sides this many times, in turn, and keep each side's fastest batch")
    ap.add_argument("--only", help="only these clips, comma-separated")
    ap.add_argument("--kinds", default=",".join(KINDS), help="source (no resizing), resized (longer side 480 px)")
    ap.add_argument("--sides", default=",".join(SIDES), help="subset of " + ",".join(SIDES))
    ap.add_argument("--no-install", action="store_true", help="do not install gifski when it is not there")
    ap.add_argument("--name", default=None,
                    help=f"results NAME.md/.json [default: {DEFAULT_NAME}, or {DEFAULT_NAME}-partial with --only]")
    ap.add_argument("--results-dir", type=Path, default=harness.RESULTS_DIR)
    ap.add_argument("--no-contact", action="store_true", help="skip the contact sheets (results-dir/contact/CLIP.png)")
    ap.add_argument("--keep-outputs", type=Path, default=None, help="copy every output here")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error("--jobs takes 1 or more")
    if args.repeat < 1:
        ap.error("--repeat takes 1 or more")
    kinds = [k for k in args.kinds.split(",") if k]
    sides = [s for s in args.sides.split(",") if s]
    if set(kinds) - set(KINDS) or not kinds:
        ap.error(f"--kinds takes {', '.join(KINDS)}")
    if set(sides) - set(SIDES) or not sides:
        ap.error(f"--sides takes {', '.join(SIDES)}")
    if shutil.which("ffmpeg") is None:
        print("ffmpeg is not on PATH", file=sys.stderr)
        return 2
    only = [c for c in (args.only or "").split(",") if c] or None

    def log(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    if not load_library(args.library):
        log(f"{args.library} has no previews library: making it (python -m bench.make_library --preset previews)")
        make_library.build_previews(out_dir=args.library, corpus=args.corpus, log=log)
    t0 = time.perf_counter()
    contact_dir = None if args.no_contact else args.results_dir / "contact"
    command = "python -m bench.quality_library" + ("" if argv is None and len(sys.argv) <= 1 else
                                                   " " + " ".join(argv if argv is not None else sys.argv[1:]))
    rep = run(args.library, jobs=args.jobs, only=only, kinds=kinds, sides=sides, install_gifski=not args.no_install,
              contact_dir=contact_dir, keep_dir=args.keep_outputs, log=log, command=command, repeat=args.repeat)
    rep["config"]["total_s"] = round(time.perf_counter() - t0, 1)
    name = args.name or (DEFAULT_NAME + ("-partial" if only else ""))
    md = render_markdown(rep)
    written = report.write_results(rep, name, args.results_dir, markdown=md)
    print(render_text(rep))
    print(f"{rep['config']['total_s']:.0f} s; wrote " + ", ".join(str(p) for p in written.values()))
    failed = any((b.get("failed") or 0) for k in rep["kinds"].values() for b in k["batches"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
