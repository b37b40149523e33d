"""The benchmark's memory sampler: what its peaks promise."""

from __future__ import annotations

from bench.process_tree import MemorySampler


def test_the_trees_peak_is_never_reported_below_one_members_peak():
    # A child's VmHWM (or an ended ffmpeg's ru_maxrss) can peak between two samples of the tree's
    # summed RSS; the tree held at least that much at that moment, so the total says so.
    sampler = MemorySampler(interval=60)
    sampler.sample()
    sampled = sampler.to_dict()["peak_total_rss_mib"]
    sampler.note_child_maxrss(int((sampled + 500) * 1024))
    report = sampler.to_dict()
    assert report["peak_worker_rss_mib"] == round(sampled + 500, 1)
    assert report["peak_total_rss_mib"] >= report["peak_worker_rss_mib"]


def test_a_sample_counts_this_process_and_its_children():
    sampler = MemorySampler(interval=60)
    sampler.sample()
    report = sampler.to_dict()
    assert report["samples"] == 1
    assert report["peak_bench_rss_mib"] > 10  # this Python process with torch imported or not
    assert report["peak_total_rss_mib"] >= report["peak_bench_rss_mib"]
