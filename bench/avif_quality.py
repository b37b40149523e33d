"""AVIF against the engine's WebP on the same frames: bytes, encode seconds and PSNR per setting.

    python -m bench.avif_quality                                  # the default grid, ~10 min on 2 cores
    python -m bench.avif_quality --qualities 60,70 --speeds 8 --subsamplings 4:4:4 --extra ''  # a smaller grid
    python -m bench.avif_quality --name avif-vs-webp              # bench/results/avif-vs-webp.{md,json}

For each clip the frames are made once by the engine's own pipeline (its parser, probe,
timeline, PyAV decoder, fit and render stage: exactly what a job hands its encoder), then encoded
by the engine's WebP writer (the ``webp`` table entry at the setting the frames choose: quality 45 at
libwebp's method 1, or 60 at method 2 on footage mixing flat and busy areas; quality 75 at method 2
before 2026-12-05, when the committed results were made) and by
:func:`engine.encode.avif.encode_avif` at every quality x speed x chroma subsampling of the grid
(plus ``--extra`` settings). Each output is decoded by Pillow and scored two ways:

* **PSNR vs source**: :func:`bench.psnr.score` against the source frame on screen at each output
  instant, Lanczos-resized (the yardstick of ``make bench``); it includes the engine's resize, the
  same for both formats, so it is the quality a viewer gets;
* **PSNR vs input**: the same scoring against the RGB frames the encoder was given, so only the
  codec's loss counts.

Encode seconds are the best of ``--repeat`` runs (the machine is shared: noise only adds), one
encoder thread (as in a batch, where each job gets one core). Then the setting is chosen: among
settings whose PSNR (vs source and vs input, pooled over each clip's frames) is at least WebP's on
*every* clip and whose encode time, summed over the clips, is at most ``--max-time-ratio`` times
WebP's, the one with the fewest bytes in all. Last, one batch (``run_batch``, one worker) makes
each clip as a ``webp`` and an ``avif`` job, so the table entry itself is checked end to end.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bench import harness, psnr  # noqa: E402

CLIPS = (
    # id, input (in the corpus), seek, duration, fps, width: 320-640 wide, 2-3 s, 10-15 fps
    ("bbb", "bbb_720p_30s.webm", 5.0, 3.0, 15, 640),      # animation, 1280x720 VP8 (the bench job)
    ("chaplin", "chaplin_360p.mp4", 2.0, 3.0, 12, 480),   # black-and-white film, grain
    ("nasa", "nasa_13013.mp4", 4.0, 3.0, 10, 480),        # camera footage, 480x270 H.264 stream
    ("example", "example_480p_2s.mp4", 0.0, 2.0, 15, 320),  # short real clip, 640x480 H.264
)
QUALITIES = (50, 55, 60, 65, 70, 75, 80, 85, 90, 92, 94)
SPEEDS = (8, 10)
"""libavif's speeds 7-10 run libaom in its real-time mode (9 and 10 give the same bytes here; 7 was
slower than 8 for no fewer bytes in a first look)."""
SUBSAMPLINGS = ("4:2:0", "4:4:4")
"""WebP is always 4:2:0; AVIF may keep full-resolution colour (the AV1 High profile, avifenc's
default for 8-bit input)."""
EXTRA = ((50, 6, "4:2:0"), (40, 6, "4:4:4"), (50, 6, "4:4:4"))
"""Speed 6 and below are libaom's good-quality mode: far fewer bytes, many times the encode time."""
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"


def render_frames(input_path: Path, seek: float, duration: float, fps: float, width: int):
    """(RGB frames [N, H, W, 3], delays in ms) exactly as a ``webp``/``avif`` job hands them to its
    encoder: the engine's spec, probe, timeline, decoder, fit and render stage."""
    from animated_previews.engine.decode.pyav import PyAVDecoder
    from animated_previews.engine.encode import get_format
    from animated_previews.engine.probe import probe
    from animated_previews.engine.render import Fitter, render
    from animated_previews.engine.spec import parse_job
    from animated_previews.engine.timeline import plan_timeline

    spec = parse_job({"id": "c", "input": str(input_path), "format": "webp", "fps": fps, "seek": seek,
                      "duration": duration, "width": width}, default_id="c", input_root=input_path.parent)
    media = probe(spec.input)
    timeline = plan_timeline(spec, media)
    clip = PyAVDecoder().decode_frames(media, timeline.instants, fit=Fitter(spec, media))
    frames = render(get_format("webp"), clip)
    return np.ascontiguousarray(frames.rgb), list(timeline.delays)


def loops_forever(data: bytes) -> bool | None:
    """AVIF: the edit list's repeat flag (libavif writes it for an infinite repetition count)."""
    at = data.find(b"elst")
    if at < 0:
        return None
    return bool(int.from_bytes(data[at + 5:at + 8], "big") & 1)


def timed(encode, repeat: int) -> tuple[bytes, list[tuple[float, float]]]:
    """The encoder's bytes and (wall seconds, CPU seconds of this process) of each of ``repeat`` runs.
    Both encoders run on one thread, so CPU seconds are their cost even when other work shares the
    cores (wall seconds then include waiting for a core)."""
    runs, data = [], b""
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        data = encode()
        runs.append((time.perf_counter() - t, time.process_time() - c))
    return data, runs


def measure(clip_id: str, data: bytes, suffix: str, runs: list[tuple[float, float]], source: psnr.SourceFrames,
            given: psnr.SourceFrames, fps: float, duration: float, tmp: Path) -> dict:
    path = tmp / f"{clip_id}.{suffix}"
    path.write_bytes(data)
    vs_source = psnr.score(path, source, fps, duration)
    vs_input = psnr.score(path, given, fps, duration)
    flags = [f for f in vs_source["flags"] if not f.startswith("loop=")]  # Pillow reads no AVIF loop
    loop = vs_source["loop"] == 0 if suffix == "webp" else loops_forever(data)
    if not loop:
        flags.append("does not loop forever")
    return {
        "bytes": len(data),
        "encode_s": min(cpu for _, cpu in runs),
        "encode_wall_s": min(wall for wall, _ in runs),
        "encode_runs_wall_cpu_s": [[round(wall, 4), round(cpu, 4)] for wall, cpu in runs],
        "psnr_source_pooled_db": round(vs_source["psnr_pooled_db"], 3),
        "psnr_source_mean_db": round(vs_source["psnr_mean_db"], 3),
        "psnr_source_min_db": round(vs_source["psnr_min_db"], 3),
        "psnr_input_pooled_db": round(vs_input["psnr_pooled_db"], 3),
        "psnr_input_mean_db": round(vs_input["psnr_mean_db"], 3),
        "psnr_input_min_db": round(vs_input["psnr_min_db"], 3),
        "frames_stored": vs_source["frames_stored"],
        "duration_ms": vs_source["total_duration_ms"],
        "loops_forever": loop,
        "flags": flags,
    }


def choose(rows: dict, webp: dict, clips: list[str], max_time_ratio: float) -> tuple[str | None, dict]:
    """The qualifying setting with the fewest bytes (see the module's docstring), and why each is in or out."""
    webp_time = sum(webp[c]["encode_s"] for c in clips)
    verdicts, best = {}, None
    for key, per_clip in rows.items():
        worse = [c for c in clips if per_clip[c]["psnr_source_pooled_db"] < webp[c]["psnr_source_pooled_db"]
                 or per_clip[c]["psnr_input_pooled_db"] < webp[c]["psnr_input_pooled_db"]]
        ratio = sum(per_clip[c]["encode_s"] for c in clips) / webp_time
        total = sum(per_clip[c]["bytes"] for c in clips)
        flags = sorted({f for c in clips for f in per_clip[c]["flags"]})
        ok = not worse and ratio <= max_time_ratio and not flags
        why = ("qualifies" if ok else "; ".join(filter(None, [
            f"PSNR below WebP on {', '.join(worse)}" if worse else "",
            f"encode {ratio:.2f}x WebP's > {max_time_ratio:g}x" if ratio > max_time_ratio else "",
            ", ".join(flags)])))
        verdicts[key] = why
        if ok and (best is None or total < best[1]):
            best = (key, total)
    return (best[0] if best else None), verdicts


def engine_default() -> tuple[int, int, str]:
    from animated_previews.engine.encode import avif

    return avif.DEFAULT_QUALITY, avif.DEFAULT_SPEED, avif.DEFAULT_SUBSAMPLING


def label(quality: int, speed: int, subsampling: str) -> str:
    return f"q{quality} s{speed} {subsampling}"


def engine_jobs(corpus: Path, tmp: Path) -> list[dict]:
    """Each clip once as a ``webp`` and once as an ``avif`` job through ``run_batch`` (one worker)."""
    from animated_previews.engine import load_manifest, run_batch

    lines = [{"id": f"{cid}-{fmt}", "input": str(corpus / name), "format": fmt, "fps": fps, "seek": seek,
              "duration": duration, "width": width}
             for cid, name, seek, duration, fps, width in CLIPS for fmt in ("webp", "avif")]
    manifest = tmp / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = []
    for result in run_batch(load_manifest(manifest), tmp / "jobs", workers=1):
        row = result.to_dict() if hasattr(result, "to_dict") else dict(vars(result))
        out.append({k: row.get(k) for k in ("id", "status", "error_message", "format", "width", "height", "frames",
                                             "duration", "bytes", "timings")})
    return sorted(out, key=lambda r: r["id"])


def _kb(n: float) -> str:
    return f"{n / 1000:.1f} KB"


def markdown(report: dict) -> str:
    clips, webp, rows = report["clip_ids"], report["webp"], report["avif"]
    m = report["machine"]
    webp_bytes = sum(webp[c]["bytes"] for c in clips)
    webp_time = sum(webp[c]["encode_s"] for c in clips)
    lines = [
        f"# AVIF against the engine's WebP (`{report['name']}`)",
        "",
        f"{m['date']} on {m.get('cpu_model', '?')} ({m.get('cpus_usable')} usable CPUs), load at start "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])}; Pillow {report['pillow']}, libavif {report['libavif']} "
        f"({report['avif_codecs']}), libwebp {report['libwebp']}.",
        "",
        f"Command: `{report['command'].strip()}`",
        "",
        "Frames: each clip's frames as the engine renders them for its encoder (spec, probe, timeline, PyAV decode, "
        "fit, render). WebP: the engine's writer at the setting its frames choose (the JSON's `webp_setting`: "
        "quality and libwebp method). AVIF: `encode_avif` (Pillow `save_all`, "
        f"libavif/libaom, one thread) at the row's quality, speed and chroma subsampling. Encode s: CPU seconds of the encoder (one thread: its cost however busy the "
        f"machine), best of {report['repeat']} runs; the JSON has wall seconds too. PSNR: pooled over each clip's "
        "frames, *vs source* against the source frame on screen at each instant (Lanczos-resized, bench/psnr.py), "
        "*vs input* against the frames the encoder was given (the codec's loss alone).",
        "",
        "| clip | input | seek | duration | fps | size | frames |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in report["clips"]:
        lines.append(f"| {c['id']} | {c['input']} | {c['seek']:g} s | {c['duration']:g} s | {c['fps']:g} | "
                     f"{c['width']}x{c['height']} | {c['frames']} |")
    lines += [
        "",
        "## Every setting, the four clips together",
        "",
        f"WebP (engine): {_kb(webp_bytes)}, encode {webp_time:.2f} CPU s. Ratios are AVIF / WebP; ΔPSNR is AVIF minus "
        "WebP on the clip where AVIF does worst.",
        "",
        "| quality | speed | chroma | bytes | bytes ÷ WebP | encode CPU s | encode ÷ WebP | worst ΔPSNR vs source dB | "
        "worst ΔPSNR vs input dB | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, per_clip in rows.items():
        q, s, sub = report["settings"][key]
        total = sum(per_clip[c]["bytes"] for c in clips)
        t = sum(per_clip[c]["encode_s"] for c in clips)
        d_src = min(per_clip[c]["psnr_source_pooled_db"] - webp[c]["psnr_source_pooled_db"] for c in clips)
        d_in = min(per_clip[c]["psnr_input_pooled_db"] - webp[c]["psnr_input_pooled_db"] for c in clips)
        mark = "**" if key == report["chosen"] else ""
        lines.append(f"| {mark}{q}{mark} | {mark}{s}{mark} | {mark}{sub}{mark} | {_kb(total)} | {total / webp_bytes:.3f} | {t:.2f} | "
                     f"{t / webp_time:.2f} | {d_src:+.2f} | {d_in:+.2f} | {report['verdicts'][key]} |")
    chosen, slow = report["chosen"], report.get("smallest_any_time")
    lines += ["", "## Per clip: WebP and the chosen setting", ""]
    if chosen is None:
        lines.append("No setting qualified.")
    else:
        q, s, sub = report["settings"][chosen]
        default = report.get("engine_default")
        chosen_bytes = sum(rows[chosen][c]["bytes"] for c in clips)
        chosen_time = sum(rows[chosen][c]["encode_s"] for c in clips)
        lines += [
            f"Chosen: quality {q}, speed {s}, {sub} (rule: PSNR vs source and vs input at least WebP's on every clip, "
            f"encode time at most {report['max_time_ratio']:g}x WebP's over the four clips, then the fewest bytes): "
            f"{chosen_bytes / webp_bytes:.3f}x WebP's bytes for {chosen_time / webp_time:.2f}x its encode time. "
            f"The engine's `avif` entry encodes at quality {default[0]}, speed {default[1]}, {default[2]}"
            f"{'' if list(default) == [q, s, sub] else ' (NOT the chosen setting: update engine/encode/avif.py)'}.",
        ]
        shown = [("WebP", webp), (f"AVIF {chosen}", rows[chosen])]
        if slow is not None and slow != chosen:
            slow_bytes = sum(rows[slow][c]["bytes"] for c in clips)
            slow_time = sum(rows[slow][c]["encode_s"] for c in clips)
            lines += ["", f"Fewest bytes at equal PSNR whatever the time: {slow}: "
                          f"{slow_bytes / webp_bytes:.3f}x WebP's bytes for {slow_time / webp_time:.1f}x its encode time."]
            shown.append((f"AVIF {slow}", rows[slow]))
        lines += [
            "",
            "| clip | format | bytes | encode CPU s | PSNR vs source dB (mean, min) | PSNR vs input dB (mean, min) | "
            "frames | duration ms | loops |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in clips:
            for label, table in shown:
                r = table[c]
                lines.append(
                    f"| {c} | {label} | {_kb(r['bytes'])} | {r['encode_s']:.3f} | {r['psnr_source_pooled_db']:.2f} "
                    f"({r['psnr_source_mean_db']:.2f}, {r['psnr_source_min_db']:.2f}) | {r['psnr_input_pooled_db']:.2f} "
                    f"({r['psnr_input_mean_db']:.2f}, {r['psnr_input_min_db']:.2f}) | {r['frames_stored']} | "
                    f"{r['duration_ms']:.0f} | {'forever' if r['loops_forever'] else 'no'} |")
    if report.get("engine_jobs"):
        lines += ["", "## The table entries themselves: one batch, `run_batch`, one worker", "",
                  "| job | status | size | frames | duration s | bytes | encode s | total s |", "|---|---|---|---|---|---|---|---|"]
        for r in report["engine_jobs"]:
            timings = r.get("timings") or {}
            lines.append(f"| {r['id']} | {r['status']} | {r['width']}x{r['height']} | {r['frames']} | {r['duration']} | "
                         f"{_kb(r['bytes'] or 0)} | {timings.get('encode', float('nan')):.3f} | "
                         f"{timings.get('total', float('nan')):.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--qualities", default=",".join(map(str, QUALITIES)))
    parser.add_argument("--speeds", default=",".join(map(str, SPEEDS)))
    parser.add_argument("--subsamplings", default=",".join(SUBSAMPLINGS))
    parser.add_argument("--extra", default=",".join(f"{q}/{s}/{c}" for q, s, c in EXTRA),
                        help="more quality/speed/subsampling settings beyond the grid ('' for none)")
    parser.add_argument("--repeat", type=int, default=2, help="encodes per setting and clip; the best counts")
    parser.add_argument("--max-time-ratio", type=float, default=2.0,
                        help="a setting may take at most this many times WebP's encode time (all clips)")
    parser.add_argument("--no-jobs", action="store_true", help="skip the end-to-end batch of webp/avif jobs")
    parser.add_argument("--name", default="avif-vs-webp")
    parser.add_argument("--results-dir", type=Path, default=harness.RESULTS_DIR)
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: write NAME.md again from NAME.json (after a change to the tables)")
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads((args.results_dir / f"{args.name}.json").read_text())
        (args.results_dir / f"{args.name}.md").write_text(markdown(report))
        return 0 if report["chosen"] is not None else 1

    from PIL import _avif, features

    from animated_previews.engine.encode import RGBFrames, get_format
    from animated_previews.engine.encode.avif import encode_avif

    settings = [(int(q), int(s), c) for c in args.subsamplings.split(",") for s in args.speeds.split(",")
                for q in args.qualities.split(",")]
    settings += [(int(q), int(s), c) for q, s, c in (x.split("/") for x in args.extra.split(",") if x)]
    corpus = args.corpus.resolve()
    report: dict = {
        "name": args.name,
        "command": "python -m bench.avif_quality " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": harness.machine_info(1),
        "pillow": features.version("pil"), "libavif": features.version("avif"), "libwebp": features.version("webp"),
        "avif_codecs": _avif.codec_versions(),
        "repeat": args.repeat, "max_time_ratio": args.max_time_ratio,
        "clips": [], "clip_ids": [], "webp": {}, "avif": {}, "settings": {},
    }
    webp_format = get_format("webp")
    with tempfile.TemporaryDirectory(prefix="avif-quality-") as tmp_name:
        tmp = Path(tmp_name)
        for cid, name, seek, duration, fps, width in CLIPS:
            source_path = corpus / name
            rgb, delays = render_frames(source_path, seek, duration, fps, width)
            source = psnr.decode_on_screen(source_path, psnr.instants(seek, duration, fps))
            given = psnr.SourceFrames(list(rgb), [0.0] * len(rgb))
            report["clips"].append({"id": cid, "input": name, "seek": seek, "duration": duration, "fps": fps,
                                    "width": int(rgb.shape[2]), "height": int(rgb.shape[1]), "frames": len(rgb)})
            report["clip_ids"].append(cid)
            setting = webp_format.setting_for(RGBFrames(rgb))
            report["clips"][-1]["webp_setting"] = [setting.quality, setting.effort]
            data, runs = timed(lambda: webp_format.encode(RGBFrames(rgb), delays, **setting.options()), args.repeat)
            report["webp"][cid] = measure(cid, data, "webp", runs, source, given, fps, duration, tmp)
            print(f"{cid}: {rgb.shape[2]}x{rgb.shape[1]} x{len(rgb)}  webp {len(data)} B {report['webp'][cid]['encode_s']:.3f} s "
                  f"{report['webp'][cid]['psnr_source_pooled_db']:.2f} dB", flush=True)
            for q, s, sub in settings:
                key = label(q, s, sub)
                report["settings"][key] = (q, s, sub)
                data, runs = timed(lambda: encode_avif(rgb, delays, quality=q, speed=s, subsampling=sub), args.repeat)
                row = measure(cid, data, "avif", runs, source, given, fps, duration, tmp)
                report["avif"].setdefault(key, {})[cid] = row
                print(f"  avif {key}: {len(data)} B {row['encode_s']:.3f} s {row['psnr_source_pooled_db']:.2f} dB "
                      f"(input {row['psnr_input_pooled_db']:.2f})", flush=True)
        report["chosen"], report["verdicts"] = choose(report["avif"], report["webp"], report["clip_ids"],
                                                      args.max_time_ratio)
        report["smallest_any_time"], _ = choose(report["avif"], report["webp"], report["clip_ids"], math.inf)
        report["engine_default"] = list(engine_default())
        if not args.no_jobs:
            report["engine_jobs"] = engine_jobs(corpus, tmp)
    report["settings"] = {k: list(v) for k, v in report["settings"].items()}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (args.results_dir / f"{args.name}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (args.results_dir / f"{args.name}.md").write_text(text)
    print(text)
    return 0 if report["chosen"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
