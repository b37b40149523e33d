"""Shared pytest fixtures: synthetic index-stamped clips, bad inputs, the corpus.

Clips come from ``tests/clipmaker.py``: frame k of a clip shows index k, read
back with ``clipmaker.read_index`` (see that module).  Every distinct clip is
encoded once per test session into a session temp directory and shared, so
treat the returned paths as read-only (copy before modifying).

Fixtures
  clip_dir        session temp dir holding the cached clips
  clip_factory    callable(**make_clip_kwargs) -> Path, cached per session
  codec_clip      parametrised over clipmaker.VARIANTS (h264, hevc, vp9, vp8,
                  mpeg4, av1, h264-10bit, hevc-10bit, av1-10bit); yields
                  (variant_name, Path); skips variants this PyAV cannot encode
  h264_clip       50 frames 320x240 @25 fps, mp4
  vp9_clip        50 frames 320x240 @25 fps, webm
  long_gop_clip   h264, 150 frames @25 fps, keyframe every 50 frames (no scene cuts)
  vfr_clip        h264 mp4 with explicit irregular timestamps VFR_PTS
  audio_clip      h264 + aac, 50 frames
  clip_10bit      h264 yuv420p10le
  rotated_clip    h264 coded 320x240 with display rotation -90: shown 240x320 upright
  audio_only_file .m4a sine, no video
  not_media_file  random bytes named .mp4
  empty_file      zero bytes named .mp4
  truncated_clip  faststart mp4 cut at 60 %: opens, decodes the first part, then fails
  headless_clip   plain mp4 cut at 50 %: index (moov) lost, cannot be opened
  corpus          Path of ../shared/corpus (skips the test when absent)

Hooks: tests marked ``gpu`` are skipped when torch sees no CUDA device; tests
marked ``corpus`` are skipped when the corpus folder is absent.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
CORPUS_DIR = (REPO_ROOT / ".." / "shared" / "corpus").resolve()

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import clipmaker  # noqa: E402

#: presentation times (s) of ``vfr_clip``: irregular gaps, a 1 s hold, bursts
VFR_PTS = [0.0, 0.04, 0.08, 0.2, 0.25, 0.26, 0.27, 0.5, 1.5, 1.54, 1.6, 1.75, 2.0]


@pytest.fixture(autouse=True)
def private_store(tmp_path_factory):
    """Every test gets its own store: ``engine run`` and the VOD commands default to the per-user
    store, which a test must never touch (nor see another test's jobs in). Its own MonkeyPatch, so
    that the tests' ``monkeypatch`` is still set up after (and undone before) their own fixtures."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENGINE_STORE", str(tmp_path_factory.mktemp("store") / "store.db"))
        yield


# --------------------------------------------------------------------------
# collection hooks
# --------------------------------------------------------------------------

def _cuda_available() -> bool:
    try:
        import torch
    except Exception:
        return False
    try:
        return bool(torch.cuda.is_available())
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    gpu_items = [it for it in items if it.get_closest_marker("gpu")]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="gpu test: no CUDA device visible to torch")
        for it in gpu_items:
            it.add_marker(skip)
    if not CORPUS_DIR.is_dir():
        skip = pytest.mark.skip(reason=f"corpus test: {CORPUS_DIR} is absent")
        for it in items:
            if it.get_closest_marker("corpus"):
                it.add_marker(skip)


# --------------------------------------------------------------------------
# clip cache
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """Session-wide directory holding the cached synthetic clips."""
    return tmp_path_factory.mktemp("clips")


class ClipFactory:
    """Callable ``(**make_clip_kwargs) -> Path``; each distinct set of
    arguments is encoded once, later calls return the same file."""

    def __init__(self, root: Path):
        self.root = root
        self._cache: dict[str, Path] = {}

    @staticmethod
    def _key(kind: str, kwargs: dict) -> str:
        return kind + ":" + repr(sorted((k, repr(v)) for k, v in kwargs.items()))

    def _name(self, key: str, label: str) -> Path:
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        return self.root / f"{label}-{digest}"

    def __call__(self, suffix: str | None = None, **kwargs) -> Path:
        """Encode (or reuse) ``clipmaker.make_clip(**kwargs)``.  ``suffix``
        (".mp4", ".mkv", ...) picks the container by file name; default is
        the codec's usual container (mp4, or webm for vp8/vp9)."""
        key = self._key("clip" + (suffix or ""), kwargs)
        if key not in self._cache:
            target = self._name(key, str(kwargs.get("codec", "h264")))
            if suffix:
                target = target.with_suffix(suffix)
            self._cache[key] = clipmaker.make_clip(target, **kwargs)
        return self._cache[key]

    def other(self, kind: str, suffix: str, **kwargs) -> Path:
        """Cached non-clip file: kind in {"audio_only", "not_media", "empty"}."""
        key = self._key(kind + suffix, kwargs)
        if key not in self._cache:
            target = self._name(key, kind).with_suffix(suffix)
            if kind == "audio_only":
                path = clipmaker.make_audio_only(target, **kwargs)
            elif kind == "not_media":
                path = clipmaker.make_not_media(target, **kwargs)
            elif kind == "empty":
                target.write_bytes(b"")
                path = target
            else:
                raise ValueError(kind)
            self._cache[key] = path
        return self._cache[key]

    def truncated(self, fraction: float, **kwargs) -> Path:
        """Cached copy of ``self(**kwargs)`` keeping the first ``fraction`` of its bytes."""
        src = self(**kwargs)
        key = self._key(f"trunc{fraction}", kwargs)
        if key not in self._cache:
            dst = self._name(key, "truncated").with_suffix(src.suffix)
            self._cache[key] = clipmaker.make_truncated(src, dst, fraction)
        return self._cache[key]


@pytest.fixture(scope="session")
def clip_factory(clip_dir) -> ClipFactory:
    """Cached ``clipmaker.make_clip``: ``clip_factory(codec="vp9", frames=30)``."""
    return ClipFactory(clip_dir)


# --------------------------------------------------------------------------
# ready-made clips
# --------------------------------------------------------------------------

@pytest.fixture(scope="session", params=list(clipmaker.VARIANTS), ids=list(clipmaker.VARIANTS))
def codec_clip(request, clip_factory) -> tuple[str, Path]:
    """(variant name, path) for every codec variant this PyAV can encode."""
    name = request.param
    if not clipmaker.variant_available(name):
        pytest.skip(f"this PyAV build cannot encode {name}")
    return name, clip_factory(**clipmaker.VARIANTS[name])


@pytest.fixture(scope="session")
def h264_clip(clip_factory) -> Path:
    return clip_factory(codec="h264")


@pytest.fixture(scope="session")
def vp9_clip(clip_factory) -> Path:
    if not clipmaker.variant_available("vp9"):
        pytest.skip("this PyAV build cannot encode vp9")
    return clip_factory(codec="vp9")


@pytest.fixture(scope="session")
def long_gop_clip(clip_factory) -> Path:
    """h264, 150 frames at 25 fps, keyframes exactly at 0, 50, 100."""
    return clip_factory(codec="h264", frames=150, gop=50)


@pytest.fixture(scope="session")
def vfr_pts() -> list[float]:
    return list(VFR_PTS)


@pytest.fixture(scope="session")
def vfr_clip(clip_factory) -> Path:
    """h264 mp4 whose frame k is presented at VFR_PTS[k] seconds."""
    return clip_factory(codec="h264", pts_seconds=tuple(VFR_PTS))


@pytest.fixture(scope="session")
def audio_clip(clip_factory) -> Path:
    return clip_factory(codec="h264", audio=True)


@pytest.fixture(scope="session")
def clip_10bit(clip_factory) -> Path:
    return clip_factory(codec="h264", pix_fmt="yuv420p10le")


@pytest.fixture(scope="session")
def rotated_clip(clip_factory) -> Path:
    """Coded 320x240 sideways; the display matrix says rotate -90° (90°
    clockwise), so a player shows 240x320 = np.rot90(coded, -1), upright:
    read_index works on the displayed frame and refuses the coded one."""
    return clip_factory(codec="h264", rotation=-90, frames=25)


@pytest.fixture(scope="session")
def audio_only_file(clip_factory) -> Path:
    return clip_factory.other("audio_only", ".m4a")


@pytest.fixture(scope="session")
def not_media_file(clip_factory) -> Path:
    return clip_factory.other("not_media", ".mp4")


@pytest.fixture(scope="session")
def empty_file(clip_factory) -> Path:
    return clip_factory.other("empty", ".mp4")


@pytest.fixture(scope="session")
def truncated_clip(clip_factory) -> Path:
    """faststart h264 mp4 (100 frames) cut at 60 % of its bytes: opens, the
    first frames decode, the rest is missing."""
    return clip_factory.truncated(0.6, codec="h264", frames=100, faststart=True)


@pytest.fixture(scope="session")
def headless_clip(clip_factory) -> Path:
    """Plain h264 mp4 cut at 50 %: the moov index at the end is gone, so it
    cannot be opened at all."""
    return clip_factory.truncated(0.5, codec="h264", frames=100)


# --------------------------------------------------------------------------
# corpus
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared real-video corpus (``<repo>/../shared/corpus``); skips when absent."""
    if not CORPUS_DIR.is_dir():
        pytest.skip(f"corpus folder {CORPUS_DIR} is absent")
    return CORPUS_DIR
