"""The HTTP face of the service (``engine serve``): the VOD actions, signed images, the gallery.

It only speaks HTTP and the service's request and error shapes; everything it answers comes from
:class:`engine.vod.Service`. See :mod:`engine.api.server` for how a request is authenticated and
answered.
"""

from .server import ApiServer, ServeConfig, authenticate

__all__ = ["ApiServer", "ServeConfig", "authenticate"]
