"""Independent readers of the engine's outputs (animated GIF / WebP), for tests.

None of these use the engine's code.  Each wraps one outside implementation:

* ``pillow_frames`` / ``pillow_meta`` -- Pillow's GIF and WebP decoders, which
  composite every frame onto the full canvas the way a viewer does.
* ``ffprobe_info`` -- the ``ffprobe`` CLI (FFmpeg's demuxers/decoders).
* ``gifsicle_info`` -- ``gifsicle --info``.
* ``webpmux_info`` -- ``webpmux -info`` (libwebp's muxer tool).
* ``load_in_chromium`` -- headless Chromium loading each file or URL as an <img>.

The CLI wrappers skip the calling test (``pytest.skip``) when their tool is
not installed; pass ``missing="none"`` to get ``None`` instead (e.g. from a
benchmark, outside pytest).  A tool that runs but rejects the file raises
``ToolError`` carrying its stderr.

``displayed_frame_at`` / ``displayed_index_at`` answer "which frame does a
viewer show at time t" (the image itself / its position in the list).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "ToolError",
    "have_tool",
    "pillow_frames",
    "pillow_meta",
    "ffprobe_info",
    "gifsicle_info",
    "webpmux_info",
    "displayed_frame_at",
    "displayed_index_at",
    "frame_start_times",
]


class ToolError(RuntimeError):
    """An outside tool ran but failed on the file (message includes its stderr)."""


def have_tool(name: str) -> bool:
    """True when executable ``name`` is on PATH."""
    return shutil.which(name) is not None


def _tool(name: str, missing: str) -> str | None:
    exe = shutil.which(name)
    if exe is not None:
        return exe
    if missing == "skip":
        import pytest

        package = {"ffprobe": "ffmpeg", "webpmux": "webp"}.get(name, name)
        pytest.skip(f"{name} not installed (apt-get install -y {package})")
    if missing == "none":
        return None
    raise FileNotFoundError(f"{name} not installed")


def _run(args: list[str], timeout: float = 60) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ToolError(f"{Path(args[0]).name} failed (rc={proc.returncode}) on "
                        f"{args[-1]}: {proc.stderr.strip()[:2000]}")
    return proc.stdout


# --------------------------------------------------------------------------
# Pillow
# --------------------------------------------------------------------------

def pillow_frames(path, *, rgba: bool = False) -> list[tuple[np.ndarray, int]]:
    """Decode every frame with Pillow as a viewer would show it.

    Returns ``[(image, duration_ms), ...]``: ``image`` is the full composited
    canvas (HxWx3 uint8 RGB; HxWx4 RGBA with ``rgba=True``) after applying
    each frame's offset, disposal, transparency and blending; ``duration_ms``
    is the delay stored in the file (GIF: centiseconds x 10, so 0 when the
    file says 0 -- browsers show such frames for ~100 ms, see
    ``displayed_frame_at(clamp_gif_delays=True)``).  Without ``rgba`` the
    alpha channel is dropped (our previews are opaque).
    """
    from PIL import Image, ImageSequence

    out: list[tuple[np.ndarray, int]] = []
    with Image.open(path) as im:
        for frame in ImageSequence.Iterator(im):
            conv = frame.convert("RGBA" if rgba else "RGB")
            dur = frame.info.get("duration", 0)  # WebP sets it only once the frame is loaded
            out.append((np.asarray(conv).copy(), int(round(dur or 0))))
    return out


def pillow_meta(path) -> dict:
    """Container-level facts as Pillow reads them.

    Keys: ``format`` ("GIF"/"WEBP"/...), ``width``, ``height``, ``n_frames``,
    ``is_animated``, ``loop`` (``None`` when the file has no loop field: a GIF
    without a NETSCAPE2.0 block plays once; 0 = forever), ``durations_ms``.
    """
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        info = {
            "format": im.format,
            "width": im.width,
            "height": im.height,
            "n_frames": getattr(im, "n_frames", 1),
            "is_animated": bool(getattr(im, "is_animated", False)),
            "loop": im.info.get("loop"),
        }
        durations = []
        for frame in ImageSequence.Iterator(im):
            frame.load()  # WebP fills in the duration on load
            durations.append(int(round(frame.info.get("duration", 0) or 0)))
        info["durations_ms"] = durations
    return info


# --------------------------------------------------------------------------
# ffprobe
# --------------------------------------------------------------------------

def _f(x) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _i(x) -> int | None:
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


def ffprobe_info(path, *, missing: str = "skip", frames: bool = True) -> dict | None:
    """What ffprobe makes of a file (first video stream).

    Keys: ``format_name`` (e.g. "gif", "webp_pipe", "mov,mp4,m4a,3gp,3g2,mj2"),
    ``duration`` (s, or None), ``size`` (bytes), ``codec``, ``width``,
    ``height``, ``nb_frames`` (the stream header's count, None if absent),
    ``frames`` (frames actually decoded by ``-show_frames``; None with
    ``frames=False``), ``pts`` and ``durations`` (per decoded frame, seconds;
    None entries where ffprobe gives none), ``rotation`` (display-matrix
    degrees, CCW, or None), ``pix_fmt``, ``has_audio``, ``decodable`` (at
    least one frame decoded), and ``raw`` (ffprobe's JSON).  A file with no
    video stream gives ``codec=None``, ``width=height=0``.

    GIF: ffprobe reads delays and frame counts correctly, but its GIF demuxer
    mimics browsers: delays below 2 cs (0 or 1 cs) come back as 0.1 s, not as
    stored (use ``gifsicle_info`` for the stored delays).

    Animated WebP: *ffprobe cannot read it.*  With the system ffprobe (5.1,
    Debian 12) and with FFmpeg 8 inside PyAV alike, an animated WebP is
    demuxed as ``format_name == "webp_pipe"`` with one "webp" stream of
    ``width == height == 0``, ``nb_frames`` absent, time base 1/25, and every
    packet fails to decode ("image data not found"/"Invalid data"), so
    ``frames == 0`` and ``decodable`` is False; durations and loop count are
    not available.  Use ``webpmux_info`` / ``pillow_frames`` for WebP.
    (Still, non-animated WebP files do decode.)  Likewise ffprobe never
    reports a GIF's loop count.

    Returns None (``missing="none"``) or skips (default) when ffprobe is absent.
    """
    exe = _tool("ffprobe", missing)
    if exe is None:
        return None
    args = [exe, "-v", "error", "-show_format", "-show_streams"]
    if frames:
        args += ["-show_frames", "-select_streams", "v:0"]
    args += ["-of", "json", str(path)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    try:
        raw = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        raw = {}
    if proc.returncode != 0 and not raw.get("format"):
        raise ToolError(f"ffprobe failed (rc={proc.returncode}) on {path}: {proc.stderr.strip()[:2000]}")
    fmt = raw.get("format", {})
    streams = raw.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    # with -select_streams only the selected stream is listed; ask again for audio when needed
    has_audio = any(s.get("codec_type") == "audio" for s in streams)
    if frames and not has_audio and int(fmt.get("nb_streams", 0) or 0) > len(streams):
        extra = subprocess.run([exe, "-v", "error", "-show_streams", "-of", "json", str(path)],
                               capture_output=True, text=True, timeout=60)
        try:
            has_audio = any(s.get("codec_type") == "audio"
                            for s in json.loads(extra.stdout or "{}").get("streams", []))
        except json.JSONDecodeError:
            pass
    rotation = None
    if video:
        for sd in video.get("side_data_list", []) or []:
            if "rotation" in sd:
                rotation = _f(sd["rotation"])
        if rotation is None and "rotate" in (video.get("tags") or {}):
            rotation = -_f(video["tags"]["rotate"])  # old-style tag is clockwise
    info = {
        "format_name": fmt.get("format_name"),
        "duration": _f(fmt.get("duration")),
        "size": _i(fmt.get("size")),
        "codec": video.get("codec_name") if video else None,
        "width": _i(video.get("width")) or 0 if video else 0,
        "height": _i(video.get("height")) or 0 if video else 0,
        "pix_fmt": video.get("pix_fmt") if video else None,
        "nb_frames": _i(video.get("nb_frames")) if video else None,
        "rotation": rotation,
        "has_audio": has_audio,
        "frames": None,
        "pts": None,
        "durations": None,
        "decodable": None,
        "raw": raw,
    }
    if frames:
        fr = [f for f in raw.get("frames", []) if f.get("media_type", "video") == "video"]
        info["frames"] = len(fr)
        info["pts"] = [_f(f.get("pts_time", f.get("best_effort_timestamp_time"))) for f in fr]
        # FFmpeg >= 6 says duration_time, older ones pkt_duration_time
        info["durations"] = [_f(f.get("duration_time", f.get("pkt_duration_time"))) for f in fr]
        info["decodable"] = len(fr) > 0
    return info


# --------------------------------------------------------------------------
# gifsicle
# --------------------------------------------------------------------------

_IMG_RE = re.compile(r"^\s*\+ image #(\d+)\s+(\d+)x(\d+)(?:\s+at\s+(\d+),(\d+))?(.*)$")


def gifsicle_info(path, *, missing: str = "skip") -> dict | None:
    """``gifsicle --info`` parsed.

    Keys: ``frames`` (image count), ``width``/``height`` and ``screen``
    (logical screen), ``delays_cs`` (stored delay per image, centiseconds; 0
    when absent), ``loop`` (None: no NETSCAPE loop block, plays once; 0: loop
    forever; N: "loop count N"), ``global_colors`` (global colour table size or
    None), ``background``, ``images`` (per image: ``width``, ``height``,
    ``x``, ``y``, ``delay_cs``, ``disposal``, ``transparent``,
    ``local_colors``, ``interlaced``), ``raw`` (the text).
    """
    exe = _tool("gifsicle", missing)
    if exe is None:
        return None
    text = _run([exe, "--info", str(path)])
    info: dict = {"frames": 0, "width": None, "height": None, "screen": None, "delays_cs": [],
                  "loop": None, "global_colors": None, "background": None, "images": [], "raw": text}
    cur = None
    for line in text.splitlines():
        s = line.strip()
        m = _IMG_RE.match(line)
        if m:
            cur = {"index": int(m.group(1)), "width": int(m.group(2)), "height": int(m.group(3)),
                   "x": int(m.group(4) or 0), "y": int(m.group(5) or 0), "delay_cs": 0,
                   "disposal": None, "transparent": None, "local_colors": None,
                   "interlaced": "interlaced" in (m.group(6) or "")}
            t = re.search(r"transparent (\d+)", m.group(6) or "")
            if t:
                cur["transparent"] = int(t.group(1))
            info["images"].append(cur)
            continue
        if s.startswith("* ") and info["screen"] is None:
            continue
        if (m2 := re.match(r"logical screen (\d+)x(\d+)", s)):
            info["width"], info["height"] = int(m2.group(1)), int(m2.group(2))
            info["screen"] = (info["width"], info["height"])
        elif s == "loop forever":
            info["loop"] = 0
        elif (m2 := re.match(r"loop count (\d+)", s)):
            info["loop"] = int(m2.group(1))
        elif (m2 := re.match(r"global color table \[(\d+)\]", s)):
            info["global_colors"] = int(m2.group(1))
        elif (m2 := re.match(r"background (\d+)", s)):
            info["background"] = int(m2.group(1))
        elif cur is not None:
            if (m2 := re.search(r"delay ([\d.]+)s", s)):
                cur["delay_cs"] = int(round(float(m2.group(1)) * 100))
            if (m2 := re.search(r"disposal (\w+)", s)):
                cur["disposal"] = m2.group(1)
            if (m2 := re.match(r"local color table \[(\d+)\]", s)):
                cur["local_colors"] = int(m2.group(1))
    info["frames"] = len(info["images"])
    info["delays_cs"] = [im["delay_cs"] for im in info["images"]]
    return info


# --------------------------------------------------------------------------
# webpmux
# --------------------------------------------------------------------------

def webpmux_info(path, *, missing: str = "skip") -> dict | None:
    """``webpmux -info`` parsed.

    Keys: ``width``/``height`` and ``canvas`` (canvas size), ``features``
    (text after "Features present:"), ``animated``, ``frames`` (1 for a still
    image), ``durations_ms`` (per frame; [] for a still image), ``loop``
    (0 = forever; None for a still image), ``background`` (ARGB int),
    ``frame_table`` (per frame: ``width``, ``height``, ``alpha``,
    ``x_offset``, ``y_offset``, ``duration``, ``dispose``, ``blend``,
    ``image_size``, ``compression``), ``raw`` (the text).
    """
    exe = _tool("webpmux", missing)
    if exe is None:
        return None
    text = _run([exe, "-info", str(path)])
    info: dict = {"width": None, "height": None, "canvas": None, "features": None,
                  "animated": False, "frames": 1, "durations_ms": [], "loop": None,
                  "background": None, "frame_table": [], "raw": text}
    header: list[str] | None = None
    for line in text.splitlines():
        s = line.strip()
        if (m := re.match(r"Canvas size:\s*(\d+)\s*x\s*(\d+)", s)):
            info["width"], info["height"] = int(m.group(1)), int(m.group(2))
            info["canvas"] = (info["width"], info["height"])
        elif s.startswith("Features present:"):
            info["features"] = s.split(":", 1)[1].strip()
            info["animated"] = "animation" in info["features"]
        elif (m := re.search(r"Loop Count\s*:\s*(\d+)", s)):
            info["loop"] = int(m.group(1))
            if (b := re.search(r"Background color\s*:\s*(0x[0-9a-fA-F]+)", s)):
                info["background"] = int(b.group(1), 16)
        elif (m := re.match(r"Number of frames:\s*(\d+)", s)):
            info["frames"] = int(m.group(1))
        elif s.startswith("No.:"):
            header = s.split(":", 1)[1].split()
        elif header and (m := re.match(r"(\d+):\s+(.*)$", s)):
            cells = m.group(2).split()
            row: dict = {"no": int(m.group(1))}
            for key, val in zip(header, cells):
                row[key] = int(val) if re.fullmatch(r"-?\d+", val) else val
            info["frame_table"].append(row)
    if info["frame_table"]:
        info["durations_ms"] = [int(r.get("duration", 0)) for r in info["frame_table"]]
    return info


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

def _durations(frames_with_durations) -> list[float]:
    out = []
    for item in frames_with_durations:
        d = item[1] if isinstance(item, (tuple, list)) else item
        out.append(float(d))
    return out


def _clamp(durs: list[float], clamp_gif_delays: bool) -> list[float]:
    if not clamp_gif_delays:
        return durs
    # Chrome/Firefox/Safari show GIF frames with a delay of 0 or 1 cs for 100 ms.
    return [100.0 if d <= 10.0 else d for d in durs]


def frame_start_times(frames_with_durations, *, clamp_gif_delays: bool = False) -> list[float]:
    """Start time (seconds) of every frame, from ``(frame, duration_ms)`` pairs
    (as ``pillow_frames`` returns) or plain durations in ms."""
    durs = _clamp(_durations(frames_with_durations), clamp_gif_delays)
    starts, t = [], 0.0
    for d in durs:
        starts.append(t / 1000.0)
        t += d
    return starts


def displayed_index_at(frames_with_durations: Sequence, t_seconds: float, *,
                       loop: bool = True, clamp_gif_delays: bool = False) -> int:
    """Position (0-based) of the frame a viewer shows ``t_seconds`` after the
    animation starts.

    ``frames_with_durations`` is what ``pillow_frames`` returns (or a plain
    list of durations in ms).  Frame k is shown on the half-open interval
    [start_k, start_k + duration_k).  Past the end the animation wraps when
    ``loop`` (true for loop=0 files), else it stays on the last frame.
    Zero-duration frames are never shown (unless all are zero: then frame 0).
    ``clamp_gif_delays`` applies the browser rule for GIF (delays <= 10 ms
    shown as 100 ms).
    """
    durs = _clamp(_durations(frames_with_durations), clamp_gif_delays)
    if not durs:
        raise ValueError("no frames")
    if t_seconds < 0:
        raise ValueError("t_seconds must be >= 0")
    total = sum(durs)
    if total <= 0:
        return 0
    t_ms = t_seconds * 1000.0
    if t_ms >= total:
        if not loop:
            return len(durs) - 1
        t_ms = t_ms % total
    # tolerate float noise at boundaries (e.g. 0.1 s * 1000 = 100.00000000000001)
    t_ms = round(t_ms, 6)
    acc = 0.0
    for k, d in enumerate(durs):
        acc += d
        if t_ms < round(acc, 6):
            return k
    return len(durs) - 1


def shown_at_instants(path, count: int, fps: float) -> list:
    """What a viewer sees of the animation at ``path`` in the middle of each of its first ``count``
    instants at ``fps`` (RGB arrays, Pillow's decoding): the frames two animations are compared by."""
    frames = pillow_frames(path)
    return [displayed_frame_at(frames, (k + 0.5) / fps) for k in range(count)]


def displayed_frame_at(frames_with_durations: Sequence, t_seconds: float, *,
                       loop: bool = True, clamp_gif_delays: bool = False):
    """The frame image a viewer shows ``t_seconds`` after the animation starts.

    ``frames_with_durations`` is ``[(image, duration_ms), ...]`` as
    ``pillow_frames`` returns; the result is that list's ``image`` for the
    frame on screen (``displayed_index_at`` gives its position instead, and
    documents the timing rules and keyword arguments).
    """
    k = displayed_index_at(frames_with_durations, t_seconds, loop=loop,
                           clamp_gif_delays=clamp_gif_delays)
    item = frames_with_durations[k]
    if not isinstance(item, (tuple, list)):
        raise TypeError("displayed_frame_at needs (image, duration_ms) pairs; "
                        "use displayed_index_at with plain durations")
    return item[0]


# --- headless Chromium -------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE = """<!doctype html><html><body><script>
const results = {};
const names = %s;
let pending = names.length;
for (const name of names) {
  const img = new Image();
  img.onload = () => { results[name] = [img.naturalWidth, img.naturalHeight]; done(); };
  img.onerror = () => { results[name] = "error"; done(); };
  img.src = name;
}
function done() { if (--pending === 0) { const p = document.createElement("pre"); p.id = "out";
  p.textContent = JSON.stringify(results); document.body.appendChild(p); } }
</script></body></html>"""


def load_in_chromium(folder: Path, names: list[str]) -> dict:
    """Load each of ``names`` (URLs, or paths relative to ``folder``) as an <img> in headless
    Chromium: name -> [naturalWidth, naturalHeight], or "error"."""
    page = folder / "page.html"
    page.write_text(PAGE % json.dumps(names))
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={folder / 'profile'}", "--allow-file-access-from-files",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, re.S)
    assert found, f"Chromium printed no result: {done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


def gif_images(data: bytes) -> tuple[int, list[dict]]:
    """The global table's entries, and per stored image: its rectangle, its local table's entries
    (0: none), its LZW minimum code size and its delay (cs); walked from the bytes themselves."""
    assert data[:6] == b"GIF89a" and data[-1:] == b"\x3b"
    flags = data[10]
    global_entries = 2 << (flags & 7) if flags & 0x80 else 0
    at, delay, images = 13 + 3 * global_entries, None, []
    while data[at] != 0x3B:
        if data[at] == 0x21:  # extension: label, then sub-blocks
            if data[at + 1] == 0xF9:
                delay = int.from_bytes(data[at + 4:at + 6], "little")
            at += 2
        else:
            assert data[at] == 0x2C
            left, top, width, height = (int.from_bytes(data[at + 1 + 2 * i:at + 3 + 2 * i], "little") for i in range(4))
            local = 2 << (data[at + 9] & 7) if data[at + 9] & 0x80 else 0
            at += 10 + 3 * local
            images.append({"rect": (left, top, width, height), "local": local, "code_bits": data[at], "delay": delay})
            at += 1
        while data[at]:  # sub-blocks up to the terminator
            at += data[at] + 1
        at += 1
    return global_entries, images
