"""The ``engine`` command: a thin click layer over the engine's Python API."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator

import click
from click.core import ParameterSource

from .progress import Progress, Tally, summary_table
from .vod import event_options
from ..engine import EngineError, ErrorCode, Manifest, ManifestEntry, default_workers, run_batch
from ..engine.batch import check_results_kind, refuse_overlaps, run_files
from ..engine.device import DEVICE_HELP, DeviceRequest, parse_device
from ..engine.executors import EXECUTORS, open_executor
from ..engine.executors.ray import import_ray
from ..engine.vod import STORE_ENV


def _store_hint(error: EngineError) -> str:
    hint = " (--store PATH picks another store, --no-store runs without one)" if error.code is ErrorCode.STORE_ERROR else ""
    return error.message + hint


class Counted:
    """A manifest's entries, read once, counting them as they pass."""

    def __init__(self, entries: Iterable[ManifestEntry]) -> None:
        self.entries = entries
        self.count = 0

    def __iter__(self) -> Iterator[ManifestEntry]:
        for entry in self.entries:
            self.count += 1
            yield entry


class DeviceParam(click.ParamType):
    """--device values: auto, cpu, cuda, cuda:N (checked by engine.device.parse_device)."""

    name = "device"

    def convert(self, value, param, ctx) -> DeviceRequest:
        try:
            return parse_device(value)
        except EngineError as error:
            self.fail(error.message, param, ctx)

    def get_metavar(self, param, ctx=None) -> str:
        return "[auto|cpu|cuda|cuda:N]"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="animated-previews-engine")
def main() -> None:
    """Turn videos into animated GIF, WebP and AVIF previews, in bulk."""


STORE_HELP = (f"Store file (SQLite) that remembers every job [default: ${STORE_ENV}, else "
              "$XDG_DATA_HOME/animated-previews/store.db]. A line done by an earlier run (same input file, "
              "settings and output) is not redone; events.jsonl goes beside it.")


@main.command()
@click.option("--batch", "manifest", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Manifest: JSON Lines, one job per line (see README: 'Manifest').")
@click.option("--out-dir", default=Path("previews"), show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the images and results.jsonl; every output must stay inside it.")
@click.option("--input-root", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder that relative input paths start from [default: the manifest's folder].")
@click.option("--results", "results_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where this run writes its results (JSON Lines, one per manifest line) [default: "
                   "OUT_DIR/results.jsonl]. Two runs of one manifest at once split its lines between them; "
                   "give each its own --results.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help=f"Jobs run side by side, one per worker process [default: the cores there are, here {default_workers()}].")
@click.option("--executor", "executor_name", type=click.Choice(sorted(EXECUTORS)), default=None,
              help="Where jobs run: local (a process pool on this machine), gpu-node (a few processes per GPU, "
                   "$ENGINE_GPU_PROCESSES, default one per 4 cores; --workers decode threads per GPU, shared by "
                   "them; encoders on the CPU) or ray (actors across a Ray cluster; "
                   "needs `pip install .[ray]`; see README 'Past one node'). The store, results and events stay here. "
                   "[default: gpu-node when --device finds GPUs here, else local]")
@click.option("--ray-address", metavar="ADDR", help="With --executor ray: the cluster to join (what `ray start --head` "
              "prints, or auto) [default: start a local Ray instance for this run].")
@click.option("--ray-output", type=click.Choice(["shared", "bytes"]), default="shared", show_default=True,
              help="With --executor ray: shared = actors write into OUT_DIR (every node must see it at the same "
                   "path); bytes = actors return the images and this process writes them.")
@click.option("--device", default="auto", show_default=True, type=DeviceParam(),
              help=f"Where jobs decode and run their kernels ({DEVICE_HELP}). auto: on the GPU when torch sees "
                   "one, PyNvVideoCodec imports and NVDEC takes the video, else on the CPU; cuda[:N]: on GPU N "
                   "where it can take the video. A job the GPU cannot take runs on the CPU and its result's "
                   "notes say why. See `engine doctor`.")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), envvar=STORE_ENV, help=STORE_HELP)
@click.option("--retry-failed", is_flag=True, help="Also run again the lines that failed in an earlier run.")
@click.option("--no-store", is_flag=True,
              help="Run every line and remember nothing: no resuming, no events, no template names.")
@event_options
@click.option("--base-url", help="URL prefix that paths below OUT_DIR map to in events [default: the store's "
              "base_url setting, else file:// URLs].")
@click.option("--drain", "drain_s", type=click.FloatRange(min=0), default=30, show_default=True, metavar="SECONDS",
              help="After the last job, wait up to this long for this run's callbacks to be delivered (they are "
                   "sent in the background while jobs run); what still waits stays queued for `engine events "
                   "flush` or a later run, and the run says how many.")
@click.option("--json", "as_json", is_flag=True,
              help="Print each result as a JSON line on stdout, then a {\"summary\": ...} line, instead of the table.")
def run(manifest: Path, out_dir: Path, input_root: Path | None, results_path: Path | None, workers: int | None,
        executor_name: str, ray_address: str | None, ray_output: str, device: DeviceRequest, store: Path | None, retry_failed: bool, no_store: bool, events_path: Path | None,
        callback_url: str | None, callback_secret: str | None, base_url: str | None, drain_s: float,
        as_json: bool) -> None:
    """Make one animated image per manifest line.

    \b
    A line is either snake_case:
      {"id": "intro", "input": "a.mp4", "format": "gif", "fps": 15,
       "width": 640, "seek": 5, "duration": 3}
    or the VOD template shape:
      {"id": "intro", "input": "a.mp4", "TemplateConfig": {"Format": "webp", "Fps": "15",
       "Width": "640", "Height": "360", "TimeSpan": {"Seek": "5", "Duration": "3"}}}
    or names a stored template (`engine template add`), its own fields winning:
      {"id": "intro", "input": "a.mp4", "template": "social-preview", "seek": 12}
    Use trim_end (TimeSpan.End) instead of duration to stop that many seconds before the end.

    \b
    Every line is a job in the store. Run the same manifest again (after a crash, a kill, or
    with new lines) and only what is not done yet runs; the rest is reported from the store
    as "reused". Each finished job also gets a DynamicImageComplete event (log and callback).

    Every line ends as a line of OUT_DIR/results.jsonl (or --results).

    Exit status: 0 when every job succeeded, 1 when some failed, 2 for a usage error (such as a
    missing manifest), 130 when stopped by Ctrl-C or SIGTERM (jobs in flight go back to the store
    for the next run).
    """
    store_given = click.get_current_context().get_parameter_source("store") == ParameterSource.COMMANDLINE
    if no_store and (store_given or retry_failed or events_path or callback_url or base_url):  # $ENGINE_STORE is fine
        raise click.UsageError("--no-store runs without the store: --store, --retry-failed, --events, --callback "
                               "and --base-url need it")
    service = None
    try:
        if no_store:
            entries = Manifest(manifest, input_root=input_root)
        else:
            from ..engine.vod import Service

            service = Service(store, events_path=events_path, base_url=base_url, callback_url=callback_url,
                             callback_secret=callback_secret)
            entries = service.manifest(manifest, input_root=input_root)
        entries.check()
    except EngineError as error:
        raise click.UsageError(_store_hint(error)) from None
    results_file = results_path or out_dir / "results.jsonl"
    # The manifest is read twice, line by line: here, to refuse a results file or event log that
    # would overwrite what a line reads or writes before anything is written, and to count the
    # jobs; then to run them. Neither pass holds it whole.
    guarded = {f"--results {results_path}" if results_path else f"results file {results_file}": results_file}
    if service is not None:
        guarded[f"--events {events_path}" if events_path else f"the event log {service.events_path}"] = service.events_path
    counted = Counted(entries)
    try:
        check_results_kind(results_file)
        refuse_overlaps(guarded, run_files(counted, out_dir, manifest=manifest, store=service and service.store_path))
    except EngineError as error:
        if service is not None:
            service.close()
        raise click.UsageError(_store_hint(error)) from None
    if not counted.count:
        if service is not None:
            service.close()
        raise click.UsageError(f"manifest {manifest} holds no jobs")
    if executor_name is None:
        from ..engine.executors.gpu_node import node_gpus
        executor_name = "gpu-node" if node_gpus(device) else "local"
    if executor_name != "local":
        options = {"address": ray_address, "output": ray_output, "workers": workers} if executor_name == "ray" else {}
        if executor_name == "gpu-node":
            options = {"threads": workers}
        try:
            executor = open_executor(executor_name, **options)
            if executor_name == "ray":
                import_ray()  # say how to install it now, not after the first line
        except EngineError as error:
            if service is not None:
                service.close()
            raise click.UsageError(error.message) from None
    else:
        if ray_address:
            raise click.UsageError("--ray-address needs --executor ray")
        executor = None
    progress = Progress(counted.count)
    started = time.perf_counter()
    tally = Tally()
    drained = []  # the run's callbacks once drained (a DeliveryReport)
    if service is None:
        stream = run_batch(entries, out_dir, workers=workers, on_result=progress, device=device,
                           results_path=results_path, executor=executor)
    else:
        stream = service.run_batch(entries, out_dir, workers=workers, device=device, retry_failed=retry_failed,
                                   on_result=progress, results_path=results_path, drain_s=drain_s,
                                   on_drained=drained.append, executor=executor)

    def stop_on_term(signum, frame) -> None:  # a scheduler's stop: give the jobs back, as Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop_on_term)
    try:
        for result in stream:
            tally.add(result)
            if as_json:
                click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    except OSError as exc:
        where = out_dir if not exc.filename or Path(exc.filename).absolute().is_relative_to(out_dir.absolute()) \
            else exc.filename  # the event log (--events), --results: name what could not be written
        raise click.UsageError(f"cannot write to {where}: {exc}") from None
    except EngineError as error:  # the store failed mid-run (StoreError): every result shown was recorded
        raise click.UsageError(error.message) from None
    except KeyboardInterrupt:
        click.echo(f"stopped after {tally.jobs} of {counted.count} jobs"
                   + ("; the rest go on when the same command runs again" if service else ""), err=True)
        if as_json:  # the summary line a reader of --json waits for, saying the run stopped
            click.echo(json.dumps({"summary": {"jobs": tally.jobs, "succeeded": tally.jobs - tally.failed,
                                               "failed": tally.failed, "reused": tally.reused, "stopped": True,
                                               "seconds": round(time.perf_counter() - started, 3),
                                               "results": str(results_file)}}))
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
        stream.close()  # a stored run gives back the jobs it holds, while the store is still open
        if service is not None:
            service.close()
    wall = time.perf_counter() - started
    failed = tally.failed
    callbacks_waiting = drained[0].pending if drained else 0
    if callbacks_waiting:
        click.echo(f"callbacks: {callbacks_waiting} of this run's still waiting after --drain {drain_s:g} s "
                   f"({drained[0].delivered} delivered); `engine events flush` or a later run or worker sends them",
                   err=True)
    elif drained and (drained[0].delivered or drained[0].failed):
        click.echo(f"callbacks: {drained[0].delivered} delivered, none of this run's waiting", err=True)
    if as_json:
        summary = {"jobs": tally.jobs, "succeeded": tally.jobs - failed, "failed": failed, "reused": tally.reused,
                   "seconds": round(wall, 3), "results": str(results_file)}
        if service is not None:
            summary["store"] = str(service.store_path)
            summary["callbacks_waiting"] = callbacks_waiting
        click.echo(json.dumps({"summary": summary}))
    else:
        click.echo(summary_table(tally, wall, results_file))
        click.echo(f"results: {results_file}" + (f"; store: {service.store_path}" if service else ""))
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--video", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Say what --device auto would choose for this file (default: a typical H.264 1080p MP4).")
def doctor(as_json: bool, video: Path | None) -> None:
    """Report versions (torch, CUDA, NVIDIA driver, PyNvVideoCodec, PyAV/FFmpeg, Pillow/libwebp),
    the GPUs torch sees, which codecs NVDEC takes, and what --device auto would choose and why."""
    from ..engine.doctor import diagnose, render_text

    try:
        report = diagnose(video)
    except EngineError as error:
        raise click.UsageError(f"{video}: {error.message}") from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        click.echo(render_text(report))

from .bench import register_bench_command; register_bench_command(main)  # noqa: E402
from .vod import register_vod_commands; register_vod_commands(main)  # noqa: E402
from .serve import register_serve_command; register_serve_command(main)  # noqa: E402
