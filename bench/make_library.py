"""Build a synthetic-but-realistic video library for benchmarks: the same footage re-encoded.

From one source (real footage from ``../shared/corpus``, by default Big Buck Bunny, or a
generated ``testsrc2`` pattern) it makes variants that differ in one respect at a time:
resolution (360p .. 4K), codec (H.264, HEVC, VP9, AV1), length (short, or long by looping the
source, e.g. 10 minutes) and GOP length (a key frame every 1 .. 10 s, fixed: no scene-cut key
frames, so seeking costs what the GOP says).

    python -m bench.make_library                         # the "scaling" preset (what bench/scaling.py needs)
    python -m bench.make_library --preset full           # every codec x resolution, GOPs 1-10 s, a 10-minute file
    python -m bench.make_library --heights 360,720 --codecs h264,vp9 --durations 10 --gops 1,5
    python -m bench.make_library --preset previews       # a library that looks like a real one (bench/quality_library.py)
    python -m bench.make_library --preset holdout        # clips made after the defaults were chosen (bench/library-holdout)

Files go to ``bench/library/`` (override with ``--out``), named
``<source>_<height>p_<codec>_<duration>s_gop<gop>s.<ext>``, with ``library.json`` listing every
variant and what ffprobe says about it. The folder gets a ``.gitignore`` of ``*``: the videos
are never committed. A variant already there (same name, non-empty) is kept, so re-running is
cheap. Needs ``ffmpeg`` with libx264, libx265, libvpx-vp9 and libsvtav1 (or libaom-av1).

The ``previews`` preset is different in kind: not one source re-encoded, but a small library
that looks like what users send (animation, live action with camera motion, a talking head,
fast sport-like motion, low light, film grain, a screen recording with text, flat graphics, colour
bars, 4:3, a portrait phone clip with rotation metadata, 1080p, 10-bit HDR in PQ and HLG), ~5 s
each, made from ffmpeg's lavfi sources, scenes drawn here with numpy, and cuts of the corpus
footage (:data:`PREVIEW_CLIPS` below). Its entries go under
``"clips"`` in ``library.json`` with their categories, display size, rotation, the job that the
quality comparison runs on them (bench/quality_library.py), and, for the HDR clips, the SDR master
they were made from (the reference a tone-mapped preview is judged against). It also writes
``previews.jsonl``, a manifest of those jobs at source size and resized, for ``engine bench``.

The ``holdout`` preset (:data:`HOLDOUT_CLIPS`, its own folder) is made the same way from other
kinds of footage, after every default of the engine was chosen on the previews clips: the same
comparison on it says whether those choices hold on other footage. (Its first run found the
palette's histogram tail, kernels/palette.py ``TAIL_BITS``, which was then chosen on its plasma
clip: that clip, at least, is no longer held out.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "library"
HOLDOUT_OUT = REPO / "bench" / "library-holdout"  # the held-out clips' own folder (--preset holdout)
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
    raise ValueError(f"unknown preset {name!r} (tiny, scaling, full; previews: see PREVIEW_CLIPS)")


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


# --------------------------------------------------------------------------------------------
# the "previews" preset: a library that looks like what users send

PREVIEW_CATEGORIES = ("animation", "live-action", "camera-motion", "talking-head", "fast-motion", "low-light",
                      "film-grain", "screen-text", "flat-graphics", "colour-bars", "4:3", "portrait", "rotation",
                      "1080p", "10-bit", "hdr", "vp9", "av1")
RESIZED_LONG_SIDE = 480  # the resized jobs: the longer displayed side, as users ask (480x270 for 16:9)


@dataclass(frozen=True)
class Clip:
    """One clip of the previews library, and the job the quality comparison runs on it."""

    name: str
    categories: tuple[str, ...]
    description: str
    width: int  # coded size
    height: int
    fps: str  # source frame rate, as ffmpeg takes it ("25", "30000/1001")
    duration: float = 5.0
    rotation: int = 0  # display rotation written as metadata (degrees clockwise)
    hdr: str | None = None  # "pq" or "hlg": 10-bit HEVC made from an 8-bit SDR master kept beside it
    codec: str = "h264"  # "vp9" (WebM) or "av1" (MP4): web video as sites serve it
    job_seek: float = 1.0
    job_duration: float = 3.0
    job_fps: float = 15.0

    @property
    def filename(self) -> str:
        return f"{self.name}.{'webm' if self.codec == 'vp9' else 'mp4'}"

    @property
    def master_filename(self) -> str | None:
        """The SDR master an HDR clip was made from: the reference its previews are judged against."""
        return f"{self.name}.sdr-master.mp4" if self.hdr else None

    @property
    def display_size(self) -> tuple[int, int]:
        return (self.height, self.width) if self.rotation % 180 == 90 else (self.width, self.height)

    @property
    def resized_size(self) -> tuple[int, int]:
        """(w, h) of the resized job: the longer displayed side at RESIZED_LONG_SIDE, even numbers."""
        w, h = self.display_size
        scale = RESIZED_LONG_SIDE / max(w, h)
        return max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)

    def jobs(self, input_name: str | None = None) -> list[dict]:
        """Manifest lines: GIF and WebP, at source size and resized."""
        rw, rh = self.resized_size
        base = {"input": input_name or self.filename, "fps": self.job_fps, "seek": self.job_seek,
                "duration": self.job_duration}
        out = []
        for kind, size in (("source", {}), ("resized", {"width": rw, "height": rh})):
            for fmt in ("gif", "webp"):
                out.append({"id": f"{self.name}-{kind}-{fmt}", **base, "format": fmt, **size})
        return out


PREVIEW_CLIPS = (
    Clip("animation_bbb", ("animation",), "Big Buck Bunny from 8 s, 854x480 24 fps", 854, 480, "24"),
    Clip("live_camera_nasa", ("live-action", "camera-motion", "low-light"),
         "NASA footage (480x270 stream) with a pan and tilt across it, 640x360 29.97 fps", 640, 360, "30000/1001"),
    Clip("talking_head", ("talking-head",),
         "stand-in drawn here: a swaying head that blinks and talks over a static room, sensor noise, 640x360 25 fps",
         640, 360, "25"),
    Clip("sport_fast", ("fast-motion",),
         "stand-in drawn here: a pitch panned at 400 px/s, players and a fast ball, 640x360 50 fps",
         640, 360, "50", job_duration=2.0, job_fps=25.0),
    Clip("lowlight_bbb", ("low-light", "animation"),
         "Big Buck Bunny from 20 s, darkened (gamma 0.6) with sensor noise, 640x360 24 fps", 640, 360, "24"),
    Clip("film_grain_chaplin", ("film-grain", "live-action"),
         "Chaplin (black and white film) with heavy temporal grain, 640x360 25 fps", 640, 360, "25"),
    Clip("screen_text", ("screen-text",),
         "screen recording stand-in: code scrolling in an editor, a moving pointer, 960x540 30 fps", 960, 540, "30"),
    Clip("flat_logo", ("flat-graphics",), "flat shapes moving over a solid colour and a logo, 640x360 25 fps",
         640, 360, "25"),
    Clip("bars_4x3", ("colour-bars", "4:3"),
         "real 4:3 colour-bar test pattern with a running timecode (example_480p looped), 640x480 25 fps",
         640, 480, "25"),
    Clip("pixel_life", ("flat-graphics",), "Conway's life with mould colours, 2x nearest-neighbour, 640x360 15 fps",
         640, 360, "15"),
    Clip("portrait_rotated", ("portrait", "rotation", "animation"),
         "phone-style portrait: stored 640x360 with rotation metadata, displayed 360x640, 24 fps",
         640, 360, "24", rotation=90),
    Clip("hd1080_bbb", ("1080p", "animation"), "Big Buck Bunny from 14 s at 1920x1080 24 fps", 1920, 1080, "24"),
    Clip("hdr_pq_hevc10", ("hdr", "10-bit", "animation"),
         "HEVC Main 10, BT.2020 PQ (SDR white at 203 nits) made from an SDR master of Big Buck Bunny, 960x540 24 fps",
         960, 540, "24", hdr="pq"),
    Clip("hdr_hlg_hevc10", ("hdr", "10-bit", "live-action"),
         "HEVC Main 10, BT.2020 HLG made from an SDR master of the NASA footage, 640x360 29.97 fps",
         640, 360, "30000/1001", duration=4.0, hdr="hlg"),  # the footage's 480x270 stream ends at 13 s
    Clip("web_vp9_bbb", ("vp9", "animation"),
         "VP9 in WebM as video sites serve it: Big Buck Bunny from 24 s, 1280x720 24 fps", 1280, 720, "24",
         codec="vp9"),
    Clip("web_av1_chaplin", ("av1", "live-action"),
         "AV1 in MP4 as video sites serve it: the Chaplin film (no grain added), 640x360 25 fps", 640, 360, "25",
         codec="av1"),
)

# A second library, made after the engine's defaults were chosen (2026-12-05): every setting was
# chosen by measuring PREVIEW_CLIPS, so a comparison on them alone can flatter it (since then the
# palette's TAIL_BITS was chosen on the plasma clip below: a fresh set is needed for a clean figure). These clips differ in
# kind (smooth full-hue gradients, cross-fades, fades to black, text on black, a hue drift, colour
# noise, a tiny source, near-black real footage, a phone screen recording coded portrait, flat
# charts) and are judged by the same comparison: `--preset holdout` (bench/library-holdout).
HOLDOUT_CLIPS = (
    Clip("plasma_hues", ("gradients", "full-hue"),
         "demo-scene plasma: three moving sine fields, every hue, smooth, 640x360 25 fps", 640, 360, "25"),
    Clip("sky_gradient", ("gradients", "flat-graphics"),
         "a four-colour dusk gradient turning slowly, nothing else (banding), 960x540 30 fps", 960, 540, "30"),
    Clip("slideshow_xfade", ("slideshow", "fades", "camera-motion"),
         "two stills (animation, black-and-white film) zoomed slowly and cross-faded over 1 s, 640x360 25 fps",
         640, 360, "25", duration=4.0),
    Clip("credits_roll", ("text-on-black",), "white credits rolling up over black, 854x480 24 fps",
         854, 480, "24"),
    Clip("fade_nasa", ("fades", "live-action"),
         "NASA footage faded in from black and out to black, 640x360 29.97 fps", 640, 360, "30000/1001"),
    Clip("tiny_nasa", ("small-source", "live-action"), "NASA footage's own 320x180 stream, 25 fps",
         320, 180, "25"),
    Clip("near_black_vp9", ("low-light", "live-action"),
         "the corpus's near-black VP9 footage (RGB levels 0-12), 1280x720 14.985 fps", 1280, 720, "15000/1001",
         duration=4.9),
    Clip("hue_drift_bbb", ("colour-drift", "animation"),
         "Big Buck Bunny from 12 s with its hue turning 70 degrees a second, 640x360 24 fps", 640, 360, "24"),
    Clip("colour_grain_nasa", ("film-grain", "colour-noise", "live-action"),
         "NASA footage with strong colour noise in every channel, 640x360 29.97 fps", 640, 360, "30000/1001",
         duration=4.0),
    Clip("phone_feed", ("portrait", "screen-text"),
         "phone screen recording coded upright: a feed of cards, text and a playing video scrolled up, "
         "540x960 30 fps", 540, 960, "30"),
    Clip("bar_chart", ("flat-graphics", "text"), "an animated bar chart with a title on white, 640x360 25 fps",
         640, 360, "25"),
    # six more, added the same day after the first eleven's runs (bench/results/quality-holdout-more.md)
    Clip("hue_wheel", ("full-hue", "flat-graphics"),
         "a turning colour wheel whose channels wrap past white: hard-edged polygons of every hue, 640x360 25 fps",
         640, 360, "25"),
    Clip("tv_static", ("noise",), "full-frame random noise, new every frame, 480x270 25 fps", 480, 270, "25"),
    Clip("glow_particles", ("low-light", "bright-colours"),
         "Conway's life cells glowing orange with trails on black, 640x360 25 fps", 640, 360, "25"),
    Clip("mandel_small", ("fractal", "full-hue"), "a Mandelbrot zoom, 320x180 25 fps", 320, 180, "25"),
    Clip("tiny_text_scroll", ("screen-text", "small-text"),
         "10 px text scrolling diagonally over a pale gradient, 640x360 30 fps", 640, 360, "30"),
    Clip("fast_gradients", ("gradients", "colour-drift"), "eight-colour gradients moving fast, 640x360 25 fps",
         640, 360, "25"),
)


def _credits_text() -> str:
    """Forty credit lines (deterministic), a role and a name each."""
    roles = ("Director", "Producer", "Editor", "Colourist", "Sound", "Camera", "Gaffer", "Grip")
    names = ("Ada Moreau", "Bo Lindqvist", "Chen Wei", "Dara O'Neill", "Emeka Obi", "Fatima Zahra")
    return "\n".join(f"{roles[i % len(roles)]:>12}   {names[(i * 5) % len(names)]}" for i in range(40)) + "\n"


def holdout_command(clip: Clip, out: Path, src) -> list[str]:
    """The ffmpeg input and filter arguments of a HOLDOUT_CLIPS clip (``src(name)``: a corpus file)."""
    n, d, size = clip.name, f"{clip.duration:g}", f"w={clip.width}:h={clip.height}"
    lavfi_bg = ["-f", "lavfi", "-i", f"color=c=black:s={clip.width}x{clip.height}:r={clip.fps}"]
    if n == "plasma_hues":
        return lavfi_bg + ["-t", d, "-vf",
                           "geq=r='128+127*sin(X/23+T*1.1)':g='128+127*sin((X+Y)/31+T*1.7)':"
                           "b='128+127*sin(hypot(X-320\\,Y-180)/17-T*2.3)'," + _to709()]
    if n == "sky_gradient":
        return ["-f", "lavfi", "-i", f"gradients=s={clip.width}x{clip.height}:r={clip.fps}:c0=0x0b1d51:c1=0x2b5876:"
                "c2=0xff7e5f:c3=0xfeb47b:nb_colors=4:speed=0.02", "-t", d, "-vf", _to709()]
    if n == "slideshow_xfade":
        still = ("trim=end_frame=1,loop=loop=150:size=1,setpts=N/25/TB,"
                 f"zoompan=z='1+0.0025*on':d=1:x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':s={clip.width}x{clip.height}:fps=25,"
                 "trim=duration=2.5,setpts=PTS-STARTPTS")
        graph = (f"[0]scale=1280:720,{still},format=yuv420p[a];[1]scale=1280:720,{still},format=yuv420p[b];"
                 f"[a][b]xfade=transition=fade:duration=1:offset=1.5,{_to709('bt709')}")
        return ["-ss", "5", "-i", str(src(SOURCES["bbb"])), "-ss", "2", "-i", str(src(SOURCES["chaplin"])),
                "-filter_complex", graph, "-t", d]
    if n == "credits_roll":
        text = out.with_name("credits_roll.txt")
        text.write_text(_credits_text())
        mono = _filter_path(_font(mono=True))
        return lavfi_bg + ["-t", d, "-vf",
                           f"drawtext=fontfile='{mono}':textfile='{_filter_path(text)}':fontsize=22:fontcolor=white:"
                           f"line_spacing=14:x=(w-tw)/2:y=h-t*90," + _to709()]
    if n == "fade_nasa":
        return ["-ss", "2", "-i", str(src("nasa_13013.mp4")), "-t", d, "-map", "0:v:1", "-vf",
                _to709(None, size, "bicubic") + ",fade=in:st=0:d=2,fade=out:st=3:d=2"]
    if n == "tiny_nasa":
        return ["-ss", "3", "-i", str(src("nasa_13013.mp4")), "-t", d, "-map", "0:v:0", "-vf", _to709()]
    if n == "near_black_vp9":
        return ["-i", str(src("vp9_no_duration.webm")), "-t", d, "-map", "0:v:0", "-vf", _to709("bt709")]
    if n == "hue_drift_bbb":
        return ["-ss", "12", "-i", str(src(SOURCES["bbb"])), "-t", d, "-vf",
                _to709("bt709", size) + ",hue=H=t*1.22"]
    if n == "colour_grain_nasa":
        return ["-ss", "7", "-i", str(src("nasa_13013.mp4")), "-t", d, "-map", "0:v:1", "-vf",
                _to709(None, size, "bicubic") + ",noise=alls=16:allf=t+u"]
    if n == "hue_wheel":  # radius-scaled cosines past 0-255 wrap: the hard edges are meant
        polar = "hypot(X-320\\,Y-180)/200)*cos(atan2(Y-180\\,X-320)+T"
        return lavfi_bg + ["-t", d, "-vf", f"geq=r='128+127*({polar})':g='128+127*({polar}+2.094)':"
                                           f"b='128+127*({polar}+4.189)'," + _to709()]
    if n == "tv_static":
        return lavfi_bg + ["-t", d, "-vf", "geq=r='random(1)*255':g='random(2)*255':b='random(3)*255'," + _to709()]
    if n == "glow_particles":
        return ["-f", "lavfi", "-i", f"life=s={clip.width}x{clip.height}:r={clip.fps}:seed=3:ratio=0.05:mold=0:"
                "life_color=0xff8a00:death_color=black", "-t", d,
                "-vf", "tmix=frames=4:weights='1 2 3 4',gblur=sigma=1.5,eq=saturation=1.5," + _to709()]
    if n == "mandel_small":
        return ["-f", "lavfi", "-i", f"mandelbrot=s={clip.width}x{clip.height}:r={clip.fps}:maxiter=300:start_scale=2:"
                "end_scale=0.6:end_pts=5:outer=normalized_iteration_count", "-t", d, "-vf", _to709()]
    if n == "tiny_text_scroll":
        text = out.with_name("tiny_text_scroll.txt")
        text.write_text("\n".join(f"{i:03d} the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ"
                                  for i in range(60)))
        return ["-f", "lavfi", "-i", f"gradients=s={clip.width}x{clip.height}:r={clip.fps}:c0=0xfff1c1:c1=0xc1e8ff:"
                "nb_colors=2:speed=0.01", "-t", d, "-vf",
                f"drawtext=fontfile='{_filter_path(_font())}':textfile='{_filter_path(text)}':fontsize=10:"
                "fontcolor=0x202020:line_spacing=3:x=20-t*15:y=10-t*40," + _to709()]
    if n == "fast_gradients":
        return ["-f", "lavfi", "-i", f"gradients=s={clip.width}x{clip.height}:r={clip.fps}:nb_colors=8:seed=5:speed=0.08",
                "-t", d, "-vf", _to709()]
    # FFmpeg 5.1's drawbox places its box once, so what moves is cropped or overlaid, per frame
    if n == "phone_feed":
        w, h, sans = clip.width, clip.height, _filter_path(_font(bold=True))
        cards = ",".join(f"drawbox=x=20:y={80 + 330 * k}:w={w - 40}:h=300:color=white:t=fill,"
                         f"drawbox=x=40:y={100 + 330 * k}:w=48:h=48:color=0x{('6366f1', 'f43f5e', '10b981', 'f59e0b')[k % 4]}:t=fill,"
                         f"drawtext=fontfile='{sans}':text='Post {k + 1}  -  {3 + k} min ago':fontsize=20:fontcolor=0x111827:"
                         f"x=104:y={112 + 330 * k}"
                         for k in range(6))
        graph = (f"[0]{cards},crop=w={w}:h={h}:x=0:y='t*140'[feed];[1]scale={w - 80}:-2,setsar=1[v];"
                 f"[feed][v]overlay=x=40:y='170-t*140',"
                 f"drawbox=x=0:y=0:w=iw:h=60:color=0x111827:t=fill,"
                 f"drawtext=fontfile='{sans}':text='Feed':fontsize=26:fontcolor=white:x=20:y=16,{_to709()}")
        return ["-f", "lavfi", "-i", f"color=c=0xf2f2f7:s={w}x{h + 1100}:r={clip.fps}",
                "-ss", "16", "-i", str(src(SOURCES["bbb"])), "-t", d, "-filter_complex", graph]
    if n == "bar_chart":
        colours, sans = ("2563eb", "dc2626", "16a34a", "f59e0b"), _filter_path(_font(bold=True))
        inputs = ["-f", "lavfi", "-i", f"color=c=white:s={clip.width}x{clip.height}:r={clip.fps}"]
        graph, last = "", "0"
        for k, c in enumerate(colours):  # a bar 240 px tall, risen from below the axis by its height
            inputs += ["-f", "lavfi", "-i", f"color=c=0x{c}:s=80x240:r={clip.fps}"]
            graph += (f"[{last}][{k + 1}]overlay=x={60 + 120 * k}:"
                      f"y='300-{40 + 10 * k}-{100 - 5 * k}*(1+sin(t*{1.7 - 0.3 * k:.1f}+{k}))'[b{k}];")
            last = f"b{k}"
        graph += (f"[{last}]drawbox=x=0:y=300:w=iw:h=ih-300:color=white:t=fill,"
                  "drawbox=x=40:y=300:w=560:h=2:color=0x374151:t=fill,"
                  f"drawtext=fontfile='{sans}':text='Quarterly views':fontsize=28:fontcolor=0x111827:x=40:y=24,"
                  + _to709())
        return inputs + ["-t", d, "-filter_complex", graph]
    raise ValueError(f"no recipe for clip {clip.name!r}")


_BT709_TAGS = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
_HEAD = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def _x264(crf: int = 18) -> list[str]:
    return (["-c:v", "libx264", "-preset", "fast", "-crf", str(crf), "-pix_fmt", "yuv420p"] + _BT709_TAGS
            + ["-movflags", "+faststart"])


def _coded(clip: Clip, crf: int) -> list[str]:
    """The encoder options of ``clip``: x264 at ``crf``, or VP9 / AV1 at a quality web video is
    served at (a key frame at least every 2 s, as sites encode for seeking), BT.709 tags either way."""
    if clip.codec == "h264":
        return _x264(crf)
    gop = str(round(2 * _fps_value(clip.fps)))
    if clip.codec == "vp9":
        return ["-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "4", "-row-mt", "1", "-b:v", "0",
                "-crf", "32", "-g", gop, "-pix_fmt", "yuv420p", *_BT709_TAGS]
    if clip.codec == "av1":
        if _av1_encoder() == "libsvtav1":
            return ["-c:v", "libsvtav1", "-preset", "8", "-crf", "32", "-g", gop, "-pix_fmt", "yuv420p",
                    *_BT709_TAGS, "-movflags", "+faststart"]
        return ["-c:v", "libaom-av1", "-cpu-used", "6", "-crf", "32", "-b:v", "0", "-g", gop, "-pix_fmt", "yuv420p",
                *_BT709_TAGS, "-movflags", "+faststart"]
    raise ValueError(f"no encoder for codec {clip.codec!r}")


def _to709(in_matrix: str | None = None, size: str | None = None, flags: str = "lanczos") -> str:
    """The chain's last step: BT.709 limited-range 4:2:0 (an untagged source read as ``in_matrix``)."""
    opts = [size or "w=iw:h=ih", f"flags={flags}"]
    if in_matrix:
        opts.append(f"in_color_matrix={in_matrix}")
    opts += ["out_color_matrix=bt709", "out_range=tv"]
    return "scale=" + ":".join(opts) + ",format=yuv420p,setsar=1"  # square pixels: displayed size = coded size


def _font(bold: bool = False, mono: bool = False) -> str:
    name = "DejaVuSansMono.ttf" if mono else ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts"):
        if (Path(folder) / name).exists():
            return str(Path(folder) / name)
    out = subprocess.run(["fc-match", "-f", "%{file}", "DejaVu Sans Mono" if mono else "DejaVu Sans"],
                         capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip()
    raise RuntimeError("no DejaVu font for drawtext (apt-get install fonts-dejavu-core)")


def _filter_path(path: Path | str) -> str:
    """A path as a filter option value (':' and '\\' and quotes escaped)."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def _code_text() -> str:
    """Eighty lines of plausible source code for the screen recording (deterministic)."""
    lines = []
    for i in range(10):
        lines += [f"def stage_{i}(frames, palette, size=({320 + 16 * i}, {180 + 9 * i})):",
                  f'    """Stage {i}: shrink, quantise and write {i + 2} frames per call."""',
                  f"    out = [resize(f, size) for f in frames[{i}::{i + 1}]]",
                  f"    if len(out) > {64 * (i + 1)}:  # keep memory bounded",
                  "        out = out[: len(out) // 2]",
                  f"    return encode(out, palette, delay_ms={40 + 10 * i}, loop=0)",
                  "", ""]
    return "\n".join(lines) + "\n"


def _talking_head_frames(w: int, h: int, fps: float, n: int):
    """A stand-in for a talking head: a static room, a head that sways, nods, blinks and talks,
    shoulders, mild sensor noise. RGB24 frames."""
    import numpy as np

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    room = np.empty((h, w, 3), np.float32)
    room[..., 0] = 150 + 50 * xx / w
    room[..., 1] = 135 + 30 * xx / w
    room[..., 2] = 120 + 10 * yy / h
    for k, colour in enumerate(((120, 60, 50), (60, 90, 120), (150, 130, 60), (70, 110, 70), (110, 80, 120))):
        x0 = 20 + 34 * k
        room[40:150, x0:x0 + 26] = colour  # books on a shelf
        room[165:275, x0 + 10:x0 + 34] = colour[::-1]
    room[30:37, 10:200] = (90, 70, 50)
    room[155:162, 10:200] = (90, 70, 50)
    window = ((xx > w * 0.72) & (xx < w * 0.95) & (yy > h * 0.1) & (yy < h * 0.55))
    room[window] = (225, 232, 240)

    def ellipse(cx, cy, rx, ry):
        d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
        return np.clip((1.0 - d) * max(rx, ry) / 2, 0, 1)[..., None]  # anti-aliased edge

    for i in range(n):
        t = i / fps
        cx = w * 0.5 + 10 * math.sin(2 * math.pi * 0.3 * t)
        cy = h * 0.42 + 4 * math.sin(2 * math.pi * 0.55 * t)
        img = room.copy()
        shoulders = ellipse(cx, h + 30, 185, 125)
        img = img * (1 - shoulders) + shoulders * np.array((40, 50, 80), np.float32)
        neck = ellipse(cx, cy + 85, 30, 40)
        img = img * (1 - neck) + neck * np.array((200, 150, 120), np.float32)
        head = ellipse(cx, cy, 62, 80)
        shade = (1.0 - 0.25 * (xx - cx + 25) / 62)[..., None]
        img = img * (1 - head) + head * np.array((226, 174, 142), np.float32) * np.clip(shade, 0.6, 1.2)
        hair = ellipse(cx, cy - 55, 66, 42) * (yy < cy - 30)[..., None]
        img = img * (1 - hair) + hair * np.array((60, 40, 30), np.float32)
        blink = 1.5 if (t % 3.7) < 0.15 else 7.0
        for side in (-1, 1):
            eye = ellipse(cx + side * 24, cy - 8, 9, blink)
            img = img * (1 - eye) + eye * np.array((40, 30, 30), np.float32)
        talk = abs(math.sin(2 * math.pi * 3.1 * t)) * (0.5 + 0.5 * math.sin(2 * math.pi * 0.4 * t) ** 2)
        mouth = ellipse(cx, cy + 40, 19, 2.5 + 9 * talk)
        img = img * (1 - mouth) + mouth * np.array((110, 30, 40), np.float32)
        img += rng.normal(0, 2.5, (h, w, 1)).astype(np.float32)
        yield np.clip(img, 0, 255).astype(np.uint8)


def _sport_frames(w: int, h: int, fps: float, n: int):
    """A stand-in for sport: a mown pitch panned fast, lines, two teams running, a fast ball
    drawn with motion blur, a score box. RGB24 frames."""
    import numpy as np

    rng = np.random.default_rng(5)
    speed = 400.0  # px/s of the camera
    world_w = int(w + speed * n / fps + 400)
    world = np.empty((h, world_w, 3), np.float32)
    xs = np.arange(world_w)
    stripe = ((xs // 60) % 2).astype(np.float32)
    world[..., 0] = 40 + 10 * stripe
    world[..., 1] = 120 + 22 * stripe
    world[..., 2] = 40 + 8 * stripe
    world += rng.normal(0, 6, (h, world_w, 1)).astype(np.float32)  # grass texture
    for x0 in range(150, world_w, 700):
        world[:, x0:x0 + 4] = 235
    world[int(h * 0.12):int(h * 0.12) + 4] = 235
    world[int(h * 0.93):int(h * 0.93) + 4] = 235
    players = [(rng.uniform(0, world_w * 0.3), rng.uniform(h * 0.2, h * 0.85), rng.uniform(300, 480),
                rng.uniform(0, 6.3), k % 2) for k in range(14)]
    kits = (np.array((220, 30, 40), np.float32), np.array((240, 240, 240), np.float32))
    for i in range(n):
        t = i / fps
        cam = speed * t + 60 * math.sin(1.3 * t)
        x0 = int(cam)
        img = world[:, x0:x0 + w].copy()
        for px, py, vx, phase, team in players:
            sx = int(px + vx * t - x0)
            sy = int(py + 25 * math.sin(2 * t + phase))
            if -20 < sx < w + 20:
                leg = int(5 * math.sin(18 * t + phase))
                ys, ye, xs0, xe = max(sy - 22, 0), min(sy + 6, h), max(sx - 6, 0), min(sx + 6, w)
                img[ys:ye, xs0:xe] = kits[team]
                img[max(sy - 30, 0):max(sy - 22, 0), max(sx - 4, 0):min(sx + 4, w)] = (200, 150, 120)
                img[min(sy + 6, h):min(sy + 18, h), max(sx - 5 + leg, 0):min(sx - 1 + leg, w)] = (30, 30, 30)
                img[min(sy + 6, h):min(sy + 18, h), max(sx + 1 - leg, 0):min(sx + 5 - leg, w)] = (30, 30, 30)
        for sub in range(4):  # the ball, blurred along its path
            tb = t + sub / (4 * fps)
            bx = int(w * 0.5 + 220 * math.sin(2.1 * tb))
            by = int(h * 0.5 + 120 * math.sin(3.3 * tb + 1))
            ys, xs1 = slice(max(by - 5, 0), min(by + 5, h)), slice(max(bx - 5, 0), min(bx + 5, w))
            img[ys, xs1] = img[ys, xs1] * 0.6 + 0.4 * 255
        img[8:34, 8:150] = (20, 20, 30)
        img[14:28, 14:60] = kits[0]
        img[14:28, 96:142] = kits[1]
        yield np.clip(img, 0, 255).astype(np.uint8)


SCENES = {"talking_head": _talking_head_frames, "sport_fast": _sport_frames}


def _fps_value(fps: str) -> float:
    num, _, den = fps.partition("/")
    return float(num) / float(den or 1)


def preview_steps(clip: Clip, out: Path, corpus: Path) -> list[tuple[list[str], object, Path]]:
    """The ffmpeg commands that make ``clip`` at ``out``, in order: (command, frames or None, the
    file it writes). Frames (an iterator of RGB arrays) go to the command's standard input. An HDR
    clip takes two: its SDR master, then the master converted to 10-bit BT.2020 PQ or HLG HEVC."""

    def src(name: str) -> Path:
        p = corpus / name
        if not p.exists():
            raise FileNotFoundError(f"{p} is absent (use --corpus DIR)")
        return p

    d = f"{clip.duration:g}"
    size = f"w={clip.width}:h={clip.height}"
    master = out.with_name(clip.master_filename) if clip.hdr else out
    steps: list[tuple[list[str], object, Path]] = []
    frames = None
    n = clip.name
    if n in ("animation_bbb", "hd1080_bbb", "hdr_pq_hevc10", "web_vp9_bbb"):
        seek = {"animation_bbb": "8", "hd1080_bbb": "14", "hdr_pq_hevc10": "22", "web_vp9_bbb": "24"}[n]
        cmd = ["-ss", seek, "-i", str(src(SOURCES["bbb"])), "-t", d, "-vf", _to709("bt709", size)]
    elif n == "lowlight_bbb":
        cmd = ["-ss", "20", "-i", str(src(SOURCES["bbb"])), "-t", d, "-vf",
               _to709("bt709", size) + ",eq=brightness=-0.06:contrast=0.85:gamma=0.6:saturation=0.6,"
               "noise=c0s=10:c0f=t+u:c1s=5:c1f=t+u:c2s=5:c2f=t+u"]
    elif n in ("live_camera_nasa", "hdr_hlg_hevc10"):
        seek, pan = ("0.5", "crop=w=384:h=216:x='(iw-ow)*t/5':y='(ih-oh)*(0.5+0.4*sin(t))',") if n == "live_camera_nasa" \
            else ("9", "")
        cmd = ["-ss", seek, "-i", str(src("nasa_13013.mp4")), "-t", d, "-map", "0:v:1", "-vf",
               pan + _to709(None, size, "bicubic")]
    elif n == "film_grain_chaplin":
        cmd = ["-ss", "1.5", "-i", str(src(SOURCES["chaplin"])), "-t", d, "-vf",
               _to709("bt601", size) + ",noise=c0s=22:c0f=t+u"]
    elif n == "web_av1_chaplin":
        cmd = ["-ss", "4", "-i", str(src(SOURCES["chaplin"])), "-t", d, "-vf", _to709("bt601", size)]
    elif n == "bars_4x3":
        cmd = ["-stream_loop", "2", "-i", str(src("example_480p_2s.mp4")), "-t", d, "-vf", _to709("bt601", size)]
    elif n == "portrait_rotated":
        # displayed upright after a quarter turn clockwise: stored turned a quarter anticlockwise
        cmd = ["-ss", "3", "-i", str(src(SOURCES["bbb"])), "-t", d, "-vf",
               "crop=w=406:h=720:x='437+300*sin(t/2)':y=0,"
               + _to709("bt709", f"w={clip.height}:h={clip.width}") + ",transpose=2"]
    elif n in SCENES:
        frames = SCENES[n](clip.width, clip.height, _fps_value(clip.fps), round(clip.duration * _fps_value(clip.fps)))
        cmd = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{clip.width}x{clip.height}", "-r", clip.fps, "-i", "-",
               "-vf", _to709()]
    elif n == "screen_text":
        text = out.with_name("screen_text.txt")
        text.write_text(_code_text())
        mono, sans = _filter_path(_font(mono=True)), _filter_path(_font(bold=True))
        graph = (f"[0]drawbox=x=44:y=252:w=iw-44:h=26:color=0xfff7c2:t=fill,"
                 f"drawtext=fontfile='{mono}':textfile='{_filter_path(text)}':fontsize=17:fontcolor=0x1f2328:"
                 f"line_spacing=8:x=56:y=70-t*26,"
                 f"drawbox=x=0:y=36:w=44:h=ih-36:color=0xe6e6e6:t=fill,"
                 f"drawbox=x=0:y=0:w=iw:h=36:color=0x2b2d30:t=fill,"
                 f"drawtext=fontfile='{sans}':text='stages.py - editor':fontsize=16:fontcolor=white:x=14:y=10,"
                 f"drawtext=fontfile='{mono}':text='%{{pts\\:hms}}':fontsize=15:fontcolor=0x9ca3af:x=w-130:y=11[bg];"
                 f"[bg][1]overlay=x='300+200*sin(t*1.3)':y='150+120*sin(t*0.9)',{_to709()}")
        cmd = ["-f", "lavfi", "-i", f"color=c=0xfbfbfb:s={clip.width}x{clip.height}:r={clip.fps}",
               "-f", "lavfi", "-i", f"color=c=black:s=10x16:r={clip.fps}", "-t", d, "-filter_complex", graph]
    elif n == "flat_logo":
        sans = _filter_path(_font(bold=True))
        graph = ("[0][1]overlay=x='40+mod(t*150,460)':y='60+70*abs(sin(t*2.2))'[a];"
                 "[a][2]overlay=x='W-w-40':y='H-h-30-20*sin(t*3)'[b];"
                 "[b]drawbox=x=0:y=ih-12:w=iw:h=12:color=white:t=fill,"
                 f"drawtext=fontfile='{sans}':text='ACME PREVIEWS':fontsize=44:fontcolor=white:"
                 f"x=(w-tw)/2:y=(h-th)/2-12*sin(t*1.5),{_to709()}")
        cmd = ["-f", "lavfi", "-i", f"color=c=0x1d4ed8:s={clip.width}x{clip.height}:r={clip.fps}",
               "-f", "lavfi", "-i", f"color=c=0xf59e0b:s=96x96:r={clip.fps}",
               "-f", "lavfi", "-i", f"color=c=0x10b981:s=160x40:r={clip.fps}", "-t", d, "-filter_complex", graph]
    elif n == "pixel_life":
        cmd = ["-f", "lavfi", "-i", f"life=s={clip.width // 2}x{clip.height // 2}:r={clip.fps}:seed=7:ratio=0.25:"
               "mold=10:life_color=0xfbbf24:death_color=0x1e293b:mold_color=0x7c3aed", "-t", d,
               "-vf", _to709(None, size, "neighbor")]
    elif n in {c.name for c in HOLDOUT_CLIPS}:
        cmd = holdout_command(clip, out, src)
    else:
        raise ValueError(f"no recipe for clip {clip.name!r}")
    if "-t" not in cmd:
        cmd += ["-t", d]
    crf = 10 if clip.hdr else 18  # an HDR clip's master is the reference: near lossless
    steps.append((_HEAD + cmd + ["-map_metadata", "-1", "-an", "-sn", "-dn", "-r", clip.fps] + _coded(clip, crf)
                  + [str(master)], frames, master))
    if clip.hdr:
        trc = {"pq": "smpte2084", "hlg": "arib-std-b67"}[clip.hdr]
        # SDR white placed at HDR reference white, 203 cd/m² (BT.2408's display-light mapping): PQ
        # 203 cd/m², HLG 75 % (zimg's npl sets where SDR's 1.0 lands for both). Until 2026-12-05 the
        # HLG clip took npl=1000, SDR white at HLG's peak: its mid-grey at HLG's reference white.
        npl = 203
        x265 = (f"colorprim=bt2020:transfer={trc}:colormatrix=bt2020nc:range=limited:log-level=error"
                + (":hdr10=1:max-cll=203,100:master-display=G(13250,34500)B(7500,3000)R(34000,16000)"
                   "WP(15635,16450)L(10000000,50)" if clip.hdr == "pq" else ""))
        steps.append((_HEAD + ["-i", str(master), "-vf",
                               f"zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t={trc}:m=bt2020nc:p=bt2020:r=tv:npl={npl},"
                               "format=yuv420p10le", "-an", "-c:v", "libx265", "-preset", "fast", "-crf", "16",
                               "-pix_fmt", "yuv420p10le", "-x265-params", x265, "-tag:v", "hvc1",
                               "-color_primaries", "bt2020", "-color_trc", trc, "-colorspace", "bt2020nc",
                               "-color_range", "tv", "-movflags", "+faststart", str(out)], None, out))
    return steps


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, box end) of the ISO BMFF boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = bytes(data[pos + 4:pos + 8])
        head = 8
        if size == 1:
            size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return
        yield kind, pos + head, pos + size
        pos += size


def set_mp4_rotation(path: Path, degrees: int) -> None:
    """Write a display rotation (degrees clockwise, a multiple of 90) into the video track's
    ``tkhd`` matrix of an MP4, in place (this ffmpeg drops ``-metadata:s:v rotate=``). Players and
    ffmpeg turn the picture by it; ffprobe reports it as ``rotation=-degrees``."""
    data = bytearray(path.read_bytes())
    a, b, c, d = {0: (1, 0, 0, 1), 90: (0, 1, -1, 0), 180: (-1, 0, 0, -1), 270: (0, -1, 1, 0)}[degrees % 360]
    done = False
    for kind, moov, moov_end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for kind2, trak, trak_end in _boxes(data, moov, moov_end):
            if kind2 != b"trak":
                continue
            sub = {k: (s0, e0) for k, s0, e0 in _boxes(data, trak, trak_end)}
            if b"tkhd" not in sub or b"mdia" not in sub:
                continue
            mdia = {k: (s0, e0) for k, s0, e0 in _boxes(data, *sub[b"mdia"])}
            if b"hdlr" not in mdia or data[mdia[b"hdlr"][0] + 8:mdia[b"hdlr"][0] + 12] != b"vide":
                continue
            tkhd = sub[b"tkhd"][0]
            version = data[tkhd]
            matrix = tkhd + (4 + 8 + 4 + 4 + 8 + 8 + 8 if version == 1 else 4 + 4 + 4 + 4 + 4 + 4 + 8 + 8)
            width = int.from_bytes(data[matrix + 36:matrix + 40], "big") >> 16
            height = int.from_bytes(data[matrix + 40:matrix + 44], "big") >> 16
            tx, ty = {0: (0, 0), 90: (height, 0), 180: (width, height), 270: (0, width)}[degrees % 360]
            values = [a << 16, b << 16, 0, c << 16, d << 16, 0, tx << 16, ty << 16, 1 << 30]
            data[matrix:matrix + 36] = b"".join((v & 0xFFFFFFFF).to_bytes(4, "big") for v in values)
            done = True
    if not done:
        raise ValueError(f"{path}: no video track header to rotate")
    path.write_bytes(bytes(data))


def probe_clip(path: Path) -> dict:
    """What ffprobe says of a previews clip: :func:`probe` plus pixel format, colour tags, rotation."""
    info = probe(path)
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=pix_fmt,color_transfer,color_primaries,color_space,color_range"
                          ":stream_side_data=rotation", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    s = json.loads(out)["streams"][0]
    rotation = next((int(sd["rotation"]) for sd in s.get("side_data_list", []) if "rotation" in sd), 0)
    info.update({k: s.get(k) for k in ("pix_fmt", "color_transfer", "color_primaries", "color_space", "color_range")})
    info["rotation"] = rotation  # ffprobe's sign: -90 is a quarter turn clockwise for display
    return info


def _run_step(cmd: list[str], frames, target: Path) -> None:
    tmp = target.with_name(target.stem + ".part" + target.suffix)
    cmd = cmd[:-1] + [str(tmp)]
    if frames is None:
        subprocess.run(cmd, check=True)
    else:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        try:
            for frame in frames:
                proc.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
        if proc.wait() != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd)
    tmp.replace(target)


def build_previews(clips=PREVIEW_CLIPS, out_dir: Path = DEFAULT_OUT, corpus: Path = DEFAULT_CORPUS, *,
                   force: bool = False, log=lambda m: None, preset: str = "previews") -> dict:
    """Make every clip that is not there yet, or whose recipe (its ffmpeg commands, kept in the
    index) changed since it was made (the HLG clip's on 2026-12-05: a library made before would
    have kept the old clip and the comparison judged it silently; the commands name the library's
    and the footage's folders, so a library moved or pointed at another corpus folder is remade
    too); write ``library.json`` (its ``"clips"``) and the ``previews.jsonl`` manifest; return the
    index."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not on PATH")
    out_dir.mkdir(parents=True, exist_ok=True)
    ignore = out_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# generated by bench/make_library.py: never committed\n*\n")
    index_path = out_dir / "library.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    index.setdefault("variants", {})
    index.setdefault("clips", {})
    index["preset"] = preset  # which clips these are: bench/quality_library.py names it in its report
    for clip in clips:
        path = out_dir / clip.filename
        master = out_dir / clip.master_filename if clip.hdr else None
        there = path.exists() and path.stat().st_size > 0 and (master is None or master.exists())
        known = index["clips"].get(clip.name)
        try:
            steps = preview_steps(clip, path, corpus)
        except FileNotFoundError:
            if there and known is not None:  # its footage is gone: what was made stays
                log(f"kept  {clip.filename} (its source is absent)")
                continue
            raise
        recipe = [" ".join(c) for c, _, _ in steps]
        if there and not force and known is not None and known.get("commands") == recipe:
            log(f"kept  {clip.filename}")
            continue
        if there and known is not None and not force:
            log(f"remake {clip.filename}: its recipe changed")
        t0 = time.perf_counter()
        for cmd, frames, target in steps:
            _run_step(cmd, frames, target)
        if clip.rotation:
            set_mp4_rotation(path, clip.rotation)
        info = probe_clip(path)
        w, h = clip.display_size
        rw, rh = clip.resized_size
        index["clips"][clip.name] = {
            "file": clip.filename, "categories": list(clip.categories), "description": clip.description,
            "display_width": w, "display_height": h, "rotation": clip.rotation, "hdr": clip.hdr,
            "reference_file": clip.master_filename or clip.filename,
            "job": {"seek": clip.job_seek, "duration": clip.job_duration, "fps": clip.job_fps},
            "resized": {"width": rw, "height": rh},
            "probe": info, "encode_s": round(time.perf_counter() - t0, 2),
            "commands": recipe}
        log(f"made  {clip.filename}: {info['codec']} {info['pix_fmt']} {info['width']}x{info['height']}"
            f"{' rot ' + str(info['rotation']) if info['rotation'] else ''} {info['duration']:.1f} s, "
            f"{info['bytes'] / 1e6:.2f} MB in {time.perf_counter() - t0:.1f} s")
        index_path.write_text(json.dumps(index, indent=1) + "\n")
    index_path.write_text(json.dumps(index, indent=1) + "\n")
    with open(out_dir / "previews.jsonl", "w", encoding="utf-8") as f:
        known = {c.name: c for c in (*PREVIEW_CLIPS, *HOLDOUT_CLIPS, *clips)}
        for name in index["clips"]:
            clip = known.get(name)
            if clip is not None:
                for line in clip.jobs():
                    f.write(json.dumps(line) + "\n")
    return index


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.make_library", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", type=Path, default=argparse.SUPPRESS,
                    help=f"library folder (default: {DEFAULT_OUT}; {HOLDOUT_OUT} with --preset holdout)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder holding the source footage")
    ap.add_argument("--source", default="bbb", help=f"footage: {', '.join(SOURCES)} (from the corpus) or gen (testsrc2)")
    ap.add_argument("--preset", default="scaling",
                    help="tiny, scaling, full (ignored when any axis below is given), previews (the clips "
                         "bench/quality_library.py compares tools on) or holdout (clips no setting was tuned on, "
                         "for the same comparison)")
    ap.add_argument("--clips", help="previews or holdout preset: only these clips, e.g. talking_head,bars_4x3")
    ap.add_argument("--heights", help="e.g. 360,720,1080,2160")
    ap.add_argument("--codecs", help=f"subset of {','.join(CODECS)}")
    ap.add_argument("--durations", help="seconds, e.g. 10,600 (longer than the source: looped)")
    ap.add_argument("--gops", help="seconds between key frames, e.g. 1,2,5,10")
    ap.add_argument("--force", action="store_true", help="re-encode variants that are already there")
    ap.add_argument("--list", action="store_true", help="print the variants and stop")
    args = ap.parse_args(argv)
    if args.source != "gen" and args.source not in SOURCES:
        ap.error(f"--source takes {', '.join(SOURCES)} or gen")
    out = getattr(args, "out", None) or (HOLDOUT_OUT if args.preset == "holdout" else DEFAULT_OUT)
    if args.preset in ("previews", "holdout"):
        clips = list(PREVIEW_CLIPS if args.preset == "previews" else HOLDOUT_CLIPS)
        if args.clips:
            wanted = [c.strip() for c in args.clips.split(",") if c.strip()]
            unknown = sorted(set(wanted) - {c.name for c in clips})
            if unknown:
                ap.error(f"--clips: unknown {', '.join(unknown)} (known: {', '.join(c.name for c in clips)})")
            clips = [c for c in clips if c.name in wanted]
        if args.list:
            for c in clips:
                print(f"{c.filename}\t{','.join(c.categories)}\t{c.description}")
            return 0
        t0 = time.perf_counter()
        build_previews(clips, out, args.corpus, force=args.force, preset=args.preset,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
        print(f"{len(clips)} clips in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        print(out / "library.json")
        return 0
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
    build(variants, out, args.corpus, force=args.force, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(out / "library.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
