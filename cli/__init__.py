"""The ``engine`` command: click faces over the engine's Python API (main, vod, bench, progress)."""
