"""Build a synthetic-but-realistic video library for benchmarks: the same footage re-encoded.

From one source (real footage from ``../shared/corpus``, by default Big Buck Bunny, or a
generated ``testsrc2`` pattern) it makes variants that differ in one respect at a time:
resolution (360p .. 4K), codec (H.264, HEVC, VP9, AV1), length (short, or long by looping the
source, e.g. 10 minutes) and GOP length (a key frame every 1 .. 10 s, fixed: no scene-cut key
frames, so seeking costs what the GOP says).

    python -m bench.make_library                         # the "scaling" preset (what bench/scaling.py needs)
    python -m bench.make_library --preset full           # every codec x resolution, GOPs 1-10 s, a 10-minute file
    python -m bench.make_library --heights 360,720 --codecs h264,vp9 --durations 10 --gops 1,5

Files go to ``bench/library/`` (override with ``--out``), named
``<source>_<height>p_<codec>_<duration>s_gop<gop>s.<ext>``, with ``library.json`` listing every
variant and what ffprobe says about it. The folder gets a ``.gitignore`` of ``*``: the videos
are never committed. A variant already there (same name, non-empty) is kept, so re-running is
cheap. Needs ``ffmpeg`` with libx264, libx265, libvpx-vp9 and libsvtav1 (or libaom-av1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "library"
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
SOURCES = {"bbb": "bbb_720p_30s.webm", "chaplin": "chaplin_360p.mp4"}  # corpus footage by short name
CODECS = ("h264", "hevc", "vp9", "av1")
GENERATED_FPS = 25


@dataclass(frozen=True)
class Variant:
    source: str  # a SOURCES key, or "gen" (ffmpeg's testsrc2, moving patterns)
    height: int
    codec: str
    duration: float  # seconds; longer than the source: the source is looped
    gop: float  # seconds between key frames

    @property
    def ext(self) -> str:
        return "webm" if self.codec == "vp9" else "mp4"

    @property
    def name(self) -> str:
        return f"{self.source}_{self.height}p_{self.codec}_{self.duration:g}s_gop{self.gop:g}s"

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.ext}"


def preset(name: str, source: str = "bbb") -> list[Variant]:
    """Named sets of variants. "scaling": what bench/scaling.py reads; "full": the whole matrix;
    "tiny": seconds-long, small, for tests and smoke runs."""
    if name == "tiny":
        return [Variant("gen", 72, c, 2, 1) for c in CODECS]
    if name == "scaling":
        return ([Variant(source, h, "h264", 12, 2) for h in (360, 720, 1080, 2160)]
                + [Variant(source, 720, "h264", 600, 2), Variant("gen", 90, "h264", 2, 1)])
    if name == "full":
        out = [Variant(source, h, c, 10, 2) for c in CODECS for h in (360, 720, 1080, 2160)]
        out += [Variant(source, 720, "h264", 60, g) for g in (1, 2, 5, 10)]
        out += [Variant(source, 720, c, 600, 2) for c in ("h264", "vp9")]
        out += [Variant("gen", 720, "h264", 10, 2), Variant("gen", 90, "h264", 2, 1)]
        return out
    raise ValueError(f"unknown preset {name!r} (tiny, scaling, full)")


def _av1_encoder() -> str:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    for enc in ("libsvtav1", "libaom-av1"):
        if f" {enc} " in out:
            return enc
    raise RuntimeError("this ffmpeg has no AV1 encoder (libsvtav1 or libaom-av1)")


def _codec_args(codec: str, gop_frames: int) -> list[str]:
    g = str(gop_frames)
    if codec == "h264":
        return ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", g, "-keyint_min", g,
                "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
    if codec == "hevc":
        return ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "28", "-pix_fmt", "yuv420p", "-tag:v", "hvc1",
                "-x265-params", f"keyint={g}:min-keyint={g}:scenecut=0:log-level=error", "-movflags", "+faststart"]
    if codec == "vp9":
        return ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-b:v", "0",
                "-crf", "36", "-g", g, "-keyint_min", g, "-pix_fmt", "yuv420p"]
    if codec == "av1":
        enc = _av1_encoder()
        if enc == "libsvtav1":
            return ["-c:v", "libsvtav1", "-preset", "12", "-crf", "40", "-g", g, "-pix_fmt", "yuv420p",
                    "-svtav1-params", "scd=0", "-movflags", "+faststart"]
        return ["-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime", "-crf", "40", "-b:v", "0", "-g", g,
                "-keyint_min", g, "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
    raise ValueError(f"unknown codec {codec!r} ({', '.join(CODECS)})")


def source_path(v: Variant, corpus: Path) -> Path | None:
    return None if v.source == "gen" else corpus / SOURCES[v.source]


def _source_fps(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=avg_frame_rate",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout.strip()
    num, _, den = out.partition("/")
    return float(num) / float(den or 1)


def ffmpeg_command(v: Variant, out: Path, corpus: Path) -> list[str]:
    """The ffmpeg command that makes variant ``v`` at ``out``."""
    src = source_path(v, corpus)
    width = int(round(v.height * 16 / 9 / 2)) * 2
    if src is None:
        fps = GENERATED_FPS
        inputs = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{v.height}:rate={fps}"]
        vf = "null"
    else:
        if not src.exists():
            raise FileNotFoundError(f"{src} is absent (use --corpus DIR or --source gen)")
        fps = _source_fps(src)
        inputs = ["-stream_loop", "-1", "-i", str(src)]  # loops only when the variant is longer
        vf = f"scale=-2:{v.height}:flags=bicubic"
    gop_frames = max(1, round(v.gop * fps))
    return (["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + inputs
            + ["-t", f"{v.duration:g}", "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", vf]
            + _codec_args(v.codec, gop_frames) + [str(out)])


def probe(path: Path) -> dict:
    """What ffprobe says: codec, size, duration, frame rate."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,width,height,avg_frame_rate:format=duration,size", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    s = data["streams"][0]
    num, _, den = s["avg_frame_rate"].partition("/")
    return {"codec": s["codec_name"], "width": s["width"], "height": s["height"],
            "fps": round(float(num) / float(den or 1), 3), "duration": float(data["format"]["duration"]),
            "bytes": int(data["format"]["size"])}


def keyframe_times(path: Path, limit_s: float | None = None) -> list[float]:
    """Presentation times of the key frames (packets flagged K by the demuxer; no decoding)."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
           "-of", "csv=p=0"]
    if limit_s is not None:
        cmd += ["-read_intervals", f"%+{limit_s:g}"]
    out = subprocess.run(cmd + [str(path)], capture_output=True, text=True, check=True).stdout
    times = []
    for line in out.splitlines():
        cells = line.split(",")
        if len(cells) >= 2 and "K" in cells[1]:
            try:
                times.append(float(cells[0]))
            except ValueError:
                continue
    return sorted(times)


def build(variants: list[Variant], out_dir: Path = DEFAULT_OUT, corpus: Path = DEFAULT_CORPUS, *, force: bool = False,
          log=lambda m: None) -> dict:
    """Make every variant that is not there yet; write and return the index (library.json)."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not on PATH")
    out_dir.mkdir(parents=True, exist_ok=True)
    ignore = out_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# generated by bench/make_library.py: never committed\n*\n")
    index_path = out_dir / "library.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"variants": {}}
    for v in variants:
        path = out_dir / v.filename
        if path.exists() and path.stat().st_size > 0 and not force and v.name in index["variants"]:
            log(f"kept  {v.filename}")
            continue
        cmd = ffmpeg_command(v, path, corpus)
        t0 = time.perf_counter()
        tmp = path.with_name(path.stem + ".part" + path.suffix)
        cmd[-1] = str(tmp)
        subprocess.run(cmd, check=True, env={**os.environ, "SVT_LOG": "1"})  # SVT-AV1: errors only
        tmp.replace(path)
        info = probe(path)
        index["variants"][v.name] = {**asdict(v), "file": v.filename, "probe": info,
                                     "encode_s": round(time.perf_counter() - t0, 2), "command": " ".join(cmd[:-1])}
        log(f"made  {v.filename}: {info['codec']} {info['width']}x{info['height']} {info['duration']:.1f} s, "
            f"{info['bytes'] / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s")
        index_path.write_text(json.dumps(index, indent=1) + "\n")
    index_path.write_text(json.dumps(index, indent=1) + "\n")
    return index


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.make_library", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="library folder")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder holding the source footage")
    ap.add_argument("--source", default="bbb", help=f"footage: {', '.join(SOURCES)} (from the corpus) or gen (testsrc2)")
    ap.add_argument("--preset", default="scaling", help="tiny, scaling or full (ignored when any axis below is given)")
    ap.add_argument("--heights", help="e.g. 360,720,1080,2160")
    ap.add_argument("--codecs", help=f"subset of {','.join(CODECS)}")
    ap.add_argument("--durations", help="seconds, e.g. 10,600 (longer than the source: looped)")
    ap.add_argument("--gops", help="seconds between key frames, e.g. 1,2,5,10")
    ap.add_argument("--force", action="store_true", help="re-encode variants that are already there")
    ap.add_argument("--list", action="store_true", help="print the variants and stop")
    args = ap.parse_args(argv)
    if args.source != "gen" and args.source not in SOURCES:
        ap.error(f"--source takes {', '.join(SOURCES)} or gen")
    if any((args.heights, args.codecs, args.durations, args.gops)):
        variants = [Variant(args.source, int(h), c, d, g)
                    for h in _floats(args.heights or "720") for c in (args.codecs or "h264").split(",")
                    for d in _floats(args.durations or "10") for g in _floats(args.gops or "2")]
        bad = [v.codec for v in variants if v.codec not in CODECS]
        if bad:
            ap.error(f"--codecs takes {', '.join(CODECS)}")
    else:
        variants = preset(args.preset, args.source)
    if args.list:
        for v in variants:
            print(v.filename)
        return 0
    build(variants, args.out, args.corpus, force=args.force, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(args.out / "library.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
