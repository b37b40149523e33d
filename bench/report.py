"""Reports of the harness's measurements: the tables people read and the result files.

* :func:`render_markdown`: ``make bench``'s report (engine vs ffmpeg per job: timing, bytes,
  PSNR, ratios, engine stages), as printed and as ``NAME.md``;
* :func:`render_table`: ``engine bench``'s terminal table (one row per path);
* :func:`write_results`: ``NAME.json`` (every raw number), with ``NAME.md`` and/or ``NAME.png``
  (bench/plots.py, when matplotlib is installed) beside it; :func:`keep_outputs` copies images.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shutil
from pathlib import Path

from bench import plots
from bench.harness import RESULTS_DIR, STAGES


def default_name(prefix: str = "") -> str:
    return prefix + _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _f(x, fmt="{:.2f}", none="–"):
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def _bytes(x):
    if x is None:
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f} MB"
    return f"{x / 1e3:.0f} KB"


# --------------------------------------------------------------------------------------------
# make bench: engine vs ffmpeg


def render_markdown(report: dict) -> str:
    m = report["machine"]
    cfg = report["config"]
    lines = [
        f"# Benchmark `{cfg['name']}`",
        "",
        f"{m['date']} on {m.get('cpu_model', '?')} ({m['cpus_usable']} usable CPUs), load at start "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])}; {m['ffmpeg_version']}; torch {m['versions']['torch']}, "
        f"av {m['versions']['av']}, pillow {m['versions']['PIL']}.",
        f"Jobs `{cfg['jobs']}`, {cfg['repeat']} clips per job per batch, {cfg['workers']} workers on both sides "
        f"(ffmpeg: {cfg['workers']} processes, one thread each), {cfg['runs']} timed runs per side, alternated; "
        f"times are the best run [median run]. PSNR: mean over displayed frames vs the common reference "
        f"(sampled at the {cfg['sample']} of each output frame's slot; seek counted from the "
        f"{cfg['time_origin']}'s start).",
        "",
        "| job | side | s/clip (batch wall ÷ clips) | clip latency (median) | clips/s | CPU s/clip | bytes "
        "| PSNR dB mean (min) | frames | duration ms | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for j in report["jobs"]:
        for side in report["sides_order"]:
            s = j["sides"].get(side)
            if s is None:
                continue
            t = s.get("timing")
            q = s.get("quality") or {}
            flags = list(q.get("flags", []))
            if t and t["failed_clips"]:
                flags.insert(0, f"{t['failed_clips']} clips FAILED: {s.get('first_error')}")
            if t and t["failed_clips"] == t["runs"] * t["clips_per_batch"]:
                timing_cells = ("all failed", "–", "–", "–")
            elif not t:
                timing_cells = ("untimed (1 clip: " + _f(s.get("single_latency_s")) + " s)", "–", "–", "–")
            else:
                timing_cells = (
                    f"{_f(t['s_per_clip_best'])} [{_f(t['s_per_clip_median'])}]",
                    f"{_f(t['latency_median_s'])}",
                    f"{_f(t['clips_per_s_best'], '{:.3f}')}",
                    f"{_f(t['cpu_s_per_clip_median'])}",
                )
            psnr_cell = (f"{_f(q.get('psnr_mean_db'))} ({_f(q.get('psnr_min_db'))})" if q.get("scored") else "–")
            dur = q.get("total_duration_ms")
            lines.append(
                f"| {j['id']} | {side} | " + " | ".join(timing_cells) + f" | {_bytes(q.get('bytes_mean'))} | "
                f"{psnr_cell} | {q.get('frames_stored', '–')}/{j['frames_expected']} | "
                f"{_f(dur, '{:.0f}')}/{j['duration_ms']:.0f} | {'; '.join(flags) or 'ok'} |")
    ratios = [(j["id"], j.get("ratios") or {}) for j in report["jobs"]]
    if any(r for _, r in ratios):
        lines += [
            "",
            "Engine ÷ ffmpeg (throughput > 1: engine faster; bytes < 1: engine smaller; PSNR > 0: engine closer "
            "to the source). *same frames*: against ffmpeg made to take exactly the frames on screen.",
            "",
            "| job | throughput (clips/s) | CPU s/clip | bytes | PSNR dB | bytes (same frames) | PSNR dB (same frames) |",
            "|---|---|---|---|---|---|---|",
        ]
        for jid, r in ratios:
            if not r:
                continue
            lines.append(
                f"| {jid} | {_f(r.get('throughput'), '{:.2f}×')} | {_f(r.get('cpu'), '{:.2f}×')} | "
                f"{_f(r.get('bytes'), '{:.2f}×')} | {_f(r.get('psnr_diff_db'), '{:+.2f}')} | "
                f"{_f(r.get('bytes_vs_exact'), '{:.2f}×')} | {_f(r.get('psnr_diff_vs_exact_db'), '{:+.2f}')} |")
    stages = [(j["id"], j["sides"]["engine"].get("stage_median_s")) for j in report["jobs"]
              if "engine" in j["sides"] and any(v is not None for v in
                                                (j["sides"]["engine"].get("stage_median_s") or {}).values())]
    if stages:
        lines += ["", "Engine stage times per clip (median, seconds, as the engine reports them):", "",
                  "| job | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
        for jid, st in stages:
            lines.append(f"| {jid} | " + " | ".join(_f(st.get(n), "{:.3f}") for n in STAGES) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# engine bench: one row per path


def render_table(report: dict) -> str:
    cfg, m = report["config"], report["machine"]
    head = ["path", "status", "clips/s", "out fr/s", "src/out fr", *STAGES, "peak RSS MiB", "peak GPU MiB", "bytes",
            "PSNR dB"]
    rows = []
    for p, s in report["paths"].items():
        if "clips_per_s" not in s:
            rows.append([p, s["status"]] + ["–"] * (len(head) - 2))
            continue
        st = s["stage_mean_s"]
        q = s.get("quality") or {}
        mem = s["memory"]
        rows.append([p, s["status"], _f(s["clips_per_s"]), _f(s["output_frames_per_s"], "{:.1f}"),
                     _f(s["source_frames_per_output_frame"]),
                     *[_f(st.get(k), "{:.3f}") for k in STAGES],
                     f"{_f(mem.get('peak_worker_rss_mib'), '{:.0f}')} / {_f(mem.get('peak_total_rss_mib'), '{:.0f}')}",
                     _f(mem.get("peak_gpu_mib"), "{:.0f}") if p == "cuda" else "n/a",
                     _f(s["bytes_mean"], "{:,.0f}"),
                     _f(q.get("psnr_mean_db")) + (f" ({q['psnr_min_db']:.1f})" if q.get("scored") else "")])
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    lines = [
        f"engine bench: {cfg['jobs']} jobs from {cfg['manifest']}, {cfg['workers']} workers, "
        f"best of {cfg['repeat']} runs after a {cfg['warmup_jobs']}-job warm-up; "
        f"{m.get('cpu_model', '?')} ({m.get('cpus_usable')} CPUs)",
        fmt(head), fmt(["-" * w for w in widths]), *[fmt(r) for r in rows],
        "stages: mean seconds per clip as the engine times them (ffmpeg: total = process wall). "
        "peak RSS: largest worker process / whole process tree. src/out fr: source frames decoded per output frame. "
        "PSNR: mean (min) vs the common reference.",
    ]
    if cfg.get("invalid_lines"):
        lines.append(f"{len(cfg['invalid_lines'])} manifest lines rejected: {cfg['invalid_lines'][0]}")
    lines += render_engine_options(report)
    return "\n".join(lines)


def render_engine_options(report: dict) -> list[str]:
    """Lines for the jobs that asked for what only the engine does (``max_bytes``, ``seek:
    "auto"``, ``fit``): per engine path, the bytes against the budget, the start chosen, what each
    cost (the ``budget`` and ``autostart`` stages) and the engine's note saying what it gave up or
    why it started there. Empty when no job asked."""
    asked = report["config"].get("engine_options") or {}
    if not asked:
        return []
    head = ["job", "path", "asked", "bytes", "PSNR dB", "start s", "autostart s", "budget s", "note"]
    rows = []
    for p, s in report["paths"].items():
        psnr = {q["id"]: q.get("psnr_mean_db") for q in (s.get("quality") or {}).get("jobs") or []}
        for r in s.get("results") or []:
            options = asked.get(r.get("id"))
            if not options or p not in ("cpu", "cuda"):
                continue
            t = r.get("timings") or {}
            wanted = ", ".join(f"{k} {v}" for k, v in options.items())
            within = ""
            if options.get("max_bytes") and r.get("bytes") is not None:
                within = " (within)" if r["bytes"] <= int(options["max_bytes"]) else " (OVER)"
            said = [n for n in r.get("notes") or [] if n.startswith(("seek auto:", "max_bytes"))]
            rows.append([r.get("id"), p, wanted,
                         (_f(r.get("bytes"), "{:,.0f}") + within) if r.get("status") == "success" else
                         f"failed: {r.get('error_code')}",
                         _f(psnr.get(r.get("id"))), _f(r.get("start")), _f(t.get("autostart"), "{:.3f}"), _f(t.get("budget"), "{:.3f}"),
                         "; ".join(said) or (r.get("error_message") or "")])
    if not rows:
        return []
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head) - 1)]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + str(r[-1])  # noqa: E731
    return ["", "Engine-only options (last run): bytes vs max_bytes, the start seek auto chose, their stages' seconds",
            fmt(head), fmt(["-" * w for w in widths] + ["----"]), *[fmt(r) for r in rows]]


# --------------------------------------------------------------------------------------------
# files


def write_results(report: dict, name: str, results_dir: Path = RESULTS_DIR, *, markdown: str | None = None,
                  plot: bool = False) -> dict[str, Path]:
    """``results_dir/NAME.json``, plus ``NAME.md`` (``markdown``) and ``NAME.png`` (``plot``: an
    ``engine bench`` report's plot, when matplotlib is installed); the files written, by kind."""
    results_dir.mkdir(parents=True, exist_ok=True)
    out = {"json": results_dir / f"{name}.json"}
    out["json"].write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    if markdown is not None:
        out["md"] = results_dir / f"{name}.md"
        out["md"].write_text(markdown, encoding="utf-8")
    if plot and plots.plot_bench(report, results_dir / f"{name}.png"):
        out["png"] = results_dir / f"{name}.png"
    return out


def keep_outputs(results: list[dict], dest: Path, stem: str | None = None) -> None:
    """Copy the images of ``results`` into ``dest`` (under their own names, or as ``stem`` + suffix)."""
    dest.mkdir(parents=True, exist_ok=True)
    for r in results:
        if r.get("output") and Path(r["output"]).exists():
            src = Path(r["output"])
            shutil.copy2(src, dest / (f"{stem}{src.suffix}" if stem else src.name))
