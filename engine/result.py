"""What became of one job: :class:`Result`, one line of ``results.jsonl``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import EngineError


@dataclass(frozen=True)
class Result:
    """Outcome of a job: ``status`` is "success" or "failed" (then ``error_code`` says why)."""

    id: str
    status: str
    input: str | None = None
    output: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: float | None = None
    duration: float | None = None
    bytes: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage (probe, decode, kernels, encode, write) and in all (total)."""
    source_frames_decoded: int | None = None
    device: str | None = None
    line: int | None = None
    source: dict[str, Any] | None = None
    """What the probe found in the input: codec, width (display), height, fps, duration (s), bytes
    (file size); None when the input could not be probed."""
    job_id: str | None = None
    """The job's id in the store (what events carry as JobId); None for a run without a store."""
    reused: bool = False
    """True when an earlier run already did this job (same input file and config) and it was not redone."""
    start: float | None = None
    """Where the clip starts in the source, seconds: the seek asked, or the one ``seek: "auto"``
    chose (its note says why); None for a failed job."""

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @classmethod
    def failure(cls, job_id: str, error: EngineError, **extra: Any) -> "Result":
        return cls(id=job_id, status="failed", error_code=error.code.value, error_message=error.message, **extra)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        """The inverse of :meth:`to_dict`; keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["notes"] = tuple(values.get("notes") or ())
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data
