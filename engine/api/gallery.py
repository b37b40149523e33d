"""The gallery page: every registered video with its animated images, as plain HTML.

One page, no JavaScript, no framework: a person checking what a library produced opens it in any
browser. It is served behind the same signed-link auth as the images (``engine serve`` prints a
signed link at start), and every image on it is a signed link too.
"""

from __future__ import annotations

from html import escape

from ..vod import Service

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
section { margin-bottom: 2em; } h2 { font-size: 1.1em; margin: 0 0 .5em; }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }
figcaption { color: #555; font-size: 12px; } img { max-width: 480px; height: auto; background: #eee; }
"""


def _kilobytes(size: int) -> str:
    return f"{size / 1024:.1f} KB" if size < 1 << 20 else f"{size / (1 << 20):.2f} MB"


def render_gallery(service: Service) -> str:
    """The page, newest videos last, each video's images oldest first."""
    sections = []
    for video in service.videos():
        figures = []
        for image in service.images(video.id):
            url = escape(service.image_url(image), quote=True)
            caption = (f"{escape(image.format.upper())} · {image.width}×{image.height} · {image.fps:g} fps · "
                       f"{_kilobytes(image.bytes)}")
            figures.append(f'<figure><img src="{url}" width="{image.width}" height="{image.height}" '
                           f'alt="{escape(video.title, quote=True)} ({escape(image.format)})">'
                           f"<figcaption>{caption}</figcaption></figure>")
        body = "".join(figures) or "<p>No animated images yet.</p>"
        sections.append(f"<section><h2>{escape(video.title)} <small>({escape(video.id)}, {video.duration:g} s, "
                        f"{video.width}×{video.height})</small></h2>{body}</section>")
    content = "".join(sections) or "<p>No videos registered yet.</p>"
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Animated previews</title>"
            f"<style>{_STYLE}</style></head><body><h1>Animated previews</h1>{content}</body></html>")
