"""``seek: "auto"`` measured on staged clips whose lively spans are known (issue 15, item 3).

Each clip is a sequence of sections made by ffmpeg's lavfi sources: ``black``, ``fade`` (a
picture fading in from black), ``lively`` (testsrc2's moving patterns, or the mandelbrot zoom),
``still`` (colour bars, unchanging) and ``credits`` (white text scrolling up over black). For each
clip and span, :func:`engine.autostart.choose_start` picks a start; the table says whether the
span it chose lies inside a lively section, the note, and the pass's cost (median of 3).

    python -m bench.autostart [--out DIR] [--spans 3,6]

Clips go to ``bench/library/autostart/`` (git-ignored with the library); results to
``bench/results/autostart.{md,json}``. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from bench.make_library import _font

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "library" / "autostart"
RESULTS = REPO / "bench" / "results"
SIZE, RATE = "640x360", 25

CLIPS: dict[str, list[tuple[str, float]]] = {
    "black_fade_lively_credits": [("black", 10), ("fade", 3), ("lively", 30), ("credits", 17)],
    "lively_then_long_still": [("lively", 8), ("still", 40)],
    "dark_with_short_burst": [("black", 20), ("lively", 5), ("black", 25)],
    "credits_last_minute_5min": [("fade", 4), ("lively", 236), ("credits", 60)],
    "still_fade_lively_fade_out": [("still", 15), ("fade", 3), ("lively", 12), ("black", 10)],
}
"""Clip name -> its sections (kind, seconds), in order."""


def _section(kind: str, seconds: float) -> str:
    base = f"s={SIZE}:r={RATE}:d={seconds}"
    if kind == "black":
        return f"color=c=black:{base}"
    if kind == "fade":
        return f"testsrc2={base},fade=in:st=0:d={seconds}"
    if kind == "lively":
        return f"testsrc2={base}"
    if kind == "still":
        return f"smptebars={base}"
    if kind == "credits":
        font = _font()
        text = "Directed by A. Person\\nProduced by Another Person\\nMusic by Somebody Else"
        return (f"color=c=black:{base},drawtext=fontfile='{font}':text='{text}':fontsize=26:fontcolor=white:"
                f"line_spacing=40:x=(w-tw)/2:y=h-t*40")
    raise ValueError(kind)


def make_clip(path: Path, sections: list[tuple[str, float]]) -> Path:
    """The sections joined into one H.264 file (key frame every 10 s, as long-GOP footage has)."""
    if path.exists() and path.stat().st_size > 0:
        return path
    args = ["ffmpeg", "-v", "error", "-y"]
    for kind, seconds in sections:
        args += ["-f", "lavfi", "-i", _section(kind, seconds)]
    joined = "".join(f"[{i}:v]" for i in range(len(sections))) + f"concat=n={len(sections)}:v=1:a=0[v]"
    args += ["-filter_complex", joined, "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast",
             "-g", str(10 * RATE), "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(args, check=True)
    return path


def lively_spans(sections: list[tuple[str, float]]) -> list[tuple[float, float]]:
    spans, t = [], 0.0
    for kind, seconds in sections:
        if kind == "lively":
            spans.append((t, t + seconds))
        t += seconds
    return spans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--spans", default="3,6")
    args = parser.parse_args(argv)
    from animated_previews.engine.autostart import choose_start
    from animated_previews.engine.probe import probe

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, sections in CLIPS.items():
        media = probe(make_clip(args.out / f"{name}.mp4", sections))
        spans = lively_spans(sections)
        for span in (float(s) for s in args.spans.split(",")):
            costs, chosen = [], None
            for _ in range(3):
                started = time.perf_counter()
                chosen = choose_start(media, span)
                costs.append(time.perf_counter() - started)
            inside = any(a - 0.05 <= chosen.seek and chosen.seek + span <= b + 0.05 for a, b in spans)
            shown = sum(max(0.0, min(chosen.seek + span, b) - max(chosen.seek, a)) for a, b in spans)
            best = max(min(span, b - a) for a, b in spans)  # sections are apart: one span meets one of them
            rows.append({"clip": name, "length_s": sum(s for _, s in sections), "span_s": span,
                         "chosen_s": round(chosen.seek, 2), "inside_lively": inside,
                         "lively_shown_s": round(shown, 2), "lively_best_s": round(best, 2),
                         "lively": [[a, b] for a, b in spans], "cost_ms": round(statistics.median(costs) * 1000),
                         "note": chosen.note})
            print(f"{name:28s} span {span:g} s -> {chosen.seek:7.2f} s  {'ok ' if inside else 'OUT'} "
                  f"{rows[-1]['cost_ms']:5d} ms  {chosen.note}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "autostart.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = [f"# seek \"auto\" on staged clips ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"`python -m bench.autostart --spans {args.spans}`: H.264 {SIZE} {RATE} fps, a key frame every 10 s; "
             "cost = choose_start's median of 3 on this machine.", "",
             "| clip | length s | lively spans s | span s | chosen s | inside a lively span | lively s shown (best) "
             "| cost ms | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lively = ", ".join(f"{a:g}-{b:g}" for a, b in r["lively"])
        lines.append(f"| {r['clip']} | {r['length_s']:g} | {lively} | {r['span_s']:g} | {r['chosen_s']} | "
                     f"{'yes' if r['inside_lively'] else 'NO'} | {r['lively_shown_s']:g} ({r['lively_best_s']:g}) | "
                     f"{r['cost_ms']} | {r['note']} |")
    hits = sum(r["inside_lively"] for r in rows)
    most = sum(r["lively_shown_s"] >= r["lively_best_s"] - 0.5 for r in rows)
    lines += ["", f"{hits} of {len(rows)} choices inside a lively span; {most} of {len(rows)} show the most lively "
                  "time a span of that length can (within 0.5 s)."]
    (RESULTS / "autostart.md").write_text("\n".join(lines) + "\n")
    print(lines[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
