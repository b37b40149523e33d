"""A running API server on a fresh store, with one access key and one media folder holding a clip."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from animated_previews.engine.api import ApiServer, ServeConfig
from animated_previews.engine.vod import Service


@dataclass
class Running:
    server: ApiServer
    store: Path
    media: Path
    clip: Path
    key_id: str
    secret: str

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return self.server.public_url

    def service(self) -> Service:
        return Service(self.store)

    def run_queue(self) -> None:
        """Make the images of every queued job (what `engine serve`'s worker processes do)."""
        with self.service() as service:
            service.run_worker(until_empty=True, device="cpu", threads=1)


@pytest.fixture
def running(tmp_path, h264_clip) -> Running:
    media = tmp_path / "media"
    media.mkdir()
    clip = media / "talk show.mp4"
    shutil.copy(h264_clip, clip)
    store = tmp_path / "store" / "store.db"
    with Service(store) as service:
        key = service.create_access_key()
    server = ApiServer(("127.0.0.1", 0), ServeConfig(store=store, media_roots=(media,)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Running(server, store, media, clip, key.id, key.secret)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
