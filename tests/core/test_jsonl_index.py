"""``JsonlIndex``: a JSONL file by record number, the records ``iter_records`` reads."""
import pytest

from adamllm.io import DataError, iter_records
from adamllm.jsonl_index import ChangedFile, JsonlIndex

MESSY = (b'\xef\xbb\xbf{"a": 1}\n\n   \n{"a": 2}\r\n\r\n{bad\n\xff\xfe\n {"a": 3}\n[1, 2]\n'
         b'{"a": "\\ud800"}\n{"a": 4}')


def indexed(path, limit=None):
    index = JsonlIndex(path, limit=limit)
    out = []
    for i in range(len(index)):
        try:
            out.append((index.where(i), index.record(i)))
        except DataError as exc:
            out.append(("error", str(exc)))
    return out


def test_the_index_reads_what_iter_records_reads_with_the_same_errors(tmp_path):
    path = tmp_path / "messy.jsonl"
    path.write_bytes(MESSY)
    errors = []
    expected = []
    for where, record in iter_records(path, on_error=lambda w, m: errors.append(f"{w}: {m}")):
        expected.append((where, record))
    got = indexed(path)
    assert [row for row in got if row[0] != "error"] == expected
    assert [row[1] for row in got if row[0] == "error"] == errors and len(errors) == 4
    assert [w for w, _ in expected] == [f"{path}:{n}" for n in (1, 4, 8, 11)]
    assert indexed(path, limit=2) == got[:2]


def test_empty_and_blank_files_have_no_records(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.jsonl").write_bytes(b"\xef\xbb\xbf\n  \n\r\n")
    assert len(JsonlIndex(tmp_path / "empty.jsonl")) == 0
    assert len(JsonlIndex(tmp_path / "blank.jsonl")) == 0


def test_a_file_changed_after_indexing_is_refused(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    index = JsonlIndex(path)
    path.write_text('{"a": 1}\n{"a": 22}\n')
    with pytest.raises(ChangedFile, match="changed while it was being read"):
        index.record(1)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        JsonlIndex(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_lines_across_read_chunks_are_found_as_iter_records_finds_them(chunk, tmp_path, monkeypatch):
    """The scan reads the file in chunks; a line may start, end or be blank at a chunk's edge."""
    import random

    import adamllm.jsonl_index as jsonl_index

    monkeypatch.setattr(jsonl_index, "_CHUNK", chunk)
    for trial in range(25):
        rng = random.Random(trial)
        parts = [rng.choice(['{"a": %d}' % k, "", "  ", ' {"b": 1}', "\r", "{bad"]) for k in range(rng.randint(0, 8))]
        raw = ("\n".join(parts)).encode()
        path = tmp_path / "x.jsonl"
        path.write_bytes(b"\xef\xbb\xbf" + raw if trial % 3 == 0 else raw)
        errors = []
        expected = list(iter_records(path, on_error=lambda w, m: errors.append(f"{w}: {m}")))
        got = indexed(path)
        assert [row for row in got if row[0] != "error"] == expected, raw
        assert [row[1] for row in got if row[0] == "error"] == errors, raw
