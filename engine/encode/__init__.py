"""Turning frames into image bytes. The only place that knows the GIF and WebP formats."""

from engine.encode.gif import encode_gif
from engine.encode.webp import encode_webp

__all__ = ["encode_gif", "encode_webp"]
