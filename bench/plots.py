"""PNG plots of bench and scaling results (matplotlib, the optional ``bench`` extra).

Every function returns False, and draws nothing, when matplotlib is not installed, so the bench
itself runs without it (``pip install -e ".[bench]"`` or ``make bench`` installs it).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

STAGE_COLOURS = {"probe": "#8c8c8c", "decode": "#4c72b0", "kernels": "#dd8452", "encode": "#55a868",
                 "write": "#c44e52"}


def _plt():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def available() -> bool:
    return _plt() is not None


def _machine_line(report: dict) -> str:
    m = report.get("machine", {})
    return (f"{m.get('cpu_model', '?')}, {m.get('cpus_usable', '?')} CPUs, {m.get('workers', '?')} workers; "
            f"{str(m.get('date', ''))[:16]}; git {str(m.get('git_commit', ''))[:8]}")


def plot_bench(report: dict, png: Path) -> bool:
    """Two panels: throughput per path (clips/s, output frames/s in the labels) and the mean
    stage breakdown per clip, stacked; unavailable paths are named, not drawn."""
    plt = _plt()
    if plt is None:
        return False
    paths = list(report["paths"].items())
    names = [p for p, _ in paths]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (p, s) in enumerate(paths):
        if "clips_per_s" not in s:
            why = textwrap.fill(s.get("status", "?"), 18)
            for ax in (ax1, ax2):
                ax.text(i, 0.02, why, va="bottom", ha="center", fontsize=7, color="#a00",
                        transform=ax.get_xaxis_transform())
            continue
        ax1.bar(i, s["clips_per_s"] or 0, color="#4c72b0")
        ax1.text(i, s["clips_per_s"] or 0, f"{s['clips_per_s']:.2f} clips/s\n{s['output_frames_per_s']:.0f} frames/s",
                 ha="center", va="bottom", fontsize=8)
        bottom = 0.0
        st = s["stage_mean_s"]
        if p == "ffmpeg":
            ax2.bar(i, st.get("total") or 0, color="#bbbbbb", label="ffmpeg process (not split)")
            continue
        for stage, colour in STAGE_COLOURS.items():
            v = st.get(stage) or 0.0
            ax2.bar(i, v, bottom=bottom, color=colour, label=stage if i == names.index(p) else None)
            bottom += v
    for ax in (ax1, ax2):
        ax.set_xlim(-0.6, len(names) - 0.4)
    ax1.set_xticks(range(len(names)), names)
    ax1.set_ylabel("clips per second (best run)")
    ax1.set_title("throughput")
    ax1.margins(y=0.25)
    ax2.set_xticks(range(len(names)), names)
    ax2.set_ylabel("seconds per clip (mean)")
    ax2.set_title("where a clip's time goes")
    handles, labels = ax2.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax2.legend(uniq.values(), uniq.keys(), fontsize=8, loc="upper left")
    ax2.margins(y=0.3)
    cfg = report.get("config", {})
    fig.suptitle(f"engine bench: {cfg.get('jobs')} jobs, {Path(str(cfg.get('manifest', ''))).name}\n{_machine_line(report)}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return True


def plot_curve(curve: dict, png: Path) -> bool:
    """One scaling curve: left, seconds per job against the varied quantity with the engine's
    stage breakdown stacked under it; right, the curve's second metric (``curve['right']``:
    source frames decoded per output frame, peak RSS, ...)."""
    plt = _plt()
    if plt is None:
        return False
    pts = [p for p in curve["points"] if p.get("s_per_job") is not None]
    xs = [p["x"] for p in pts]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    bottoms = [0.0] * len(pts)
    for stage, colour in STAGE_COLOURS.items():
        vals = [(p.get("stage_mean_s") or {}).get(stage) or 0.0 for p in pts]
        tops = [b + v for b, v in zip(bottoms, vals)]
        ax1.fill_between(xs, bottoms, tops, color=colour, alpha=0.55, label=f"{stage} (one job's own time)", step=None)
        bottoms = tops
    ax1.plot(xs, [p["s_per_job"] for p in pts], "k.-", label="batch wall ÷ jobs")
    if all(p.get("cpu_s_per_job") for p in pts):
        ax1.plot(xs, [p["cpu_s_per_job"] for p in pts], "o:", color="#6a3d9a", label="CPU s ÷ jobs (all processes)")
    if any(p.get("s_per_job_steady") for p in pts):
        ax1.plot(xs, [p.get("s_per_job_steady") for p in pts], "k^--", label="÷ jobs, pool start-up excluded")
    ax1.set_xlabel(curve["x_label"])
    ax1.set_ylabel("seconds per job")
    top = max([b for b in bottoms] + [p["s_per_job"] for p in pts] + [p.get("cpu_s_per_job") or 0 for p in pts] + [0])
    ax1.set_ylim(0, top * 1.45 + 1e-9)  # head room for the legend above the data
    if curve.get("x_log"):
        ax1.set_xscale("log")
    ax1.legend(fontsize=7, loc="upper left", ncol=2)
    ax1.set_title(curve["title"], fontsize=10)
    right = curve.get("right") or {}
    key = right.get("key")
    if key:
        k = right.get("scale", 1.0)
        ax2.plot(xs, [None if p.get(key) is None else p[key] * k for p in pts], "o-", color="#c44e52",
                 label=right.get("label", key))
        for extra in right.get("extra", []):
            ax2.plot(xs, [p.get(extra["key"]) for p in pts], "s--", color=extra.get("colour", "#4c72b0"),
                     label=extra.get("label", extra["key"]))
        ax2.set_ylabel(right.get("y_label", key))
        ax2.set_ylim(bottom=0, top=max([(p.get(key) or 0) * k for p in pts] + [0]) * 1.25 + 1e-9
                     if right.get("zero", True) else None)
        ax2.legend(fontsize=8)
    ax2.set_xlabel(curve["x_label"])
    if curve.get("x_log"):
        ax2.set_xscale("log")
    ax2.set_title(right.get("title", ""), fontsize=10)
    if len(xs) <= 10:
        for ax in (ax1, ax2):
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            ax.minorticks_off()
    fig.suptitle(_machine_line(curve), fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return True
