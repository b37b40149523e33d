"""gifski 1.7.1 as a benchmark anchor: found or installed on demand, and run on jobs.

gifski (https://gif.ski) is the GIF encoder to beat on quality. It is not a Python package and
not in Debian, but the npm package ``gifski@1.7.1`` ships a Linux x86-64 binary at
``bin/debian/gifski``. :func:`ensure` looks for it (``$GIFSKI``, then the cache, then ``gifski``
on PATH at the pinned version) and, when allowed, installs it into the cache
(``~/.cache/animated-previews/gifski/1.7.1/gifski``): ``npm pack gifski@1.7.1`` where npm is
there, else the same tarball from the npm registry over HTTPS. When none of that works it returns
no binary and a note saying why; the caller skips gifski and prints the note.

gifski takes PNG frames, so a job runs in two steps (:func:`run_gifski`): ffmpeg extracts the
frames at the job's instants and size (the same front end as the ffmpeg baseline: ``-ss``,
``fps``, Lanczos ``scale``, one thread), then ``gifski --fps F --quality 90`` encodes them. Both
steps count in the job's time.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

VERSION = "1.7.1"
QUALITY = 90  # gifski's default
MEMBER = "package/bin/debian/gifski"
TARBALL_URL = f"https://registry.npmjs.org/gifski/-/gifski-{VERSION}.tgz"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "animated-previews" / "gifski"


def version_of(binary: Path | str) -> str | None:
    """``gifski --version``'s version number, or None when it does not run."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    words = out.stdout.split()
    return words[1] if out.returncode == 0 and len(words) >= 2 and words[0] == "gifski" else None


def cached_binary(cache: Path | None = None) -> Path:
    return (cache or CACHE) / VERSION / "gifski"


def find(cache: Path | None = None) -> tuple[Path | None, str]:
    """(binary, how it was found) without installing anything; (None, why not) when absent."""
    env = os.environ.get("GIFSKI")
    if env:
        v = version_of(env)
        return (Path(env), f"$GIFSKI ({env}, gifski {v})") if v else (None, f"$GIFSKI={env} does not run")
    cached = cached_binary(cache)
    if cached.exists() and version_of(cached) == VERSION:
        return cached, f"cached ({cached})"
    on_path = shutil.which("gifski")
    if on_path and version_of(on_path) == VERSION:
        return Path(on_path), f"on PATH ({on_path})"
    return None, f"gifski {VERSION} is not installed (not in $GIFSKI, {cached} or PATH)"


def _tarball(cache: Path, log) -> bytes:
    """The npm package's tarball: ``npm pack`` when npm is there, else straight from the registry."""
    cache.mkdir(parents=True, exist_ok=True)
    kept = cache / f"gifski-{VERSION}.tgz"
    if kept.exists() and kept.stat().st_size > 0:
        return kept.read_bytes()
    errors = []
    npm = shutil.which("npm")
    if npm:
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            log(f"gifski: npm pack gifski@{VERSION} ...")
            try:
                out = subprocess.run([npm, "pack", f"gifski@{VERSION}", "--silent"], cwd=tmp, capture_output=True,
                                     text=True, timeout=300)
                packed = next(Path(tmp).glob("gifski-*.tgz"), None)
                if out.returncode == 0 and packed is not None:
                    data = packed.read_bytes()
                    kept.write_bytes(data)
                    return data
                errors.append(f"npm pack failed: {(out.stderr or out.stdout).strip()[-300:]}")
            except (OSError, subprocess.SubprocessError) as exc:
                errors.append(f"npm pack failed: {exc}")
    else:
        errors.append("npm is not installed")
    log(f"gifski: downloading {TARBALL_URL} ...")
    try:
        with urllib.request.urlopen(TARBALL_URL, timeout=120) as r:
            data = r.read()
    except OSError as exc:
        errors.append(f"download failed: {exc}")
        raise RuntimeError("; ".join(errors)) from None
    kept.write_bytes(data)
    return data


def install(cache: Path | None = None, log=lambda m: None) -> Path:
    """Install the npm package's Linux x86-64 binary into the cache; its path. Raises RuntimeError
    with the reason when it cannot."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError(f"the npm package ships a Linux x86-64 binary only (this is {platform.system()} "
                           f"{platform.machine()})")
    cache = cache or CACHE
    data = _tarball(cache, log)
    target = cached_binary(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        try:
            member = tar.getmember(MEMBER)
        except KeyError:
            raise RuntimeError(f"the gifski {VERSION} package has no {MEMBER}") from None
        blob = tar.extractfile(member)
        if blob is None:
            raise RuntimeError(f"{MEMBER} in the package is not a file")
        tmp = target.with_suffix(".part")
        tmp.write_bytes(blob.read())
    tmp.chmod(0o755)
    tmp.replace(target)
    got = version_of(target)
    if got != VERSION:
        raise RuntimeError(f"{target} does not run as gifski {VERSION} (got {got!r})")
    return target


def ensure(cache: Path | None = None, *, allow_install: bool = True, log=lambda m: None) -> tuple[Path | None, str]:
    """(binary, note): found, else installed when ``allow_install``; (None, why) when neither."""
    binary, note = find(cache)
    if binary is not None or not allow_install:
        return binary, note
    try:
        binary = install(cache, log)
    except RuntimeError as exc:
        return None, f"gifski skipped: {exc}"
    return binary, f"installed ({binary})"


def frames_command(job, frames_dir: Path, size: tuple[int, int] | None) -> list[str]:
    """ffmpeg: the job's frames as PNG (the ffmpeg baseline's front end: ``-ss``, ``fps``, Lanczos)."""
    fps_q = Fraction(str(job.fps))
    chain = f"fps={fps_q.numerator}/{fps_q.denominator}"
    if size is not None:  # a missing side keeps the aspect ratio, as the harness's ffmpeg command
        chain += f",scale={size[0] or -1}:{size[1] or -1}:flags=lanczos"
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1", "-ss", repr(job.seek),
            "-i", str(job.input), "-t", repr(job.duration), "-an", "-sn", "-dn", "-filter_threads", "1", "-vf", chain,
            "-pix_fmt", "rgb24", "-compression_level", "1", str(frames_dir / "f%05d.png")]


def encode_command(binary: Path, job, frames: list[Path], out: Path, size: tuple[int, int]) -> list[str]:
    """gifski on the extracted frames. ``-W``/``-H`` at the frames' size: without them gifski
    shrinks anything larger than about 800x600."""
    quality = QUALITY if job.quality is None else job.quality
    return [str(binary), "--quiet", "--fps", f"{job.fps:g}", "--quality", str(quality), "-W", str(size[0]),
            "-H", str(size[1]), "-o", str(out), *map(str, frames)]


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def run_gifski(jobs: list, out_dir: Path, *, workers: int, binary: Path | None,
               sizes: dict[str, tuple[int, int] | None] | None = None) -> dict:
    """Every job through ffmpeg (PNG frames) + gifski, ``workers`` jobs at a time; a run record
    shaped as bench/harness.py's (``wall_s``, ``results`` with ``timings.total`` per job, ...).
    ``sizes``: job id -> (w, h) to extract at (None or absent: the job's width/height, else the
    source's displayed size). With no binary every job is skipped (status ``skipped``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = sizes or {}
    if not jobs:
        return {"wall_s": 0.0, "cpu_s": 0.0, "results": [], "done_at_s": [], "error": None, "command": None}
    if binary is None:
        return {"wall_s": None, "cpu_s": None, "done_at_s": [], "error": "gifski is not available",
                "results": [{"id": j.id, "status": "skipped", "output": None, "bytes": None, "timings": {},
                             "error_message": "gifski is not available"} for j in jobs]}
    t0 = time.perf_counter()
    cpu0 = os.times()

    def one(job) -> dict:
        s0 = time.perf_counter()
        out = out_dir / f"{job.id}.gif"
        frames_dir = out_dir / f"{job.id}.frames"
        shutil.rmtree(frames_dir, ignore_errors=True)
        frames_dir.mkdir()
        size = sizes.get(job.id) or ((job.width, job.height) if job.width or job.height else None)
        cmd1 = frames_command(job, frames_dir, size)
        r1 = subprocess.run(cmd1, capture_output=True, text=True)
        frames = sorted(frames_dir.glob("f*.png"))
        extract_s = time.perf_counter() - s0
        if r1.returncode != 0 or not frames:
            shutil.rmtree(frames_dir, ignore_errors=True)
            return {"id": job.id, "status": "failed", "output": None, "bytes": None,
                    "timings": {"total": time.perf_counter() - s0},
                    "error_message": f"frame extraction: {r1.stderr.strip()[-500:] or 'no frames'}"}
        cmd2 = encode_command(binary, job, frames, out, _png_size(frames[0]))
        r2 = subprocess.run(cmd2, capture_output=True, text=True)
        total = time.perf_counter() - s0
        shutil.rmtree(frames_dir, ignore_errors=True)
        ok = r2.returncode == 0 and out.exists() and out.stat().st_size > 0
        return {"id": job.id, "status": "success" if ok else "failed", "output": str(out) if ok else None,
                "bytes": out.stat().st_size if ok else None, "frames": len(frames),
                "timings": {"total": total, "extract": extract_s, "encode": total - extract_s},
                "done_at_s": time.perf_counter() - t0,
                "error_message": None if ok else (r2.stderr.strip()[-500:] or f"exit {r2.returncode}"),
                "command": [" ".join(cmd1), " ".join(cmd2[:-len(frames)]) + " FRAMES..."]}

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, jobs))
    wall = time.perf_counter() - t0
    cpu1 = os.times()
    cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    return {"wall_s": wall, "cpu_s": cpu, "results": results, "done_at_s": [r.get("done_at_s") for r in results],
            "error": None, "command": next((r["command"] for r in results if r.get("command")), None)}
