"""JSONL errors name file and line; paths cannot escape their root; appends survive crashes."""
import pytest

from adamllm.io import DataError, JsonlAppender, PathEscapeError, completed_ids, read_jsonl, resolve_under
from adamllm.records import TaskTriplet


def test_bad_json_and_bad_record_name_the_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "1", "image": "a", "instruction": "q", "precise": "p", "informative": "i"}\n\n{oops\n')
    with pytest.raises(DataError, match=r"t.jsonl:3: invalid JSON"):
        read_jsonl(path, TaskTriplet)
    path.write_text('{"id": "1", "image": "a", "instruction": "q", "precise": "p"}\n')
    with pytest.raises(DataError, match=r"t.jsonl:1: informative: Field required"):
        read_jsonl(path, TaskTriplet)


def test_paths_cannot_escape_root(tmp_path):
    assert resolve_under(tmp_path, "img/a.png") == tmp_path / "img" / "a.png"
    for bad in ("../secret", "/etc/passwd", "img/../../x"):
        with pytest.raises(PathEscapeError):
            resolve_under(tmp_path, bad)


def test_appender_and_completed_ids_ignore_a_torn_line(tmp_path):
    path = tmp_path / "p.jsonl"
    with JsonlAppender(path) as out:
        out.write({"id": "a"})
        out.write({"id": "b"})
    with path.open("a") as handle:
        handle.write('{"id": "c"')  # a crash mid-write
    assert completed_ids(path) == {"a", "b"}
    with JsonlAppender(path) as out:  # resuming cuts the torn line before appending
        out.write({"id": "c"})
    assert completed_ids(path) == {"a", "b", "c"}
    assert len(read_jsonl(path)) == 3
