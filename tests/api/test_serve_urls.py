"""Where `engine serve`'s image links point, and what it leaves in the store when it stops."""

from __future__ import annotations

import socket
import threading

import pytest
from click.testing import CliRunner

from animated_previews.cli.main import main as cli
from animated_previews.engine.api import ApiServer, ServeConfig
from animated_previews.engine.vod import Service


def start(store, **config) -> tuple[ApiServer, threading.Thread]:
    server = ApiServer(("127.0.0.1", 0), ServeConfig(store=store, **config))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def stop(server: ApiServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_without_a_base_url_links_point_at_the_running_server_and_no_longer_once_it_stops(tmp_path):
    store = tmp_path / "s.db"
    server, thread = start(store)
    with Service(store) as service:
        assert service.site.images_url == server.public_url + "/images"
        assert service.settings().get("base_url") is None  # the user's setting is not written
    stop(server, thread)
    with Service(store) as service:  # a later `engine run --store` links no dead port
        assert service.site.images_url is None and "served_url" not in service.settings()


def test_a_base_url_the_user_set_is_kept_and_used_for_links_while_serving(tmp_path):
    """It was overwritten with the server's address, and stayed so after the server stopped:
    CDN links turned into links to a dead port."""
    store = tmp_path / "s.db"
    with Service(store) as service:
        service.set_setting("base_url", "https://cdn.example.com/previews")
    server, thread = start(store)
    assert server.images_url == "https://cdn.example.com/previews"
    stop(server, thread)
    with Service(store) as service:
        assert service.settings()["base_url"] == "https://cdn.example.com/previews"
        assert service.site.images_url == "https://cdn.example.com/previews"


def test_a_server_stopping_leaves_a_newer_servers_address_alone(tmp_path):
    store = tmp_path / "s.db"
    first = start(store)
    second = start(store)
    stop(*first)
    with Service(store) as service:
        assert service.site.images_url == second[0].public_url + "/images"
    stop(*second)


def test_a_port_in_use_is_a_usage_error_not_a_traceback(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        result = CliRunner().invoke(cli, ["serve", "--port", str(port), "--store", str(tmp_path / "s.db"),
                                          "--workers", "0"])
    finally:
        taken.close()
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "in use" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, AttributeError)


def test_binding_fails_cleanly_in_the_server_itself(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(OSError):
            ApiServer(taken.getsockname()[:2], ServeConfig(store=tmp_path / "s.db"))
    finally:
        taken.close()
