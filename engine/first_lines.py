"""Which manifest line first named each id, output or image: 16 bytes a line, however long the manifest.

A batch refuses a line that reuses an earlier line's id, output or image, naming the earlier
line. Remembering every name as a Python string costs about 200 bytes a line (a million-line
manifest: 200 MB for each thing remembered); :class:`FirstLines` keeps an 8-byte digest of each
name and the 8-byte line number instead, in sorted NumPy arrays, with a small dict for the newest
names that is merged into the arrays when it fills. Looking a name up costs one hash, one dict
probe and one binary search (a few microseconds).

Digests can collide: two different names with the same 64-bit BLAKE2b digest would make the
second look like a repeat of the first. Among a million names the odds of any collision are
about 3 in 100 million (n² / 2⁶⁵), which the memory saved is worth; the error message names the
earlier line, so the rare false refusal is easy to see and to work around (rename the id).
"""

from __future__ import annotations

import hashlib

import numpy as np

_RECENT_MAX = 1 << 14
"""Names kept in the dict before it is merged into the sorted arrays (about 1.5 MB at most); a
merge costs a pass over the arrays, so a million names cost about 60 merges."""


def _digest(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


class FirstLines:
    """name -> the first line that named it; :meth:`claim` records a name and says who had it."""

    def __init__(self) -> None:
        self._recent: dict[int, int] = {}
        self._digests = np.empty(0, dtype=np.uint64)
        self._lines = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._recent) + len(self._digests)

    def first(self, name: str) -> int | None:
        """The line that named ``name`` first, or None if none did."""
        return self._first(_digest(name))

    def claim(self, name: str, line: int) -> int | None:
        """Record that ``line`` names ``name``: None if it is the first to, else the first line
        that did (which keeps the name: a repeat never takes it over)."""
        digest = _digest(name)
        earlier = self._first(digest)
        if earlier is None:
            self._recent[digest] = line
            if len(self._recent) >= _RECENT_MAX:
                self._merge()
        return earlier

    def _first(self, digest: int) -> int | None:
        line = self._recent.get(digest)
        if line is not None:
            return line
        if len(self._digests):
            key = np.uint64(digest)
            at = int(np.searchsorted(self._digests, key))
            if at < len(self._digests) and self._digests[at] == key:
                return int(self._lines[at])
        return None

    def _merge(self) -> None:
        """Move the dict's names into the sorted arrays, inserted in place: while it runs the old
        and new arrays are alive together (24 bytes a name at the peak, not 16)."""
        digests = np.fromiter(self._recent.keys(), dtype=np.uint64, count=len(self._recent))
        lines = np.fromiter(self._recent.values(), dtype=np.int64, count=len(self._recent))
        order = np.argsort(digests)
        digests, lines = digests[order], lines[order]
        at = np.searchsorted(self._digests, digests)
        self._digests = np.insert(self._digests, at, digests)
        self._lines = np.insert(self._lines, at, lines)
        self._recent = {}
