"""The GPU node executor (engine/executors/gpu_node.py), on the CPU: a process (or a few) per
device, N decode threads in each, encoders on a pool beside them; the executor contract kept; a failing or crashing job
fails alone. The GPU is the same shape with ``cuda:k`` for ``cpu``: what only a GPU can show
(the streams, NVDEC's engines, the throughput) is left to ``make gpu-check``.

Stand-in halves (tests/gpu_node_stand_ins.py) make the concurrency visible by events: a barrier
that N decode halves can only pass together, a hand-off that only completes when an encode runs
beside a decode. No test reads a clock."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import clipmaker
import gpu_node_stand_ins
from animated_previews.cli.main import main
from animated_previews.engine import load_manifest, run_batch
from animated_previews.engine.device import DeviceRequest
from animated_previews.engine.executors import EXECUTORS, open_executor
from animated_previews.engine.executors import gpu_node
from animated_previews.engine.executors.gpu_node import GpuNodeExecutor, Stages

CPU = DeviceRequest("cpu")
STAND_INS = Stages(decode=gpu_node_stand_ins.decode, encode=gpu_node_stand_ins.encode)


def write_manifest(folder: Path, jobs: list[dict]) -> Path:
    path = folder / "m.jsonl"
    path.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    return path


def stand_in_jobs(folder: Path, ids: list[str]) -> list:
    """Manifest entries for the stand-in halves (the input is never opened)."""
    source = folder / "never-opened.mp4"
    source.write_bytes(b"")
    return load_manifest(write_manifest(folder, [{"id": i, "input": str(source), "format": "gif", "fps": 5,
                                                  "duration": 1} for i in ids]))


def run_stand_ins(tmp_path: Path, ids: list[str], *, threads: int, encoders: int = 2) -> dict:
    executor = GpuNodeExecutor(gpus=(CPU,), processes=1, threads=threads, encoders=encoders, stages=STAND_INS)
    results = list(executor.run(stand_in_jobs(tmp_path, ids), tmp_path / "out", CPU))
    assert [r.id for r in results].count(ids[0]) == 1
    return {r.id: r for r in results}


def noted(result, prefix: str) -> tuple[int, int, str]:
    """(pid, thread ident, thread name) from a stand-in's ``decoded``/``encoded`` note."""
    [note] = [n for n in result.notes if n.startswith(prefix + " ")]
    pid, ident, name = note.split(" ", 1)[1].split(":", 2)
    return int(pid), int(ident), name


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return clipmaker.make_clip(tmp_path_factory.mktemp("node") / "c.mp4", fps=10, frames=30, width=160, height=120)


# ------------------------------------------------------------------------------------------
# The shape: one process, N decode threads, an encoder pool beside them
# ------------------------------------------------------------------------------------------


def test_jobs_spread_across_the_n_decode_threads_of_one_process(tmp_path):
    ids = [f"meet3-{k}" for k in range(6)]

    results = run_stand_ins(tmp_path, ids, threads=3)

    assert sorted(results) == sorted(ids)
    assert all("met 3" in r.notes for r in results.values()), [r.notes for r in results.values()]
    decoded_by = [noted(r, "decoded") for r in results.values()]
    assert len({pid for pid, _, _ in decoded_by}) == 1  # one process for the one device
    assert decoded_by[0][0] != os.getpid()  # not the caller's
    assert len({ident for _, ident, _ in decoded_by}) == 3  # three threads decoded side by side
    assert {name for _, _, name in decoded_by} == {"decode-0", "decode-1", "decode-2"}


def test_a_device_listed_twice_gets_two_processes(tmp_path):
    executor = GpuNodeExecutor(gpus=(CPU, CPU), processes=1, threads=4, encoders=1, stages=STAND_INS)
    ids = [f"meet2-{k}" for k in range(4)]  # dealt to the emptiest process: two each, met by its two threads
    # (4 decode threads for the device, shared by its two processes)

    results = list(executor.run(stand_in_jobs(tmp_path, ids), tmp_path / "out", CPU))

    assert all("met 2" in r.notes for r in results), [r.notes for r in results]
    assert len({noted(r, "decoded")[0] for r in results}) == 2


def test_encoding_runs_on_the_pool_while_the_decode_thread_goes_on_with_the_next_job(tmp_path):
    """One decode thread: "first"'s encode waits for "second"'s decode to start, and "second"'s
    decode for "first"'s encode. Both end well only if the decode thread handed "first" to an
    encoder and went on to decode "second" while it was encoded."""
    results = run_stand_ins(tmp_path, ["first", "second"], threads=1, encoders=1)

    assert "second decoded while first encoded" in results["first"].notes, results["first"].notes
    assert not [n for n in results["second"].notes if "never" in n], results["second"].notes
    decode_pid, decode_thread, decode_name = noted(results["first"], "decoded")
    encode_pid, encode_thread, encode_name = noted(results["first"], "encoded")
    assert encode_pid == decode_pid and encode_thread != decode_thread
    assert decode_name == "decode-0" and encode_name.startswith("encode")


# ------------------------------------------------------------------------------------------
# The executor contract (engine/executors/__init__.py)
# ------------------------------------------------------------------------------------------


def test_real_jobs_give_one_result_per_entry_the_same_as_the_local_executor(tmp_path, clip):
    jobs = [{"id": f"j{k}", "input": str(clip), "format": fmt, "fps": 5, "seek": k * 0.2, "duration": 1}
            for k, fmt in enumerate(["gif", "webp", "gif", "webp"])]
    jobs.append({"id": "bad-line", "input": str(clip), "format": "tiff", "fps": 5, "duration": 1})
    entries = load_manifest(write_manifest(tmp_path, jobs))

    node = {r.id: r for r in run_batch(entries, tmp_path / "node",
                                       executor=GpuNodeExecutor(gpus=(CPU,), processes=1, threads=2, encoders=2), device="cpu")}
    local = {r.id: r for r in run_batch(entries, tmp_path / "local", workers=2, device="cpu")}

    assert sorted(node) == sorted(local) == sorted(j["id"] for j in jobs)
    for job_id, result in node.items():
        assert (result.status, result.error_code, result.width, result.height, result.frames, result.bytes) == \
               (local[job_id].status, local[job_id].error_code, local[job_id].width, local[job_id].height,
                local[job_id].frames, local[job_id].bytes), job_id
    assert node["bad-line"].error_code == "InvalidParameter"
    assert all(Path(node[f"j{k}"].output).is_file() for k in range(4))
    assert "queued" in node["j0"].timings  # the wait for an encoder is its own stage
    lines = [json.loads(line) for line in (tmp_path / "node" / "results.jsonl").read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(node)


def test_a_failing_job_fails_alone_and_the_others_succeed(tmp_path):
    ids = ["a", "raise-decode", "b", "encode-raise", "c"]

    results = run_stand_ins(tmp_path, ids, threads=2)

    assert sorted(results) == sorted(ids)
    assert [k for k in ids if results[k].ok] == ["a", "b", "c"]
    assert results["raise-decode"].error_code == "InternalError"
    assert "a bug in the decode half" in results["raise-decode"].error_message
    assert results["encode-raise"].error_code == "InternalError"


def test_a_job_that_kills_the_process_fails_alone_and_the_rest_succeed(tmp_path):
    """A native crash takes the GPU's whole process down, with every job in flight on it: those
    run again, each alone; the one that kills its process again is reported as the local
    executor reports it, the others succeed."""
    ids = ["a", "b", "poison", "c", "d", "e"]

    results = run_stand_ins(tmp_path, ids, threads=2, encoders=1)

    assert sorted(results) == sorted(ids)
    assert results["poison"].error_code == "InvalidVideoFormat" and "crashed" in results["poison"].error_message
    assert all(results[k].ok for k in "abcde"), {k: r.error_message for k, r in results.items()}


def test_held_open_the_processes_serve_every_run_and_end_with_the_hold(tmp_path):
    """A stored run holds its executor over its windows of lines: the GPU's process (its CUDA
    context, streams and decoders) is made once, not once per window."""
    executor = GpuNodeExecutor(gpus=(CPU,), processes=1, threads=2, encoders=1, stages=STAND_INS)
    with executor:
        first = list(executor.run(stand_in_jobs(tmp_path, ["a", "b"]), tmp_path / "out", CPU))
        second = list(executor.run(stand_in_jobs(tmp_path, ["c", "d"]), tmp_path / "out", CPU))
        [process] = [node.process for node in executor._held[-1]]

    assert {noted(r, "decoded")[0] for r in first + second} == {process.pid}
    assert not process.is_alive()


def test_stopping_the_iterator_early_stops_the_node(tmp_path):
    executor = GpuNodeExecutor(gpus=(CPU,), processes=1, threads=2, encoders=1, stages=STAND_INS)
    stream = executor.run(stand_in_jobs(tmp_path, [f"j{k}" for k in range(20)]), tmp_path / "out", CPU)

    first = next(stream)
    stream.close()

    assert first.ok
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("gpu-node")]


# ------------------------------------------------------------------------------------------
# How many threads, and when `engine run` picks the GPU node
# ------------------------------------------------------------------------------------------


def test_decode_threads_are_a_multiple_of_the_nvdec_engines_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv(gpu_node.THREADS_ENV, raising=False)
    assert gpu_node.default_threads(7) == 7 * gpu_node.THREADS_PER_ENGINE
    monkeypatch.setenv(gpu_node.THREADS_ENV, "5")
    assert gpu_node.default_threads(7) == 5
    monkeypatch.setenv(gpu_node.THREADS_ENV, "zero")
    with pytest.raises(Exception, match=gpu_node.THREADS_ENV):
        gpu_node.default_threads(7)


def test_a_gpu_gets_one_process_per_four_cores_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv(gpu_node.PROCESSES_ENV, raising=False)
    monkeypatch.setattr(gpu_node, "usable_cores", lambda: 16)
    assert gpu_node.default_processes(1) == 4  # an H200 node: 16 cores, one GPU
    assert gpu_node.default_processes(8) == 1  # never fewer than one
    monkeypatch.setattr(gpu_node, "usable_cores", lambda: 2)
    assert gpu_node.default_processes(1) == 1
    monkeypatch.setenv(gpu_node.PROCESSES_ENV, "3")
    assert gpu_node.default_processes(1) == 3
    monkeypatch.setenv(gpu_node.PROCESSES_ENV, "0")
    with pytest.raises(Exception, match=gpu_node.PROCESSES_ENV):
        gpu_node.default_processes(1)


def test_each_gpu_is_listed_once_per_process_and_its_decode_threads_are_shared():
    gpus = (DeviceRequest("cuda", 0), DeviceRequest("cuda", 1))
    assert gpu_node.node_processes(gpus, 2) == (gpus[0], gpus[0], gpus[1], gpus[1])
    assert [gpu_node._shared(14, share) for share in (1, 2, 3, 4, 20)] == [14, 7, 5, 4, 1]  # rounded up


def test_processes_per_gpu_run_the_jobs_side_by_side(tmp_path):
    executor = GpuNodeExecutor(gpus=(CPU,), processes=2, threads=4, encoders=1, stages=STAND_INS)
    ids = [f"meet2-{k}" for k in range(4)]  # two a process, met by its two threads: 4 for the GPU, shared
    results = list(executor.run(stand_in_jobs(tmp_path, ids), tmp_path / "out", CPU))
    assert all("met 2" in r.notes for r in results), [r.notes for r in results]
    assert len({noted(r, "decoded")[0] for r in results}) == 2


def test_a_gpus_decode_threads_are_shared_by_its_processes(monkeypatch):
    """``threads`` (``--workers``, ``$ENGINE_DECODE_THREADS``) are per GPU whatever the processes."""
    started = []
    monkeypatch.setattr(gpu_node, "_Node", lambda setup, room: started.append((setup.threads, setup.share, room)))
    gpu_node.start_nodes((CPU, CPU, CPU), threads=14, encoders=2)
    assert started == [(5, 3, 7)] * 3  # 14 shared by 3: 5 each (rounded up), plus 2 encoders in flight


def test_processes_per_gpu_below_one_are_refused(tmp_path):
    with pytest.raises(Exception, match="processes per GPU must be >= 1"):
        GpuNodeExecutor(gpus=(CPU,), processes=0).run([], tmp_path, CPU)


def test_the_engine_count_comes_from_get_decoder_caps_else_the_hopper_figure(monkeypatch):
    from animated_previews.engine.decode import nvdec_caps

    monkeypatch.setattr(nvdec_caps, "decoder_caps", lambda cuvid, chroma, bits: {"num_decoder_engines": 4})
    assert gpu_node.nvdec_engines()[0] == 4
    monkeypatch.setattr(nvdec_caps, "decoder_caps", lambda cuvid, chroma, bits: None)
    engines, source = gpu_node.nvdec_engines()
    assert engines == gpu_node.HOPPER_ENGINES == 7 and "H100/H200" in source


def test_the_written_ceiling_is_60_clips_a_second_per_h200():
    assert round(gpu_node.clips_per_second_ceiling()) == 60


def test_gpus_are_counted_without_touching_cuda(tmp_path):
    assert gpu_node.visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}) == 2
    assert gpu_node.visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-1a2b,GPU-3c4d,GPU-5e6f"}) == 3
    assert gpu_node.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert gpu_node.visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == 0
    proc = tmp_path / "gpus"
    for bus in ("0000:18:00.0", "0000:2a:00.0"):
        (proc / bus).mkdir(parents=True)
    assert gpu_node.visible_gpus({}, proc) == 2
    assert gpu_node.visible_gpus({}, tmp_path / "no-driver") == 0


def test_cuda_on_a_node_with_gpus_runs_one_process_per_gpu_and_cpu_never_does():
    assert gpu_node.node_gpus(DeviceRequest("cuda"), gpus=2) == (DeviceRequest("cuda", 0), DeviceRequest("cuda", 1))
    assert gpu_node.node_gpus(DeviceRequest("cuda", 3), gpus=8) == (DeviceRequest("cuda", 3),)
    assert gpu_node.node_gpus(DeviceRequest("cuda"), gpus=0) == ()
    assert gpu_node.node_gpus(CPU, gpus=8) == ()
    assert "gpu-node" in EXECUTORS and isinstance(open_executor("gpu-node", threads=3), GpuNodeExecutor)


def test_auto_runs_the_gpu_node_only_where_pynvvideocodec_is_installed(monkeypatch):
    """Without PyNvVideoCodec every job of an auto run takes the CPU path, where one process per
    core beats threads: the local executor then."""
    from animated_previews.engine.decode import nvdec_caps

    auto = DeviceRequest("auto")
    monkeypatch.setattr(nvdec_caps, "installed", lambda: True)
    assert gpu_node.node_gpus(auto, gpus=2) == (DeviceRequest("cuda", 0), DeviceRequest("cuda", 1))
    monkeypatch.setattr(nvdec_caps, "installed", lambda: False)
    assert gpu_node.node_gpus(auto, gpus=2) == ()


def test_engine_run_without_a_gpu_keeps_the_local_executor(tmp_path, clip, monkeypatch):
    """On this machine (no GPU) --device cuda changes nothing: the local pool runs the jobs, and
    each falls back to the CPU with the reason."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    chosen = []
    real = gpu_node.node_gpus
    monkeypatch.setattr(gpu_node, "node_gpus", lambda device, gpus=None: chosen.append(real(device)) or chosen[-1])
    m = write_manifest(tmp_path, [{"id": "a", "input": str(clip), "format": "gif", "fps": 5, "duration": 1}])

    result = CliRunner().invoke(main, ["run", "--batch", str(m), "--out-dir", str(tmp_path / "o"), "--device", "cuda",
                                       "--workers", "1", "--json", "--no-store"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert chosen == [()]
    line = json.loads(result.stdout.splitlines()[0])
    assert line["status"] == "success" and line["device"] == "pyav"


@pytest.mark.parametrize("store", [[], ["--no-store"]], ids=["stored", "no-store"])
def test_engine_run_with_gpus_picks_the_gpu_node(tmp_path, clip, monkeypatch, store):
    """Where GPUs are seen, `engine run --device cuda` runs the GPU node (here told the GPU is
    the CPU, the only device this machine has), with --workers decode threads per GPU."""
    opened = []
    monkeypatch.setattr(gpu_node, "node_gpus", lambda device, gpus=None: (CPU,))
    real_run = GpuNodeExecutor.run
    monkeypatch.setattr(GpuNodeExecutor, "run", lambda self, *a: opened.append(self) or real_run(self, *a))
    m = write_manifest(tmp_path, [{"id": "a", "input": str(clip), "format": "webp", "fps": 5, "duration": 1}])

    result = CliRunner().invoke(main, ["run", "--batch", str(m), "--out-dir", str(tmp_path / "o"), "--device", "cuda",
                                       "--workers", "2", "--json", *store], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert [e.threads for e in opened] == [2]
    assert (tmp_path / "o" / "a.webp").is_file()
