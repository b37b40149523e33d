"""Image files go out as a CDN origin sends them, and only from inside the images folder."""

from __future__ import annotations

import os

from animated_previews.engine.api.files import answer_for, inside, read_span


def test_a_whole_file_has_its_type_length_etag_and_cache_headers(tmp_path):
    path = tmp_path / "a.webp"
    path.write_bytes(b"0123456789")
    answer = answer_for(path, None, None)
    assert answer.status == 200 and answer.headers["Content-Type"] == "image/webp"
    assert answer.headers["Content-Length"] == "10" and answer.headers["Accept-Ranges"] == "bytes"
    assert answer.headers["ETag"].startswith('"') and "max-age" in answer.headers["Cache-Control"]
    assert b"".join(read_span(path, answer)) == b"0123456789"


def test_ranges_are_answered_with_206_and_unsatisfiable_ones_with_416(tmp_path):
    path = tmp_path / "a.gif"
    path.write_bytes(b"0123456789")
    middle = answer_for(path, "bytes=2-5", None)
    assert middle.status == 206 and middle.headers["Content-Range"] == "bytes 2-5/10"
    assert b"".join(read_span(path, middle)) == b"2345"
    assert b"".join(read_span(path, answer_for(path, "bytes=7-", None))) == b"789"
    assert b"".join(read_span(path, answer_for(path, "bytes=-3", None))) == b"789"
    assert b"".join(read_span(path, answer_for(path, "bytes=8-100", None))) == b"89"
    refused = answer_for(path, "bytes=10-", None)
    assert refused.status == 416 and refused.headers["Content-Range"] == "bytes */10"
    assert answer_for(path, "bytes=0-1,4-5", None).status == 200  # several ranges: the whole file


def test_a_matching_etag_is_answered_304(tmp_path):
    path = tmp_path / "a.gif"
    path.write_bytes(b"x")
    etag = answer_for(path, None, None).headers["ETag"]
    assert answer_for(path, None, etag).status == 304
    assert answer_for(path, None, '"other"').status == 200


def test_nothing_outside_the_images_folder_is_reachable(tmp_path):
    root = tmp_path / "images"
    (root / "v").mkdir(parents=True)
    (root / "v" / "a.gif").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("no")
    os.symlink(tmp_path / "secret.txt", root / "v" / "link.gif")
    assert inside(root, "v/a.gif") == (root / "v" / "a.gif").resolve()
    for bad in ("../secret.txt", "v/../../secret.txt", "/etc/passwd", "v/link.gif", "v", "v//a.gif", "v/a.gif\x00",
                "v/missing.gif"):
        assert inside(root, bad) is None, bad


def test_a_symlink_loop_in_the_images_folder_is_not_found_not_a_crash(tmp_path):
    """Before: Path.resolve raised RuntimeError (Python before 3.13) out of the request."""
    root = tmp_path / "images"
    root.mkdir()
    os.symlink(root / "b.gif", root / "a.gif")
    os.symlink(root / "a.gif", root / "b.gif")
    assert inside(root, "a.gif") is None
