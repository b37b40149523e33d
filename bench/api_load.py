"""Load on `engine serve`: requests per second for ListDynamicImage, latency of SubmitDynamicImageJob.

Run from the repository root (a benchmark, not a test: nothing here asserts a speed)::

    python -m bench.api_load [--threads 8] [--seconds 5] [--images 5]

It starts the server in a process of its own (as `engine serve` runs; the clients here must not
share its interpreter lock) on a fresh store (one video with ``--images`` animated images, one
access key), then measures, side by side in one run:

* the floor: authentication + the ListDynamicImage action called directly, with no HTTP at all
  (what any web stack must spend per request on this store);
* ListDynamicImage over HTTP from ``--threads`` client threads with kept-alive connections;
* SubmitDynamicImageJob over HTTP, one after another: latency p50 / p95.

The ratio of the HTTP rate to the floor says how much the web stack itself costs: a faster stack
can only win back that part. ``--stack starlette`` serves the same authentication and action
from Starlette on uvicorn instead (needs both importable, e.g. ``PYTHONPATH`` to a folder they were
``pip install --target``-ed into), for the side-by-side comparison the README quotes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, quote

from animated_previews.engine.api import ApiServer, ServeConfig, authenticate
from animated_previews.engine.api.actions import ACTIONS, ActionContext
from animated_previews.engine.api.signature import sign
from animated_previews.engine.vod import Service

REPO = Path(__file__).resolve().parent.parent


def _params(key_id: str, secret: str, action: dict[str, str], method: str) -> dict[str, str]:
    params = {"Format": "JSON", "Version": "2017-03-21", "AccessKeyId": key_id, "SignatureMethod": "HMAC-SHA1",
              "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
              "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **action}
    params["Signature"] = sign(secret, method, params)
    return params


def _clip(folder: Path) -> Path:
    """A 2 s clip made by the tests' clip maker (PyAV), so the bench needs no footage."""
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    import clipmaker

    return clipmaker.make_clip(folder / "clip.mp4", fps=25, frames=50, width=320, height=240)


def _serve(store: str, port_queue) -> None:
    """The server process: bind a free port, say which, serve until terminated."""
    server = ApiServer(("127.0.0.1", 0), ServeConfig(store=Path(store)))
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _serve_starlette(store: str, port_queue) -> None:
    """The same authentication and actions behind Starlette on uvicorn (one worker process), for
    comparing stacks; synchronous endpoints, which Starlette runs in its thread pool."""
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from animated_previews.engine.api.server import _ServicePool, request_id

    pool = _ServicePool(Path(store), 8)
    context = ActionContext()

    def rpc(request):  # noqa: ANN001, ANN202 - Starlette's types
        params = dict(request.query_params)
        with pool.service() as service:
            authenticate(service, "GET", params)
            answer = ACTIONS[params["Action"]](service, params, context)
        return JSONResponse({"RequestId": request_id(), **answer})

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    port_queue.put(port)
    app = Starlette(routes=[Route("/", rpc, methods=["GET"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--submits", type=int, default=200)
    parser.add_argument("--stack", choices=("stdlib", "starlette"), default="stdlib")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="api-load-"))
    try:
        store = folder / "store.db"
        clip = _clip(folder)
        with Service(store) as service:
            key = service.create_access_key()
            template = service.add_template("bench-template", format="gif", fps=2, duration=0.5)
            video = service.add_video(clip)
            for _ in range(args.images):
                service.submit(video.id, template.id)
            service.run_worker(until_empty=True, device="cpu", threads=1)
        context = multiprocessing.get_context("spawn")
        port_queue = context.Queue()
        target = _serve if args.stack == "stdlib" else _serve_starlette
        server = context.Process(target=target, args=(str(store), port_queue), daemon=True)
        server.start()
        host, port = "127.0.0.1", port_queue.get(timeout=60)
        action = {"Action": "ListDynamicImage", "VideoId": video.id}

        # the floor: the same work without HTTP
        with Service(store) as service:
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < args.seconds:
                params = _params(key.id, key.secret, action, "GET")
                authenticate(service, "GET", params)
                ACTIONS["ListDynamicImage"](service, params, ActionContext())
                count += 1
            floor = count / (time.perf_counter() - started)

        # ListDynamicImage over HTTP, kept-alive connections, several client threads
        done = [0] * args.threads
        errors = [0] * args.threads
        deadline = time.perf_counter() + args.seconds

        def client(n: int) -> None:
            connection = http.client.HTTPConnection(host, port, timeout=30)
            while time.perf_counter() < deadline:
                query = urlencode(_params(key.id, key.secret, action, "GET"), quote_via=quote)
                connection.request("GET", "/?" + query)
                answer = connection.getresponse()
                body = answer.read()
                if answer.status == 200 and len(json.loads(body)["DynamicImageList"]) == args.images:
                    done[n] += 1
                else:
                    errors[n] += 1
            connection.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rate = sum(done) / (time.perf_counter() - started)

        # SubmitDynamicImageJob latency, one at a time (the stdlib server only: the Starlette stand-in
        # answers GET actions)
        latencies: list[float] = []
        if args.stack == "starlette":
            server.terminate()
            server.join()
            _report(args, floor, rate, latencies, errors)
            return
        connection = http.client.HTTPConnection(host, port, timeout=30)
        latencies = []
        for _ in range(args.submits):
            body = urlencode(_params(key.id, key.secret, {"Action": "SubmitDynamicImageJob", "VideoId": video.id,
                                                          "DynamicImageTemplateId": template.id}, "POST"), quote_via=quote)
            started = time.perf_counter()
            connection.request("POST", "/", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
            answer = connection.getresponse()
            answer.read()
            latencies.append(time.perf_counter() - started)
            errors[0] += answer.status != 200
        server.terminate()
        server.join()
        latencies.sort()
        _report(args, floor, rate, latencies, errors)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(args: argparse.Namespace, floor: float, rate: float, latencies: list[float], errors: list[int]) -> None:
    print(json.dumps({
        "stack": args.stack,
        "list_floor_per_s": round(floor, 1),
        "list_http_per_s": round(rate, 1),
        "http_share_of_floor": round(rate / floor, 3),
        "client_threads": args.threads,
        "submit_latency_ms_p50": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "submit_latency_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 2) if latencies else None,
        "errors": sum(errors),
    }, indent=1))


if __name__ == "__main__":
    main()
