"""Seeks into MPEG-TS: the CPU decoder with and without its key-frame search, beside the MP4 copy.

MPEG-TS has no index: FFmpeg's seek lands on any packet and H.264 drops the frames up to the
next key frame, so a decoder that seeks to the first instant gets a late frame and must try from
earlier (the decoder's steps back: 1, 5, 30 s). With the key-frame search
(:mod:`engine.decode.key_frames`) it demuxes back to the key frame before the span and decodes
from there, as it does in the MP4 copy of the same stream. For each clip (testsrc2 720p H.264,
60 s, key frames every 10 s, 2 s and 0.5 s) and seek, 2 s at 10 fps are decoded three ways:
TS with the search, TS with only the steps back (``PyAVDecoder(key_frame_search=False)``), and
the MP4 copy; the table gives each one's seconds (best of 3, one thread), frames decoded in the
attempt that succeeded, and whether the three showed the very same frames.

    python -m bench.ts_seek [--out DIR]

Clips go to ``bench/library/ts_seek/`` (git-ignored with the library); results to
``bench/results/ts-seek.{md,json}``. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import time
from pathlib import Path

from bench import report

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "library" / "ts_seek"
RESULTS = REPO / "bench" / "results"
GOPS = (250, 50, 12)
"""Frames between key frames at 25 fps: x264's default (10 s), 2 s, about half a second."""
SEEKS = (0.0, 13.3, 35.0, 57.0)


def make_clips(out: Path, gop: int) -> tuple[Path, Path]:
    """60 s of testsrc2 at 1280x720, 25 fps, H.264 with key frames every ``gop`` frames, in
    MPEG-TS, and its stream copy to MP4."""
    ts, mp4 = out / f"gop{gop}.ts", out / f"gop{gop}.mp4"
    if not ts.exists() or not mp4.exists():
        ffmpeg = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
        subprocess.run([*ffmpeg, "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=60", "-c:v", "libx264",
                        "-preset", "veryfast", "-g", str(gop), "-bf", "3", "-pix_fmt", "yuv420p", str(ts)], check=True)
        subprocess.run([*ffmpeg, "-i", str(ts), "-c", "copy", str(mp4)], check=True)
    return ts, mp4


def _decode(path: Path, instants: list[float], search: bool) -> tuple[float, int, list[str]]:
    from animated_previews.engine.decode.pyav import PyAVDecoder
    from animated_previews.engine.probe import probe

    media = probe(path)
    best, clip = None, None
    for _ in range(3):
        started = time.perf_counter()
        clip = PyAVDecoder(threads=1, key_frame_search=search).decode_frames(media, instants)
        spent = time.perf_counter() - started
        best = spent if best is None else min(best, spent)
    shown = [hashlib.md5(clip.frames[i].numpy().tobytes()).hexdigest() for i in clip.index.tolist()]
    return best, clip.frames_decoded, shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for gop in GOPS:
        ts, mp4 = make_clips(args.out, gop)
        for seek in SEEKS:
            instants = [seek + k / 10 for k in range(20)]
            sides = {"ts": _decode(ts, instants, True), "ts_steps_back": _decode(ts, instants, False),
                     "mp4": _decode(mp4, instants, True)}
            same = len({tuple(side[2]) for side in sides.values()}) == 1
            rows.append({"gop_frames": gop, "seek_s": seek, "same_frames": same,
                         **{f"{name}_s": round(side[0], 3) for name, side in sides.items()},
                         **{f"{name}_frames": side[1] for name, side in sides.items()}})
            r = rows[-1]
            print(f"gop {gop:3d} seek {seek:5.1f}: TS {r['ts_s']:.3f} s ({r['ts_frames']}), steps back "
                  f"{r['ts_steps_back_s']:.3f} s ({r['ts_steps_back_frames']}), MP4 {r['mp4_s']:.3f} s "
                  f"({r['mp4_frames']}); same frames: {same}")
    lines = [f"# Seeks into MPEG-TS ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             "`python -m bench.ts_seek`: testsrc2 1280x720 H.264, 60 s at 25 fps, as MPEG-TS and its MP4 copy; "
             "2 s at 10 fps from each seek, decoded by the CPU decoder on one thread, best of 3. Frames: those "
             "decoded by the attempt that succeeded (a failed attempt's are not counted, its seconds are).", "",
             "| key frames every | seek s | TS s | TS frames | TS, steps back only: s | frames | MP4 copy s | "
             "frames | same frames shown |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['gop_frames'] / 25:g} s | {r['seek_s']:g} | {r['ts_s']:.3f} | {r['ts_frames']} | "
                     f"{r['ts_steps_back_s']:.3f} | {r['ts_steps_back_frames']} | {r['mp4_s']:.3f} | "
                     f"{r['mp4_frames']} | {'yes' if r['same_frames'] else 'NO'} |")
    ts_total = sum(r["ts_s"] for r in rows)
    back_total = sum(r["ts_steps_back_s"] for r in rows)
    mp4_total = sum(r["mp4_s"] for r in rows)
    lines += ["", f"In all: TS {ts_total:.2f} s with the key-frame search, {back_total:.2f} s with the steps back only, "
                  f"MP4 copy {mp4_total:.2f} s; {sum(r['same_frames'] for r in rows)} of {len(rows)} spans the same "
                  "frames all three ways."]
    report.write_results(rows, "ts-seek", RESULTS, markdown="\n".join(lines) + "\n")
    print(lines[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
