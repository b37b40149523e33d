"""The gallery page: behind a signed link, every video with its images, each decoding in Chromium."""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from html import unescape

import pytest

from clients import CHROMIUM, load_in_chromium


def make_images(running) -> str:
    with running.service() as service:
        video = service.add_video(running.clip)
        for fmt in ("gif", "webp"):
            template = service.add_template(f"gallery-{fmt}", format=fmt, fps=5, width=120, duration=0.6)
            service.submit(video.id, template.id)
    running.run_queue()
    return video.id


def test_the_gallery_lists_each_video_with_its_images_behind_a_signed_link(running):
    make_images(running)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(running.url + "/gallery", timeout=10)
    assert caught.value.code == 403
    with urllib.request.urlopen(running.server.gallery_link(), timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/html")
        page = answer.read().decode()
    assert "talk show" in page and "GIF · 120×90" in page and "WEBP · 120×90" in page
    sources = [unescape(s) for s in re.findall(r'<img src="([^"]+)"', page)]
    assert len(sources) == 2 and all("auth_key=" in s for s in sources)
    assert "<script" not in page


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
def test_the_gallery_loads_in_chromium_and_every_image_decodes(running, tmp_path):
    make_images(running)
    link = running.server.gallery_link()
    shown = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            f"--user-data-dir={tmp_path / 'profile-page'}", "--virtual-time-budget=5000",
                            "--dump-dom", link], capture_output=True, text=True, timeout=120)
    assert shown.stdout.count("<figure>") == 2, shown.stderr[-2000:]
    sources = [unescape(s) for s in re.findall(r'<img src="([^"]+)"', shown.stdout)]
    decoded = load_in_chromium(tmp_path, sources)
    assert sorted(decoded.values()) == [[120, 90], [120, 90]], decoded
