"""``engine bench``: the same jobs through each path (cpu, cuda, ffmpeg), measured the same way.

A thin click layer over ``bench/paths.py`` (the run), ``bench/harness.py`` (the paths) and
``bench/report.py`` (the table and the files). The ``bench`` package lives in the repository, not
in the installed package (it is a measuring tool with its own job files and committed results,
and it needs ffmpeg and matplotlib that the engine does not), so this command works from a
checkout: run it from the repository root (or set PYTHONPATH to it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def _import_bench():
    """The bench package's harness, paths and report modules, from the repository checkout."""
    try:
        from bench import harness, paths, report
    except ImportError:
        root = Path(__file__).resolve().parent.parent
        if (root / "bench" / "paths.py").exists() and str(root) not in sys.path:
            sys.path.insert(0, str(root))
        try:
            from bench import harness, paths, report
        except ImportError as exc:
            raise click.UsageError(
                f"`engine bench` needs the repository checkout (the bench/ folder is not installed): "
                f"run it from the repository root ({exc})") from None
    return harness, paths, report


def _split(value: str) -> list[str]:
    return [v.strip().lower() for v in value.split(",") if v.strip() and v.strip().lower() != "none"]


@click.command("bench")
@click.option("--manifest", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The jobs (the manifest format of `engine run`).")
@click.option("--devices", default="cpu,cuda", show_default=True,
              help="Engine paths, comma-separated: cpu, cuda. A device that cannot run here is reported as unavailable.")
@click.option("--baseline", default="none", show_default=True, help="Baseline path: ffmpeg, or none.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed runs of the whole manifest per path (alternated between paths); the best is reported.")
@click.option("--warmup", type=click.IntRange(min=0), default=None,
              help="Jobs run untimed per path first [default: one per worker].")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Jobs in flight on every path [default: the cores there are].")
@click.option("--input-root", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder that relative inputs start from [default: the manifest's folder].")
@click.option("--psnr-jobs", type=click.IntRange(min=0), default=None,
              help="Score PSNR on the first N jobs only (0: none) [default: all].")
@click.option("--name", default=None, help="Results go to bench/results/NAME.json and NAME.png [default: bench-DATE-TIME].")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the results [default: bench/results].")
@click.option("--no-plot", is_flag=True, help="Skip the PNG.")
@click.option("--keep-outputs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Copy the last run's images of every path here.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
def bench(manifest: Path, devices: str, baseline: str, repeat: int, warmup: int | None, workers: int | None,
          input_root: Path | None, psnr_jobs: int | None, name: str | None, results_dir: Path | None,
          no_plot: bool, keep_outputs: Path | None, as_json: bool) -> None:
    """Benchmark MANIFEST's jobs on each path: throughput, stages, memory, bytes, PSNR.

    \b
    Per path: clips/s, output frames/s, source frames decoded per output frame, seconds per
    stage (probe, decode, kernels, encode, write), peak RSS (worker / process tree), peak GPU
    memory, mean bytes and PSNR against one common reference. Writes the report to
    bench/results/NAME.json and a plot to NAME.png. Needs the repository checkout (bench/).
    Exit status: 0, or 1 when a job failed on a path that could run.
    """
    harness, paths, report = _import_bench()
    dev = _split(devices)
    bad = [d for d in dev if d not in harness.ENGINE_PATHS]
    if bad:
        raise click.UsageError(f"--devices takes {', '.join(harness.ENGINE_PATHS)}; got {', '.join(bad)}")
    base = _split(baseline)
    bad = [b for b in base if b not in harness.BASELINES]
    if bad:
        raise click.UsageError(f"--baseline takes {', '.join(harness.BASELINES)} or none; got {', '.join(bad)}")
    if not dev and not base:
        raise click.UsageError("nothing to run: give --devices and/or --baseline")
    log = (lambda m: None) if as_json else (lambda m: click.echo(m, err=True))
    result = paths.run_bench(manifest, devices=dev, baselines=base, repeat=repeat, warmup=warmup, workers=workers,
                             input_root=input_root, psnr_jobs=psnr_jobs, keep_dir=keep_outputs, log=log)
    written = report.write_results(result, name or report.default_name("bench-"), results_dir or harness.RESULTS_DIR,
                                   plot=not no_plot)
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        click.echo(report.render_table(result))
        click.echo("wrote " + ", ".join(str(p) for p in written.values()))
        if not no_plot and "png" not in written:
            click.echo("no plot: matplotlib is not installed (pip install -e '.[bench]')", err=True)
    failed = any(isinstance(s.get("failed"), int) and s["failed"] for s in result["paths"].values())
    sys.exit(1 if failed or not result["config"]["jobs"] else 0)


def register_bench_command(group: click.Group) -> None:
    group.add_command(bench)
