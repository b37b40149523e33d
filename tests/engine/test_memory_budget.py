"""A job's memory is budgeted by what it really holds (every output frame, their working copies,
a decode chunk at source size), per worker, from this machine's memory; a job past it is refused
before decoding, naming the estimate and what to lower.

Run as a script, this file measures one job's peak instead (``--probe``, below): it is how the
figures in :func:`engine.job.job_memory_estimate`'s docstring were taken::

    .venv/bin/python tests/engine/test_memory_budget.py CLIP FORMAT FPS WIDTH DURATION [SEEK [THREADS]]
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from animated_previews.engine import job as engine_job
from animated_previews.engine import load_manifest, memory, run_batch
from animated_previews.engine.decode.pyav import PyAVDecoder
from animated_previews.engine.errors import EngineError
from animated_previews.engine.probe import MediaInfo
from animated_previews.engine.spec import parse_job
from animated_previews.engine.timeline import plan_timeline

GiB = 2**30


@pytest.fixture(autouse=True)
def no_budget_set(monkeypatch):
    """Each test starts from the machine's budget: nothing set by a pool, no variable."""
    monkeypatch.delenv(memory.BUDGET_ENV, raising=False)
    monkeypatch.setattr(memory, "_budget", None)
    monkeypatch.setattr(engine_job, "FRAME_MEMORY_BUDGET", None)


@pytest.fixture(scope="module")
def one_fps_clip(tmp_path_factory) -> Path:
    """20 s of 320x240 at 1 fps: a slide show, or a timelapse."""
    import clipmaker

    return clipmaker.make_clip(tmp_path_factory.mktemp("src") / "slides.mp4", fps=1, frames=21, gop=5)


def a_machine(monkeypatch, memory_bytes: int, cores: int) -> None:
    monkeypatch.setattr(memory, "machine_memory", lambda: memory_bytes)
    monkeypatch.setattr(memory, "usable_cores", lambda: cores)


def media(width: int, height: int, fps: float, duration: float) -> MediaInfo:
    return MediaInfo(path=Path("/videos/in.mp4"), container="mp4", stream_index=0, codec="h264", width=width,
                     height=height, pixel_format="yuv420p", sample_aspect_ratio=Fraction(1), fps=fps,
                     duration=duration, duration_source="stream", start_time=0.0, video_streams=1)


def check(fields: dict, source: MediaInfo) -> None:
    """The job's memory check alone, as run_job makes it after probing ``source``."""
    spec = parse_job({"input": str(source.path), **fields}, default_id="j", input_root=Path("/"))
    fmt = engine_job.get_format(spec.format)
    engine_job._check_frame_memory(spec, fmt, source, plan_timeline(spec, source))


# -- the estimate counts output frames, not distinct source frames -------------------------------

def test_a_1_fps_source_sampled_at_60_fps_is_refused_for_the_frames_the_encoder_holds(monkeypatch):
    """The issue's case: 25 s of a 1 fps 2048x2048 source as a 60 fps WebP holds 1500 RGB frames
    of 2048x2048 (18.2 GiB with the rest), though only 26 distinct frames are decoded (the old bound counted
    those: 0.3 GiB, and the job was killed for memory). On a 2-core, 24 GiB machine it is
    refused; its GIF (1250 frames of 1 byte a pixel, about 5.5 GiB) fits."""
    a_machine(monkeypatch, 24 * GiB, 2)
    slides = media(2048, 2048, 1.0, 30.0)
    job = {"format": "webp", "fps": 60, "width": 2048, "height": 2048, "duration": 25}

    with pytest.raises(EngineError) as refused:
        check(job, slides)
    assert refused.value.code.value == "InvalidParameter"
    message = refused.value.message
    assert "1500 output frames of 2048x2048" in message and "RGB" in message
    assert "about 18.17 GiB" in message and "at most 8.61 GiB per job" in message, message
    assert "lower fps" in message and "shorten the duration" in message and memory.BUDGET_ENV in message

    check({**job, "format": "gif"}, slides)  # 50 fps at most: 1250 frames of palette indices


def test_a_job_just_under_the_old_6_gib_bound_is_refused_where_it_would_peak_near_twice_that(monkeypatch):
    """2300 frames of 1280x720 were 5.9 GiB of distinct frames, under the old 6 GiB bound; such a
    job held 12.5 GiB (decoded frames joined, then gathered for the encoder)."""
    a_machine(monkeypatch, 24 * GiB, 2)
    source = media(1280, 720, 25.0, 120.0)
    with pytest.raises(EngineError, match=r"needs about 12\.01 GiB"):
        check({"format": "webp", "fps": 25, "width": 1280, "height": 720, "duration": 92}, source)
    check({"format": "webp", "fps": 25, "width": 1280, "height": 720, "duration": 30}, source)  # 4.0 GiB


def test_the_estimate_grows_with_output_frames_and_output_size_and_webp_holds_three_times_gifs():
    def estimate(palette: bool, frames: int, distinct: int, side: int) -> int:
        return engine_job.job_memory_estimate(palette=palette, frames=frames, distinct=distinct, width=side,
                                              height=side, source_width=1024, source_height=1024)

    fixed = estimate(False, 1, 1, 1)
    frame = 1024 * 1024  # pixels; one frame's working copies are 10 bytes a pixel
    assert estimate(False, 600, 10, 1024) - fixed == pytest.approx((3 * 610 + 10) * frame, rel=0.001)
    assert estimate(True, 600, 10, 1024) - fixed == pytest.approx((4 * 10 + 600 + 10) * frame, rel=0.001)
    # every distinct frame an output frame: the decoder's join of its chunks (6 bytes a pixel) bounds both
    assert estimate(True, 300, 300, 512) == estimate(False, 300, 300, 512)
    assert estimate(False, 600, 10, 512) < estimate(False, 600, 10, 1024) / 3


# -- the estimate against measured peaks ----------------------------------------------------------

def probe_peak(clip: Path, fmt: str, fps: float, width: int, duration: float, seek: float = 0.0,
               threads: int = 1) -> dict:
    """One job's peak resident memory over its worker's, in a fresh process (see ``--probe``)."""
    done = subprocess.run([sys.executable, __file__, "--probe", str(clip), fmt, str(fps), str(width), str(duration),
                           str(seek), str(threads)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("fmt, fps", [("webp", 60), ("gif", 50)])
def test_the_estimate_covers_the_peak_measured_for_a_slow_source_sampled_fast(one_fps_clip, fmt, fps):
    """1 fps sampled at 50-60 fps for 20 s: 1000-1200 output frames of 320x240 from 21 distinct
    ones. The estimate is an upper bound, and a close one where the frames dominate (WebP:
    measured 0.27 GiB over the worker's, estimated 0.33; GIF: 0.08 and 0.15)."""
    peak = probe_peak(one_fps_clip, fmt, fps, 320, 20)
    assert peak["frames"] == (1200 if fmt == "webp" else 1000)
    assert peak["peak"] <= peak["estimate"], peak
    if fmt == "webp":
        assert peak["estimate"] <= 1.5 * peak["peak"], peak
    else:  # 75 MB of indices: the fixed allowances weigh more
        assert peak["estimate"] <= peak["peak"] + 2 * engine_job.JOB_OVERHEAD, peak


# -- the budget: this machine's memory shared by the workers --------------------------------------

def test_the_budget_is_the_machines_memory_shared_by_the_workers_less_each_workers_own(monkeypatch):
    a_machine(monkeypatch, 24 * GiB, 2)
    assert memory.job_memory_budget().bytes == int(24 * GiB * 0.75 / 2 - memory.WORKER_BASE)  # default: one per core
    assert memory.job_memory_budget(1).bytes == int(24 * GiB * 0.75 - memory.WORKER_BASE)
    assert memory.job_memory_budget(4).bytes == int(24 * GiB * 0.75 / 4 - memory.WORKER_BASE)
    assert "24.0 GiB x 0.75 shared by the 4 workers" in memory.job_memory_budget(4).source
    assert memory.job_budget() == memory.job_memory_budget(2)  # in-process, nothing set: as many as cores
    told = memory.Budget(123456, "the pool's")
    memory.set_job_budget(told)  # what a pool's worker is told
    assert memory.job_budget() == told


def test_the_budget_variable_overrides_the_machines_share(monkeypatch):
    a_machine(monkeypatch, 24 * GiB, 2)
    for text, size in (("6G", 6 * GiB), ("512M", 512 * 2**20), ("1.5g", int(1.5 * GiB)), ("123456789", 123456789),
                       ("64 MiB", 64 * 2**20)):
        monkeypatch.setenv(memory.BUDGET_ENV, text)
        assert memory.job_memory_budget(7) == memory.Budget(size, f"${memory.BUDGET_ENV}={text}")
    monkeypatch.setenv(memory.BUDGET_ENV, "lots")
    with pytest.raises(EngineError, match=f"{memory.BUDGET_ENV} must be a size"):
        memory.job_memory_budget()


def test_a_malformed_budget_variable_fails_each_job_with_a_clear_message(monkeypatch, tmp_path, h264_clip):
    monkeypatch.setenv(memory.BUDGET_ENV, "-1")
    spec = parse_job({"input": str(h264_clip), "format": "gif", "fps": 5, "duration": 1}, default_id="j",
                     input_root=tmp_path)
    result = engine_job.run_job(spec, tmp_path / "out", PyAVDecoder())
    assert result.error_code == "InvalidParameter" and memory.BUDGET_ENV in result.error_message


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_containers_memory_limit_counts_when_lower_than_the_machines(tmp_path, version):
    root, self_cgroup = tmp_path / "cgroup", tmp_path / "self-cgroup"
    if version == "v2":
        (root / "jobs" / "batch").mkdir(parents=True)
        (root / "memory.max").write_text("max\n")
        (root / "jobs" / "memory.max").write_text(f"{8 * GiB}\n")
        (root / "jobs" / "batch" / "memory.max").write_text("max\n")
        self_cgroup.write_text("0::/jobs/batch\n")
    else:
        (root / "memory" / "docker" / "abc").mkdir(parents=True)
        (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
        (root / "memory" / "docker" / "abc" / "memory.limit_in_bytes").write_text(f"{6 * GiB}\n")
        self_cgroup.write_text("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n")
    assert memory.cgroup_limit(root, self_cgroup) == (8 * GiB if version == "v2" else 6 * GiB)
    self_cgroup.write_text("0::/\n")
    assert memory.cgroup_limit(root, self_cgroup) is None


def test_this_machines_memory_is_its_physical_memory_or_its_cgroups_limit():
    import os

    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < memory.machine_memory() <= physical
    limit = memory.cgroup_limit()
    assert memory.machine_memory() == (min(physical, limit) if limit else physical)


# -- refused up front, through the pool ----------------------------------------------------------

def write_manifest(folder: Path, jobs: list[dict]) -> Path:
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    return path


def test_a_pool_hands_its_workers_the_budget_set_when_the_run_starts(tmp_path, monkeypatch, one_fps_clip):
    """The variable is read by the run (the workers' forkserver may have started long before):
    with 100 MiB a job, a 1200-frame WebP of 320x240 (0.34 GiB) is refused before decoding, with
    the estimate and what to lower, and a small GIF of the same clip runs."""
    monkeypatch.setenv(memory.BUDGET_ENV, "100M")
    jobs = [{"id": "big", "input": str(one_fps_clip), "format": "webp", "fps": 60, "duration": 20},
            {"id": "small", "input": str(one_fps_clip), "format": "gif", "fps": 2, "duration": 3}]
    results = {r.id: r for r in run_batch(load_manifest(write_manifest(tmp_path, jobs)), tmp_path / "out", workers=2)}

    big = results["big"]
    assert big.error_code == "InvalidParameter" and big.timings.get("decode") is None
    assert "1200 output frames of 320x240" in big.error_message and "GiB" in big.error_message
    assert "at most 0.10 GiB per job" in big.error_message and memory.BUDGET_ENV in big.error_message
    assert results["small"].ok, results["small"].error_message


def test_the_budget_is_per_worker_in_flight(tmp_path, monkeypatch, one_fps_clip):
    """The same job (0.33 GiB) on a machine of 1.1 GiB: refused with two workers (each may hold
    0.02 GiB), made with one (0.43 GiB)."""
    a_machine(monkeypatch, int(1.1 * GiB), 2)  # in this process: the run computes the budget for its workers
    jobs = [{"id": "big", "input": str(one_fps_clip), "format": "webp", "fps": 60, "duration": 20}]
    manifest = write_manifest(tmp_path, jobs)

    two = next(iter(run_batch(load_manifest(manifest), tmp_path / "two", workers=2)))
    assert two.error_code == "InvalidParameter" and "shared by the 2 workers in flight" in two.error_message
    one = next(iter(run_batch(load_manifest(manifest), tmp_path / "one", workers=1)))
    assert one.ok and one.frames == 1200, one.error_message


def test_running_out_of_memory_inside_a_job_is_resource_exhausted(tmp_path, monkeypatch, h264_clip):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(engine_job, "render", no_memory)
    spec = parse_job({"input": str(h264_clip), "format": "gif", "fps": 5, "duration": 1}, default_id="j",
                     input_root=tmp_path)
    result = engine_job.run_job(spec, tmp_path / "out", PyAVDecoder())
    assert result.error_code == "ResourceExhausted" and "lower the output size" in result.error_message


# -- the probe ------------------------------------------------------------------------------------

def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def _probe(clip: str, fmt: str, fps: str, width: str, duration: str, seek: str = "0", threads: str = "1") -> dict:
    """Run one job in this (fresh) process as a worker would and measure its peak: a warm-up job
    first (libraries, kernels), then the peak RSS (VmHWM, reset through /proc/self/clear_refs)
    over the RSS before the job. Prints the measure, the job's estimate at its real output size,
    and the decode's distinct (U) and output (N) frame counts."""
    import tempfile

    import torch

    torch.set_num_threads(int(threads))
    decoder = PyAVDecoder(threads=int(threads))
    out = Path(tempfile.mkdtemp())
    engine_job.FRAME_MEMORY_BUDGET = 1 << 50  # measure, never refuse

    def spec(**fields):
        return parse_job({"input": clip, "format": fmt, **fields}, default_id="probe", input_root=Path("."))

    assert engine_job.run_job(spec(fps=2, duration=1, width=64), out, decoder).ok
    asked: list[dict] = []
    estimate = engine_job.job_memory_estimate

    def recording(**fields):
        asked.append(fields)
        return estimate(**fields)

    engine_job.job_memory_estimate = recording
    decode = decoder.decode_frames
    counts = {}

    def counting(media, instants, fit=None):
        clip_ = decode(media, instants, fit)
        counts.update(distinct=int(clip_.frames.shape[0]), frames=int(clip_.index.shape[0]))
        return clip_

    decoder.decode_frames = counting
    gc.collect()
    before = _rss("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    result = engine_job.run_job(spec(fps=float(fps), duration=float(duration), seek=float(seek), width=int(width)),
                                out, decoder)
    peak = _rss("VmHWM") - before
    assert result.ok, result.error_message
    return {"peak": peak, "worker": before, "estimate": estimate(**{**asked[-1], "width": result.width,
                                                                      "height": result.height}),
            "bound": estimate(**asked[-1]), "width": result.width, "height": result.height, **counts}


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments and arguments[0] == "--probe":
        arguments = arguments[1:]
    print(json.dumps(_probe(*arguments)))
