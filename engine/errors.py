"""The one error type that crosses every boundary of the engine.

A job that cannot be done ends as a ``Result`` carrying an :class:`ErrorCode` and a message
that tells the user what to change; it never raises out of the batch runner. The codes are the
service's own vocabulary (``InvalidVideoFormat`` and friends), so that results, events and logs
read the same as the documentation users already know.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Why a job failed. The string value is what results and events carry."""

    INPUT_NOT_FOUND = "InputNotFound"
    INVALID_VIDEO_FORMAT = "InvalidVideoFormat"
    INVALID_TIME_RANGE = "InvalidTimeRange"
    INVALID_PARAMETER = "InvalidParameter"
    OUTPUT_ERROR = "OutputError"
    INTERNAL_ERROR = "InternalError"
    TEMPLATE_NOT_FOUND = "TemplateNotFound"
    VIDEO_NOT_FOUND = "VideoNotFound"
    JOB_NOT_FOUND = "JobNotFound"
    STORE_ERROR = "StoreError"
    """The store file cannot be opened or written (a path that is not a database, no permission)."""
    IMAGE_NOT_FOUND = "DynamicImageNotFound"
    """No animated image with that id (DeleteDynamicImage, or one already deleted)."""
    ACCESS_KEY_NOT_FOUND = "AccessKeyNotFound"
    """No access key with that AccessKeyId (``engine keys revoke``)."""
    FORBIDDEN = "Forbidden"
    """The request is well formed but not allowed: a media file outside every media root, a URL
    scheme the service does not fetch. The message names the rule."""
    MAX_BYTES_UNREACHABLE = "MaxBytesUnreachable"
    """The job's ``max_bytes`` cannot be met even with every loss its search may take (fewest
    colours or lowest quality, a third of the frames, a third of the size); the message names the
    smallest size reached."""
    FORMAT_UNAVAILABLE = "FormatUnavailable"
    """This installation cannot write the format asked for (``avif`` with a Pillow built without
    libavif); the job fails before anything is decoded and the message says what to install."""
    RESOURCE_EXHAUSTED = "ResourceExhausted"
    """The job ran out of memory: its worker process was killed by the kernel's out-of-memory
    killer (SIGKILL), or an allocation failed. Jobs the engine can tell in advance are too big are
    refused up front with InvalidParameter instead; the message says what to lower."""


class EngineError(Exception):
    """A failure with a code from :class:`ErrorCode` and a message meant for the user."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"

    def __reduce__(self):  # keep code and message across process boundaries
        return (type(self), (self.code, self.message))
