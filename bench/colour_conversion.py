"""8-bit 4:2:0 -> RGB: how far each conversion lands from the picture, and what it costs.

Five 960x540 masters in 4:4:4 RGB (testsrc2, and frames of the NASA clip, Big Buck Bunny, the
screen recording and the talking head of the previews library, each made RGB with FFmpeg's
accurate scaler) are made 4:2:0 BT.709 limited range by zimg (chroma sited left, as MPEG-2/H.264
and the engine's kernel assume) and coded losslessly; each frame is then converted back:

============== =====================================================================================
ffmpeg-default PyAV's ``reformat(format="rgb24")``, FFmpeg's unscaled converter: the CPU path's
               (chroma repeated over 2x2 pixels, rounding down)
ffmpeg-accurate the same with ``SWS_BICUBIC | SWS_FULL_CHR_H_INT | SWS_ACCURATE_RND``: the
               benchmark's "players" reading (bench/psnr.py ``PLAYER_CONVERSION``)
engine-torch   :func:`kernels.colour.yuv420_to_rgb` ``chroma="bilinear"`` on CPU tensors (here on
               one CPU thread, so its time says nothing of a GPU)

Mind what this measures: 4:2:0 made by zimg, whose chroma filter suits an interpolating reader.
Clips made 4:2:0 by FFmpeg's own default scaler (the library's synthetic clips) come back closest
through FFmpeg's default reader instead: against their RGB frames, pixel_life 31.9 dB that way,
17.7 interpolated; flat_logo 37.6 against 34.2 (2026-12-05, a one-off check). Which reader suits
real footage is open (notes of 2026-12-05).
============== =====================================================================================

Per clip and conversion: mean absolute error against the master (levels), mean signed error (the
bias: negative is dark), PSNR, and ms a frame (best of 5 passes over 8 frames, one thread). The
masters go to ``bench/library/colour/`` (git-ignored with the library); results to
``bench/results/colour-conversion.{md,json}``. A benchmark: it asserts nothing.

    python -m bench.colour_conversion
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import numpy as np

from bench import report
from bench.psnr import PLAYER_CONVERSION

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "bench" / "library"
DEFAULT_OUT = LIBRARY / "colour"
RESULTS = REPO / "bench" / "results"
WIDTH, HEIGHT, FRAMES = 960, 540, 8
SOURCES = {
    "testsrc2": ["-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate=25:duration=1"],
    "live_camera_nasa": ["-ss", "1", "-i", str(LIBRARY / "live_camera_nasa.mp4")],
    "hd1080_bbb": ["-ss", "2", "-i", str(LIBRARY / "hd1080_bbb.mp4")],
    "screen_text": ["-i", str(LIBRARY / "screen_text.mp4")],
    "talking_head": ["-i", str(LIBRARY / "talking_head.mp4")],
}


def make_master(out: Path, name: str) -> tuple[Path, Path] | None:
    """``name``'s master (raw RGB24, FRAMES frames) and its lossless 4:2:0 coding; None when its
    source is missing (the library not made)."""
    source = SOURCES[name]
    given = source[source.index("-i") + 1]
    if "-f" not in source and not Path(given).exists():  # a library clip (lavfi sources need no file)
        return None
    rgb, coded = out / f"{name}.rgb", out / f"{name}.mp4"
    if not rgb.exists() or not coded.exists():
        ffmpeg = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
        scale = f"scale={WIDTH}:{HEIGHT}:flags=lanczos+accurate_rnd+full_chroma_int:out_range=pc,format=rgb24"
        subprocess.run([*ffmpeg, *source, "-frames:v", str(FRAMES), "-vf", scale, "-f", "rawvideo", str(rgb)], check=True)
        subprocess.run([*ffmpeg, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", "25",
                        "-i", str(rgb), "-vf", "zscale=m=bt709:r=tv:min=gbr:rin=pc,format=yuv420p", "-c:v", "libx264",
                        "-qp", "0", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
                        str(coded)], check=True)
    return rgb, coded


def conversions():
    """name -> function(frame) -> RGB24 [H, W, 3]."""
    import av
    import torch

    from animated_previews.kernels.colour import yuv420_to_rgb

    full = av.video.reformatter.ColorRange.JPEG

    def planes(frame):
        return [np.frombuffer(p, dtype=np.uint8).reshape(p.height, p.line_size) for p in frame.planes]

    def kernel(frame):
        y, u, v = planes(frame)
        uv = torch.from_numpy(np.stack((u[:, : WIDTH // 2], v[:, : WIDTH // 2]), axis=-1).copy())[None]
        rgb = yuv420_to_rgb(torch.from_numpy(y[:, :WIDTH].copy())[None], uv, matrix="bt709", full_range=False,
                            chroma="bilinear")
        return rgb[0].permute(1, 2, 0).numpy()

    return {
        "ffmpeg-default": lambda f: f.reformat(format="rgb24", dst_color_range=full, threads=1).to_ndarray(),
        "ffmpeg-accurate": lambda f: f.reformat(format="rgb24", dst_color_range=full, threads=1,
                                                interpolation=PLAYER_CONVERSION).to_ndarray(),
        "engine-torch": kernel,
    }


def measure(rgb: Path, coded: Path) -> dict[str, dict]:
    import av
    import torch

    torch.set_num_threads(1)
    master = np.fromfile(rgb, dtype=np.uint8).reshape(-1, HEIGHT, WIDTH, 3).astype(np.int16)
    with av.open(str(coded)) as container:
        frames = list(container.decode(video=0))[:FRAMES]
    rows = {}
    for name, convert in conversions().items():
        error = np.stack([convert(f) for f in frames]).astype(np.int16) - master[: len(frames)]
        best = None
        for _ in range(5):
            started = time.perf_counter()
            for frame in frames:
                convert(frame)
            spent = (time.perf_counter() - started) / len(frames)
            best = spent if best is None else min(best, spent)
        mse = float((error.astype(np.float64) ** 2).mean())
        rows[name] = {"mad": float(np.abs(error).mean()), "bias": float(error.mean()),
                      "bias_rgb": [float(b) for b in error.mean(axis=(0, 1, 2))],
                      "psnr_db": 10 * np.log10(255**2 / mse), "ms_per_frame": best * 1000}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the masters go (default: %(default)s)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results, lines = {}, []
    for name in SOURCES:
        made = make_master(args.out, name)
        if made is None:
            print(f"{name}: source missing (python -m bench.make_library --preset previews), skipped")
            continue
        results[name] = measure(*made)
    names = list(next(iter(results.values())))
    lines += ["# 8-bit 4:2:0 -> RGB against 4:4:4 masters", "",
              f"`python -m bench.colour_conversion` on {time.strftime('%Y-%m-%d')}: {WIDTH}x{HEIGHT}, {FRAMES} frames a clip, "
              "BT.709 limited range made 4:2:0 by zimg; error in levels of 255 (bias: mean signed error, negative is "
              "dark); ms a frame: best of 5, one thread. See the module's docstring for each conversion.", "",
              "| clip | " + " | ".join(f"{n} MAD / bias / dB / ms" for n in names) + " |",
              "|---|" + "---|" * len(names)]
    for clip, rows in results.items():
        cells = [f"{r['mad']:.2f} / {r['bias']:+.2f} / {r['psnr_db']:.2f} / {r['ms_per_frame']:.2f}"
                 for r in (rows[n] for n in names)]
        lines.append(f"| {clip} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    report.write_results({"width": WIDTH, "height": HEIGHT, "frames": FRAMES, "clips": results}, "colour-conversion",
                         RESULTS, markdown="\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
