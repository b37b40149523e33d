"""How the API answers a failure: the service's error codes, HTTP statuses and body shape.

Every answer, good or bad, carries a ``RequestId``; a failure is ``{RequestId, HostId, Code,
Message}`` with a 4xx/5xx status, as the service answers, so an SDK raises its usual
ServerException with the same code a script already handles. :class:`ApiError` is raised by the
request layer (signature, parameters); an :class:`EngineError` from the service is translated by
:func:`from_engine_error`.
"""

from __future__ import annotations

from ..errors import EngineError, ErrorCode


class ApiError(Exception):
    """A refused request: HTTP ``status``, the service's ``code``, a message for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def missing(name: str) -> ApiError:
    return ApiError(400, "MissingParameter", f"The input parameter \"{name}\" that is mandatory for processing "
                                             f"this request is not supplied.")


def invalid(name: str, why: str) -> ApiError:
    return ApiError(400, "InvalidParameter", f"The parameter \"{name}\" is invalid: {why}")


_BY_ENGINE_CODE: dict[str, tuple[int, str]] = {
    ErrorCode.INVALID_PARAMETER.value: (400, "InvalidParameter"),
    ErrorCode.INVALID_TIME_RANGE.value: (400, "InvalidParameter"),
    ErrorCode.INVALID_VIDEO_FORMAT.value: (400, "InvalidVideoFormat"),
    ErrorCode.INPUT_NOT_FOUND.value: (404, "InvalidFile.NotFound"),
    ErrorCode.VIDEO_NOT_FOUND.value: (404, "InvalidVideo.NotFound"),
    ErrorCode.TEMPLATE_NOT_FOUND.value: (404, "InvalidTemplate.NotFound"),
    ErrorCode.JOB_NOT_FOUND.value: (404, "NoSuchResource"),
    "Forbidden": (403, "Forbidden"),
    "DynamicImageNotFound": (404, "NoSuchResource"),
    "AccessKeyNotFound": (404, "InvalidAccessKeyId.NotFound"),
    ErrorCode.RESOURCE_EXHAUSTED.value: (503, "ServiceUnavailable"),
    ErrorCode.STORE_ERROR.value: (503, "ServiceUnavailable"),
}
"""Engine codes the API answers with another code or status; the rest are 500 InternalError."""


def from_engine_error(error: EngineError) -> ApiError:
    status, code = _BY_ENGINE_CODE.get(error.code.value, (500, "InternalError"))
    return ApiError(status, code, error.message)
