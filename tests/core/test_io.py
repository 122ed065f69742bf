"""JSONL and JSON-array errors name file and line; paths cannot escape their root; appends survive crashes."""
import json

import pytest

from adamllm.io import (DataError, JsonlAppender, PathEscapeError, completed_ids, iter_records, read_records,
                        resolve_under)
from adamllm.records import TaskTriplet

RECORDS = [{"id": "a", "tags": ["x", "y"]}, {"id": "b", "text": "two\nlines"}, {"id": "c"}]


def test_bad_json_and_bad_record_name_the_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "1", "image": "a", "instruction": "q", "precise": "p", "informative": "i"}\n\n{oops\n')
    with pytest.raises(DataError, match=r"t.jsonl:3: invalid JSON"):
        read_records(path, TaskTriplet)
    path.write_text('{"id": "1", "image": "a", "instruction": "q", "precise": "p"}\n')
    with pytest.raises(DataError, match=r"t.jsonl:1: informative: Field required"):
        read_records(path, TaskTriplet)
    path.write_text('{"id": "a"}\n["not", "an", "object"]\n')
    with pytest.raises(DataError, match=r"t.jsonl:2: expected a JSON object, got list"):
        read_records(path)


def test_where_names_file_and_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECORDS[:2]) + "\n\n" + json.dumps(RECORDS[2]) + "\n")
    assert list(iter_records(path)) == [(f"{path}:1", RECORDS[0]), (f"{path}:2", RECORDS[1]),
                                        (f"{path}:4", RECORDS[2])]


def test_pretty_printed_json_array_reads_like_jsonl(tmp_path):
    jsonl, array = tmp_path / "r.jsonl", tmp_path / "r.json"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    array.write_text(json.dumps(RECORDS, indent=2))
    # [                      1
    #   {                    2   <- a
    #     "id": "a",         3
    #     "tags": [          4
    #       "x",             5
    #       "y"              6
    #     ]                  7
    #   },                   8
    #   {                    9   <- b
    #     "id": "b",        10
    #     "text": "two\nlines"   11 (an escaped newline, not a line break)
    #   },                  12
    #   {                   13   <- c
    #     "id": "c"         14
    #   }                   15
    # ]                     16
    assert read_records(array) == read_records(jsonl) == RECORDS
    assert [where for where, _ in iter_records(array)] == [f"{array}:2", f"{array}:9", f"{array}:13"]
    # no suffix: sniffed from the first character
    sniffed = tmp_path / "records"
    sniffed.write_text("\n" + array.read_text())
    assert [where for where, _ in iter_records(sniffed)] == [f"{sniffed}:3", f"{sniffed}:10", f"{sniffed}:14"]
    sniffed.write_text(jsonl.read_text())
    assert read_records(sniffed) == RECORDS


def test_json_array_errors_name_the_line(tmp_path):
    path = tmp_path / "r.json"
    good = {"id": "1", "image": "a", "instruction": "q", "precise": "p", "informative": "i"}
    bad = {"id": "2", "image": "a", "instruction": "q", "precise": "p"}
    path.write_text(json.dumps([good, bad], indent=2))
    # line 1 "[", lines 2-8 the first object (its 5 fields on lines 3-7), line 9 "  {" starts the second
    with pytest.raises(DataError, match=r"r\.json:9: informative: Field required$"):
        read_records(path, TaskTriplet)
    path.write_text('[\n  {"id": "a"},\n  "b",\n  {"id": "c"}\n]\n')
    with pytest.raises(DataError, match=r"r\.json:3: expected a JSON object, got str"):
        read_records(path)
    path.write_text('[\n  {"id": "a"},\n  {"id": "b",}\n]\n')
    with pytest.raises(DataError, match=r"r\.json:3: invalid JSON"):
        read_records(path)
    path.write_text('[\n  {"id": "a"}\n  {"id": "b"}\n]\n')  # a missing comma
    with pytest.raises(DataError, match=r"r\.json:3: invalid JSON"):
        read_records(path)
    path.write_text('{"id": "a"}\n')
    with pytest.raises(DataError, match=r"r\.json:1: expected a JSON array of objects"):
        read_records(path)


def test_byte_order_mark_is_accepted(tmp_path):
    for name, text in (("b.jsonl", '{"id": "a"}\n{"id": "b"}\n'), ("b.json", '[{"id": "a"}, {"id": "b"}]'),
                       ("b.txt", '[{"id": "a"}, {"id": "b"}]')):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert read_records(path) == [{"id": "a"}, {"id": "b"}]


def test_bytes_that_are_not_utf8_name_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": "a"}\n\n{"id": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin1\.jsonl:3: not UTF-8"):
        read_records(path)
    array = tmp_path / "latin1.json"
    array.write_bytes(b'[\n  {"id": "a"},\n  {"id": "caf\xe9"}\n]')
    with pytest.raises(DataError, match=r"latin1\.json:3: not UTF-8"):
        read_records(array)


def test_torn_last_line_is_skipped_only_when_tolerant(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "prediction": "caf\xc3')  # torn mid-character
    with pytest.raises(DataError, match=r"p\.jsonl:3: not UTF-8"):
        read_records(path)
    assert [r for _, r in iter_records(path, tolerant=True)] == [{"id": "a"}, {"id": "b"}]
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "predic')
    with pytest.raises(DataError, match=r"p\.jsonl:3: invalid JSON"):
        read_records(path)
    assert [where for where, _ in iter_records(path, tolerant=True)] == [f"{path}:1", f"{path}:2"]


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
    assert len(read_records(path)) == 3


def test_appender_cuts_a_torn_tail_longer_than_one_read_block(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": "a"}\n' + b'{"id": "b", "x": "' + b"y" * 200_000)  # a crash mid-line
    with JsonlAppender(path) as out:
        out.write({"id": "c"})
    assert path.read_bytes() == b'{"id": "a"}\n{"id": "c"}\n'
    only_torn = tmp_path / "torn.jsonl"
    only_torn.write_bytes(b'{"id": ')
    with JsonlAppender(only_torn) as out:
        out.write({"id": "d"})
    assert only_torn.read_bytes() == b'{"id": "d"}\n'
