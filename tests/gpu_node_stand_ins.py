"""Stand-ins for a job's two halves in the GPU node executor (engine/executors/gpu_node.py), to
watch which process and thread runs each half and when.

Lives in its own module on the tests' sys.path because the halves travel to the node's process
by reference (pickled by name) and must import there. What a stand-in does is chosen by its
entry's id:

* ``meet<N>-...``: the decode half waits until N decode halves are running at once (a barrier
  of N), so N of them can only all finish if N decode threads run side by side;
* ``first``/``second``: ``first``'s encode half waits until ``second``'s decode half has
  started, and ``second``'s decode half waits until ``first``'s encode has started: both finish
  only if encoding runs beside decoding (with one decode thread: on another thread);
* ``poison...``: the decode half kills its process, as a decoder crashing in native code does;
* ``raise...``: the decode half raises (a bug), ``encode-raise...``: the encode half does.

Every Result's notes say ``decoded pid:thread-ident:thread-name`` and ``encoded ...``. Waits
are bounded (``PATIENCE`` s) only so that a broken executor fails the test instead of hanging
it; a wait that runs out is written into the notes and the test fails on that note."""

from __future__ import annotations

import os
import threading

from animated_previews.engine.result import Result

PATIENCE = 60.0

_lock = threading.Lock()
_barriers: dict[int, threading.Barrier] = {}
_second_decoding = threading.Event()
_first_encoding = threading.Event()


def _me() -> str:
    thread = threading.current_thread()
    return f"{os.getpid()}:{threading.get_ident()}:{thread.name}"


def _barrier(parties: int) -> threading.Barrier:
    with _lock:
        return _barriers.setdefault(parties, threading.Barrier(parties))


def decode(entry, out_dir, decoder, device):
    notes = [f"decoded {_me()}", f"device {device}"]
    if entry.id.startswith("poison"):
        os._exit(139)
    if entry.id.startswith("raise"):
        raise RuntimeError("a bug in the decode half")
    if entry.id.startswith("meet"):
        parties = int(entry.id[4:].split("-")[0])
        try:
            _barrier(parties).wait(PATIENCE)
            notes.append(f"met {parties}")
        except threading.BrokenBarrierError:
            notes.append(f"never met {parties} decode halves at once")
    if entry.id == "second":
        _second_decoding.set()
        if not _first_encoding.wait(PATIENCE):
            notes.append("first's encode never started while second decoded")
    return {"entry": entry, "notes": notes}


def encode(rendered):
    entry, notes = rendered["entry"], rendered["notes"]
    notes.append(f"encoded {_me()}")
    if entry.id.startswith("encode-raise"):
        raise ValueError("a bug in the encode half")
    if entry.id == "first":
        _first_encoding.set()
        if _second_decoding.wait(PATIENCE):
            notes.append("second decoded while first encoded")
        else:
            notes.append("second's decode never started while first encoded")
    return Result(id=entry.id, status="success", line=entry.line, notes=tuple(notes))
