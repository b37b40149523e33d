"""``engine serve``: the VOD actions over HTTP, queue workers beside them, until SIGTERM.

A thin face over :mod:`engine.api` (the server) and :class:`engine.vod.worker.WorkerProcesses`
(the jobs): it parses options, prints where the server listens and a signed link to the gallery,
and on SIGTERM or Ctrl-C stops accepting requests, gives the jobs in flight back to the queue and
exits 0.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from ..engine.vod import STORE_ENV


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on (0: any free port; the one taken is printed).")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), envvar=STORE_ENV,
              help=f"Store file [default: ${STORE_ENV}, else the per-user store]. Images go beside it.")
@click.option("--media-root", "media_roots", multiple=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A folder RegisterMedia may register videos from (repeat for several). Without one, "
                   "RegisterMedia refuses every file.")
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="Queue worker processes started beside the server (0: run `engine worker` yourself).")
@click.option("--public-url", help="The URL clients reach this server by, used in image links "
                                   "[default: http://HOST:PORT].")
@click.option("--device", default="auto", show_default=True, help="Where the workers' jobs run: auto, cpu, "
                                                                   "cuda or cuda:N.")
@click.option("--executor", "executor_name", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: --workers processes here, a job each; ray: one worker process handing the jobs to "
                   "Ray actors across a cluster (needs `pip install .[ray]`).")
@click.option("--ray-address", metavar="ADDR", help="With --executor ray: the cluster to join [default: a local "
              "Ray instance].")
def serve(host: str, port: int, store: Path | None, media_roots: tuple[Path, ...], workers: int,
          public_url: str | None, device: str, executor_name: str, ray_address: str | None) -> None:
    """Answer the VOD API (AddVodTemplate, RegisterMedia, SubmitDynamicImageJob, ListDynamicImage,
    GetVideoInfo, ...) as the service does, for its SDKs: point a client's endpoint at HOST:PORT.

    Every request must be signed with an access key from `engine keys create`. Images and the
    gallery are served only through signed links (in the answers, the events and the link printed
    at start).
    """
    from ..engine.api import ApiServer, ServeConfig
    from ..engine.errors import EngineError
    from ..engine.vod.worker import WorkerProcesses

    try:
        server = ApiServer((host, port), ServeConfig(store=store, media_roots=media_roots, public_url=public_url))
    except EngineError as error:
        raise click.UsageError(error.message) from None
    except OSError as exc:
        raise click.UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    executor = None
    if executor_name == "ray":
        from ..engine.executors.ray import import_ray

        try:
            import_ray()
        except EngineError as error:
            server.server_close()
            raise click.UsageError(error.message) from None
        executor, workers = ("ray", {"address": ray_address}), 1
    elif ray_address:
        server.server_close()
        raise click.UsageError("--ray-address needs --executor ray")
    pool = WorkerProcesses(server.store_path, workers, device=device, executor=executor) if workers else None
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()  # shutdown() waits for serve_forever

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo(f"serving {server.public_url} (store {server.store_path}, {workers} worker process(es))")
    if server.images_url != server.served_url:
        click.echo(f"image links: {server.images_url} (the store's base_url; `engine config set base_url ''` "
                   f"links them here)")
    click.echo(f"gallery: {server.gallery_link()}", nl=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            if pool is not None:
                pool.stop()  # first: a job finishing meanwhile still links its image here
        finally:
            server.server_close()
    click.echo("stopped: no longer accepting requests; jobs in flight went back to the queue")


def register_serve_command(group: click.Group) -> None:
    group.add_command(serve)
