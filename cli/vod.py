"""The VOD-style commands: template, video, submit, worker, jobs, images, events, config, keys.

Each command opens :class:`engine.vod.Service` on ``--store`` (or ``$ENGINE_STORE``, or the per-user
default), calls one of its methods and prints the answer: a short human form by default, the
service's JSON shape with ``--json``. An :class:`EngineError` exits 1 with its code and message
(as ``{"Code", "Message"}`` on stdout with ``--json``).
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import click

from ..engine.device import parse_device

from ..engine.errors import EngineError, ErrorCode
from ..engine.spec import parse_json
from ..engine.vod import (JOB_STATES, SECRET_ENV, SECRET_SETTING_KEYS, SERVER_SETTING_KEYS, SETTING_KEYS, STORE_ENV,
                          Service, add_videos)
from ..engine.vod.webhook import check_callback_url

STORE_HELP = (f"Store file (SQLite). Default: ${STORE_ENV}, else $XDG_DATA_HOME/animated-previews/store.db "
              "(~/.local/share/...). Images and events.jsonl go beside it.")


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


def _fail(error: EngineError, as_json: bool) -> None:
    if as_json:
        _emit({"Code": error.code.value, "Message": error.message})
    else:
        click.echo(f"error: {error.code.value}: {error.message}", err=True)
    sys.exit(1)


def store_command(func: Callable) -> Callable:
    """Adds --store and --json, opens the Service, turns an EngineError into exit status 1."""

    @click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON (the service's field names).")
    @click.option("--store", type=click.Path(dir_okay=False, path_type=Path), envvar=STORE_ENV, help=STORE_HELP)
    @functools.wraps(func)
    def wrapper(store: Path | None, as_json: bool, **kwargs: Any) -> None:
        service_kwargs = {k: kwargs.pop(k) for k in ("images_dir", "events_path", "base_url", "callback_url",
                                                     "callback_secret") if k in kwargs}
        try:
            with Service(store, **{k: v for k, v in service_kwargs.items() if v is not None}) as service:
                func(service, as_json=as_json, **kwargs)
        except EngineError as error:
            _fail(error, as_json)

    return wrapper


def _check_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--callback: an http(s) URL with a host (the store's own rule, as `config set callback_url`)."""
    if value is None:
        return None
    try:
        return check_callback_url(value)
    except EngineError as error:
        raise click.BadParameter(error.message, ctx, param) from None


def event_options(func: Callable) -> Callable:
    """--events, --callback, --callback-secret: where DynamicImageComplete events go (engine worker,
    engine run); values the Service takes, each falling back to the store's setting."""
    options = [
        click.option("--events", "events_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Event log (JSON Lines) [default: events.jsonl beside the store]."),
        click.option("--callback", "callback_url", callback=_check_callback, metavar="URL",
                     help="POST each DynamicImageComplete event here: an http:// or https:// URL "
                     "[default: the store's callback_url setting]."),
        click.option("--callback-secret", envvar=SECRET_ENV, help=f"HMAC-SHA256 key for callbacks (or "
                     f"${SECRET_ENV}, or the store's callback_secret setting)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def url_options(func: Callable) -> Callable:
    func = click.option("--base-url", help="URL prefix that paths below the images folder map to "
                        "[default: the store's base_url setting, else the address of an `engine serve` "
                        "running on the store, else file:// URLs].")(func)
    return click.option("--out-dir", "images_dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Images folder [default: images/ beside the store].")(func)


def _record_lines(record: dict[str, Any], prefix: str = "") -> list[str]:
    lines: list[str] = []
    for key, value in record.items():
        if isinstance(value, dict):
            lines += _record_lines(value, f"{prefix}{key}.")
        else:
            lines.append(f"{prefix}{key}: {'' if value is None else value}")
    return lines


def _print_record(record: dict[str, Any]) -> None:
    click.echo("\n".join(_record_lines(record)))


def _table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [header] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


# -- templates -----------------------------------------------------------------------------------

def template_fields(func: Callable) -> Callable:
    """Flags for TemplateConfig fields; values are validated by the engine (field + allowed range)."""
    options = [
        click.option("--format", "format", help="gif, webp or avif."),
        click.option("--fps", help="Frames per second, 1-60."),
        click.option("--width", help="Output width in pixels (optional; alone keeps the aspect ratio)."),
        click.option("--height", help="Output height in pixels (optional)."),
        click.option("--seek", help="Start, seconds from the start of the video (default 0), or auto (with "
                                    "--duration): the liveliest span, avoiding black, fades, still frames and "
                                    "credits."),
        click.option("--duration", help="Duration mode: seconds from --seek."),
        click.option("--trim-end", "trim_end", help="Trim mode: seconds cut from the end of the video."),
        click.option("--fit", help="With --width and --height: fill (stretch, the default), contain, cover or pad."),
        click.option("--pad-colour", "pad_colour", help="With --fit pad: the bars' colour, #rrggbb (default black)."),
        click.option("--max-bytes", "max_bytes",
                     help="The image's largest size in bytes; colours or quality, then frames, then size are given up "
                          "to meet it (README: max_bytes)."),
        click.option("--set-as-cover/--no-set-as-cover", "set_as_cover", default=None,
                     help="Make each image the video's cover (GetVideoInfo's CoverURL)."),
        click.option("--body", type=click.File("r"),
                     help="JSON file holding an AddVodTemplate body (TemplateType=DynamicImage, Name, TemplateConfig)."),
        click.option("--name", help="Template name, 4-64 characters, unique."),
    ]
    for option in options:
        func = option(func)
    return func


BODY_MAX_BYTES = 2**20
"""Largest --body file read (a real body is a few hundred bytes)."""


def _read_body(body) -> Any:
    """The JSON of a --body file: InvalidParameter for one that is not JSON, not UTF-8, over
    :data:`BODY_MAX_BYTES` or nested too deeply (never a traceback)."""
    try:
        text = body.read(BODY_MAX_BYTES + 1)
    except UnicodeDecodeError as exc:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"{body.name} is not UTF-8 text: {exc.reason}") from None
    if len(text) > BODY_MAX_BYTES:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"{body.name} is over {BODY_MAX_BYTES // 2**20} MiB; a "
                          "template body is a few hundred bytes")
    try:
        return parse_json(text, body.name)
    except json.JSONDecodeError as exc:
        raise EngineError(ErrorCode.INVALID_PARAMETER, f"{body.name} is not valid JSON: {exc}") from None


def _field_flags(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in ("format", "fps", "width", "height", "seek", "duration", "trim_end", "set_as_cover",
                                   "fit", "pad_colour", "max_bytes")
            if kwargs.get(k) is not None}


@click.group("template")
def template_group() -> None:
    """Animated-image templates (AddVodTemplate with TemplateType=DynamicImage)."""


@template_group.command("add")
@template_fields
@store_command
def template_add(service: Service, as_json: bool, name: str | None, body, **kwargs: Any) -> None:
    """Create a template from flags or --body FILE; prints its VodTemplateId.

    \b
    engine template add --name social-preview --format webp --fps 15 \\
        --width 640 --height 360 --seek 5 --duration 3
    engine template add --body template.json
    """
    fields = _field_flags(kwargs)
    if body is not None:
        if fields:
            raise click.UsageError("give either --body or field flags, not both")
        data = _read_body(body)
        if name is not None and isinstance(data, dict):
            data = {**data, "Name": name}
        template = service.add_template_body(data)
    else:
        if name is None:
            raise click.UsageError("--name is required (or give --body FILE)")
        template = service.add_template(name, **fields)
    _emit({"VodTemplateId": template.id}) if as_json else click.echo(template.id)


@template_group.command("list")
@store_command
def template_list(service: Service, as_json: bool) -> None:
    """List templates."""
    templates = service.templates()
    if as_json:
        _emit({"VodTemplateInfoList": [service.template_info(t) for t in templates]})
        return
    rows = []
    for t in templates:
        config = t.template_config()  # numbers exact, as GetVodTemplate answers them (not :g's 6 digits)
        size = f"{t.width or 'auto'}x{t.height or 'auto'}" if (t.width or t.height) else "source"
        times = config["TimeSpan"]
        span = f"{times['Seek']}+{times['Duration']}s" if "Duration" in times else f"{times['Seek']}..end-{times['End']}s"
        rows.append([t.id, t.name, t.format, config["Fps"], size, span, "yes" if t.set_as_cover else "no"])
    _table(rows, ["VodTemplateId", "Name", "Format", "Fps", "Size", "TimeSpan", "Cover"])


@template_group.command("show")
@click.argument("template_id")
@store_command
def template_show(service: Service, as_json: bool, template_id: str) -> None:
    """Show one template (by VodTemplateId or name)."""
    record = service.template_info(template_id)
    _emit({"VodTemplate": record}) if as_json else _print_record(record)


@template_group.command("update")
@click.argument("template_id")
@template_fields
@store_command
def template_update(service: Service, as_json: bool, template_id: str, name: str | None, body, **kwargs: Any) -> None:
    """Change some fields, or replace the TemplateConfig with --body FILE. --duration switches the
    template to Duration mode, --trim-end to Trim mode."""
    fields = _field_flags(kwargs)
    if body is not None and fields:
        raise click.UsageError("give either --body or field flags, not both")
    if body is not None:
        template = service.update_template(template_id, name=name, body=_read_body(body))
    else:
        template = service.update_template(template_id, name=name, **fields)
    _emit({"VodTemplate": service.template_info(template)}) if as_json else click.echo(template.id)


@template_group.command("delete")
@click.argument("template_id")
@store_command
def template_delete(service: Service, as_json: bool, template_id: str) -> None:
    """Delete a template; jobs already submitted with it still run."""
    template = service.delete_template(template_id)
    _emit({"VodTemplateId": template.id}) if as_json else click.echo(template.id)


# -- videos --------------------------------------------------------------------------------------

@click.group("video")
def video_group() -> None:
    """Registered videos (probed once when added)."""


@video_group.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@store_command
def video_add(service: Service, as_json: bool, paths: tuple[Path, ...]) -> None:
    """Register video files; prints one VideoId per file. Exit 1 if any was refused."""
    outcomes = add_videos(service, paths)
    errors = [(p, o) for p, o in outcomes if isinstance(o, EngineError)]
    if as_json:
        _emit({"Videos": [{"Path": str(p), "VideoId": o.id} for p, o in outcomes if not isinstance(o, EngineError)],
               "Errors": [{"Path": str(p), "Code": e.code.value, "Message": e.message} for p, e in errors]})
    else:
        for path, outcome in outcomes:
            if isinstance(outcome, EngineError):
                click.echo(f"error: {path}: {outcome.code.value}: {outcome.message}", err=True)
            else:
                click.echo(f"{outcome.id}  {path}")
    if errors:
        sys.exit(1)


@video_group.command("info")
@click.argument("video_id")
@url_options
@store_command
def video_info(service: Service, as_json: bool, video_id: str) -> None:
    """GetVideoInfo: the video's facts and its CoverURL."""
    info = service.video_info(video_id)
    _emit(info) if as_json else _print_record(info["Video"])


@video_group.command("list")
@store_command
def video_list(service: Service, as_json: bool) -> None:
    """List registered videos."""
    videos = service.videos()
    if as_json:
        _emit({"VideoList": [service.video_info(v.id)["Video"] for v in videos]})
        return
    _table([[v.id, f"{v.duration:.3f}", f"{v.width}x{v.height}", v.codec, v.path] for v in videos],
           ["VideoId", "Duration", "Size", "Codec", "Path"])


# -- jobs ----------------------------------------------------------------------------------------

@click.command("submit")
@click.option("--video", "video_id", required=True, help="VideoId (from `engine video add`).")
@click.option("--template", "template_id", required=True, help="VodTemplateId or template name.")
@store_command
def submit(service: Service, as_json: bool, video_id: str, template_id: str) -> None:
    """SubmitDynamicImageJob: queue a job and print its JobId at once; `engine worker` runs it."""
    job = service.submit(video_id, template_id)
    _emit({"DynamicImageJob": {"JobId": job.id}}) if as_json else click.echo(job.id)


def _check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Refuse a bad --device before any job is claimed (exit status 2, as click's usage errors)."""
    try:
        parse_device(value)
    except EngineError as error:
        raise click.BadParameter(error.message) from None
    return value


@click.command("worker")
@click.option("--until-empty", is_flag=True, help="Exit once no job is queued (default: keep polling).")
@click.option("--lease", "lease_seconds", type=click.FloatRange(min=1), default=60, show_default=True,
              help="Seconds a claimed job stays this worker's without renewal; a killed worker's job is "
                   "retried after this by a worker on another machine (at once on the same machine).")
@click.option("--poll", "poll_seconds", type=click.FloatRange(min=0.05), default=1, show_default=True,
              help="Seconds between looks at an empty queue.")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Stop after this many jobs.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads for torch and the decoder in this worker "
              "[default: torch's own, all cores]. Running N workers on one machine: give each cores/N.")
@click.option("--device", default="auto", show_default=True, callback=_check_device,
              help="Where jobs decode and run their kernels: auto, cpu, cuda or cuda:N, as for `engine run`.")
@click.option("--executor", "executor_name", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: jobs one at a time in this process; ray: on Ray actors across a cluster, several at "
                   "once (needs `pip install .[ray]`; see README 'Past one node').")
@click.option("--ray-address", metavar="ADDR", help="With --executor ray: the cluster to join [default: a local "
              "Ray instance].")
@event_options
@url_options
@store_command
def worker(service: Service, as_json: bool, until_empty: bool, lease_seconds: float, poll_seconds: float,
           max_jobs: int | None, threads: int | None, device: str, executor_name: str,
           ray_address: str | None) -> None:
    """Run queued jobs. Several workers may share one store: each job is claimed once, and the
    job of a worker that dies is taken again (at once on the same machine, else once its lease
    runs out). Ctrl-C or SIGTERM gives the
    job in hand back to the queue (exit status 130)."""

    def show(job) -> None:
        info = service.job_info(job)
        if as_json:
            _emit(info)
        else:
            outcome = info["DynamicImageUrl"] if job.state == "success" else f"{job.error_code}: {job.error_message}"
            click.echo(f"{job.id}  {job.state}  {outcome}")

    def stop_on_term(signum, frame) -> None:  # a service manager's stop: give the job back, as Ctrl-C does
        raise KeyboardInterrupt

    executor = None
    if executor_name == "ray":
        from ..engine.executors import open_executor
        from ..engine.executors.ray import import_ray

        try:
            import_ray()
        except EngineError as error:
            raise click.UsageError(error.message) from None
        executor = open_executor("ray", address=ray_address)
    elif ray_address:
        raise click.UsageError("--ray-address needs --executor ray")
    previous = signal.signal(signal.SIGTERM, stop_on_term)
    try:
        report = service.run_worker(until_empty=until_empty, lease_seconds=lease_seconds, poll_seconds=poll_seconds,
                                   max_jobs=max_jobs, on_job=show, threads=threads, device=device, executor=executor)
    except KeyboardInterrupt:
        click.echo("stopped; the job in hand went back to the queue", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    summary = {"Worker": report.worker, "Succeeded": report.succeeded, "Failed": report.failed,
               "EventsDelivered": report.events_delivered}
    _emit({"Summary": summary}) if as_json else click.echo(
        f"{report.jobs} job{'' if report.jobs == 1 else 's'}: {report.succeeded} succeeded, {report.failed} failed")


@click.group("jobs")
def jobs_group() -> None:
    """Jobs in the store, submitted ones and batch manifest lines: state and errors."""


@jobs_group.command("list")
@click.option("--state", type=click.Choice(JOB_STATES), help="Only jobs in this state.")
@click.option("--video", "video_id", help="Only this video's jobs.")
@click.option("--kind", type=click.Choice(["batch", "submitted"]),
              help="Only manifest lines of `engine run` (batch) or only `engine submit` jobs (submitted).")
@click.option("--last", type=click.IntRange(min=1), help="Only the N most recent jobs.")
@url_options
@store_command
def jobs_list(service: Service, as_json: bool, state: str | None, video_id: str | None, kind: str | None,
              last: int | None) -> None:
    """List jobs, oldest first."""
    jobs = service.jobs(state=state, video_id=video_id, kind=kind, last=last)
    if as_json:
        _emit({"JobList": [service.job_info(j) for j in jobs]})
        return
    _table([[j.id, j.video_id or j.input, j.state, j.attempts, j.error_code, j.name] for j in jobs],
           ["JobId", "VideoId / batch input", "State", "Attempts", "ErrorCode", "ManifestId"])


@jobs_group.command("show")
@click.argument("job_id")
@url_options
@store_command
def jobs_show(service: Service, as_json: bool, job_id: str) -> None:
    """One job's state, attempts, error and image."""
    info = service.job_info(job_id)
    _emit({"Job": info}) if as_json else _print_record(info)


# -- images --------------------------------------------------------------------------------------

@click.group("images")
def images_group() -> None:
    """Animated images made by finished jobs."""


@images_group.command("list")
@click.option("--video", "video_id", required=True, help="VideoId.")
@url_options
@store_command
def images_list(service: Service, as_json: bool, video_id: str) -> None:
    """ListDynamicImage: the video's animated images, oldest first."""
    listing = service.list_dynamic_images(video_id)
    if as_json:
        _emit(listing)
        return
    _table([[i["DynamicImageId"], i["Format"], f"{i['Width']}x{i['Height']}", f"{i['Fps']:g}", i["FileSize"], i["URL"]]
            for i in listing["DynamicImageList"]], ["DynamicImageId", "Format", "Size", "Fps", "Bytes", "URL"])


# -- events --------------------------------------------------------------------------------------

@click.group("events")
def events_group() -> None:
    """DynamicImageComplete events: the log and the callback outbox."""


@events_group.command("list")
@click.option("--job", "job_id", help="Only this job's event.")
@store_command
def events_list(service: Service, as_json: bool, job_id: str | None) -> None:
    """Every event, oldest first, each callback still waiting, and those given up."""
    events = service.events(job_id=job_id)
    if as_json:
        _emit({"Events": events, "Pending": service.pending_deliveries(), "GivenUp": service.given_up_deliveries()})
        return
    _table([[e["EventTime"], e["JobId"], e["Status"], e["ErrorCode"] or e["DynamicImageUrl"]] for e in events],
           ["EventTime", "JobId", "Status", "URL / ErrorCode"])
    waiting = service.pending_deliveries()
    if waiting:
        click.echo(f"{len(waiting)} callback(s) waiting; last error: {waiting[0]['last_error']}")
    dead = service.given_up_deliveries()
    if dead:
        click.echo(f"{len(dead)} callback(s) given up (never retried); last reason: {dead[-1]['last_error']}")


@events_group.command("flush")
@click.option("--wait", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Keep going for up to this many seconds: retries (with backoff) and events queued "
                   "meanwhile, until every callback is delivered; no attempt lasts past it. 0: one "
                   "attempt at each waiting callback.")
@click.option("--events", "events_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Event log (JSON Lines) [default: events.jsonl beside the store].")
@click.option("--callback-secret", envvar=SECRET_ENV, help=f"HMAC-SHA256 key (or ${SECRET_ENV}, or the store's setting).")
@store_command
def events_flush(service: Service, as_json: bool, wait: float) -> None:
    """Write new events to the log and deliver every waiting callback now. Exit 1 if some remain.

    Each event is signed with the key it was queued with (the --callback-secret of the run that
    ended its job, else that run's $ENGINE_CALLBACK_SECRET or store setting); --callback-secret here
    signs only events queued without one."""
    report = service.flush_events(wait=wait)
    summary = {"Delivered": report.delivered, "Failed": report.failed, "Pending": report.pending,
               "GivenUp": report.given_up}
    _emit(summary) if as_json else click.echo(
        f"{report.delivered} delivered, {report.failed} failed attempts, {report.pending} still waiting"
        + (f", {report.given_up} given up (see engine events list)" if report.given_up else ""))
    if report.pending:
        sys.exit(1)


# -- settings ------------------------------------------------------------------------------------

@click.group("config")
def config_group() -> None:
    """Settings kept in the store: callback URL, secret and auth, base_url, URL signing key."""


@config_group.command("set")
@click.argument("key", type=click.Choice(sorted(set(SETTING_KEYS) - SERVER_SETTING_KEYS)))
@click.argument("value")
@store_command
def config_set(service: Service, as_json: bool, key: str, value: str) -> None:
    """Set a setting ("" removes it)."""
    service.set_setting(key, value)
    shown = "***" if key in SECRET_SETTING_KEYS and value else value
    _emit({key: shown}) if as_json else click.echo(f"{key} set" if value else f"{key} removed")


@config_group.command("show")
@store_command
def config_show(service: Service, as_json: bool) -> None:
    """Show the settings (keys and secrets masked)."""
    settings = {k: ("***" if k in SECRET_SETTING_KEYS else v) for k, v in service.settings().items()}
    settings["store"] = str(service.store_path)
    _emit(settings) if as_json else _print_record(settings)


# -- access keys ---------------------------------------------------------------------------------

@click.group("keys")
def keys_group() -> None:
    """Access keys that sign requests to `engine serve` (AccessKeyId + AccessKeySecret)."""


@keys_group.command("create")
@store_command
def keys_create(service: Service, as_json: bool) -> None:
    """Make a key; prints its AccessKeyId and AccessKeySecret (give both to the SDK client)."""
    key = service.create_access_key()
    if as_json:
        _emit({"AccessKeyId": key.id, "AccessKeySecret": key.secret})
    else:
        click.echo(f"AccessKeyId: {key.id}\nAccessKeySecret: {key.secret}")


@keys_group.command("list")
@store_command
def keys_list(service: Service, as_json: bool) -> None:
    """List keys, revoked ones included; secrets are never shown."""
    rows = [service.access_key_info(k) for k in service.access_keys()]
    if as_json:
        _emit({"AccessKeys": rows})
        return
    _table([[r["AccessKeyId"], r["Status"], r["CreationTime"], r["RevokeTime"]] for r in rows],
           ["AccessKeyId", "Status", "Created", "Revoked"])


@keys_group.command("revoke")
@click.argument("key_id")
@store_command
def keys_revoke(service: Service, as_json: bool, key_id: str) -> None:
    """Revoke a key: requests signed with it are refused from now on."""
    key = service.revoke_access_key(key_id)
    _emit(service.access_key_info(key)) if as_json else click.echo(f"{key.id} revoked")


def register_vod_commands(main: click.Group) -> None:
    """Add the VOD-style commands to the ``engine`` group."""
    for command in (template_group, video_group, submit, worker, jobs_group, images_group, events_group, config_group,
                    keys_group):
        main.add_command(command)
