"""The compiled CPU loops: one list of them, warmed once at install."""

from pathlib import Path

from animated_previews.kernels import compiled


def test_the_list_of_loops_is_every_scan_module_and_warming_imports_them_all():
    kernels = Path(compiled.__file__).parent
    assert set(compiled.LOOPS) == {path.stem for path in kernels.glob("*_scan.py")}
    compiled.warm()
    import sys

    assert all(f"{compiled.__package__}.{name}" in sys.modules for name in compiled.LOOPS)
