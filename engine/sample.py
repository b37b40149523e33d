"""A small synthetic video and manifest for `make demo`, so a first run needs no footage.

Run as ``python -m engine.sample FOLDER``: writes FOLDER/sample.mp4 (4 s, 25 fps, H.264, a
moving colour gradient with a bouncing square) and FOLDER/manifest.jsonl with a GIF job, a WebP
job in the VOD template shape, a trim-mode job and one deliberately bad line, to show what a
failure looks like.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import numpy as np


def write_sample_video(path: Path, *, seconds: float = 4.0, fps: int = 25, width: int = 480, height: int = 270) -> Path:
    """Encode the demo clip with PyAV (FFmpeg's H.264 encoder)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            phase = i / fps
            rgb = np.stack([
                127 + 127 * np.sin(xs / 40 + phase * 2),
                127 + 127 * np.sin(ys / 30 - phase * 3),
                127 + 127 * np.cos((xs + ys) / 60 + phase),
            ], axis=-1).astype(np.uint8)
            x = int((width - 60) * abs(np.sin(phase * 1.3)))
            y = int((height - 60) * abs(np.sin(phase * 2.1)))
            rgb[y:y + 60, x:x + 60] = (255, 255, 255)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_demo(folder: Path) -> Path:
    """Write the sample video (unless it is there: a second `make demo` then shows a run that
    redoes nothing) and its manifest into ``folder``; returns the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "sample.mp4").is_file():
        write_sample_video(folder / "sample.mp4")
    jobs = [
        {"id": "bounce-gif", "input": "sample.mp4", "format": "gif", "fps": 15, "width": 320, "seek": 0.5, "duration": 2},
        {"id": "bounce-webp", "input": "sample.mp4", "TemplateConfig": {
            "Format": "webp", "Fps": "20", "Width": "320", "Height": "180", "TimeSpan": {"Seek": "1", "Duration": "2.5"}}},
        {"id": "bounce-trim", "input": "sample.mp4", "format": "gif", "fps": 10, "seek": 1, "trim_end": 1.5},
        {"id": "too-late", "input": "sample.mp4", "format": "gif", "fps": 10, "seek": 30, "duration": 2},
    ]
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return manifest


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "demo")
    print(f"wrote {write_demo(target)}")
