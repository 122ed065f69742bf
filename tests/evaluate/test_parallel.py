"""Data-parallel evaluation: two processes (accelerate's debug launcher, gloo on CPU) split the samples
as the data stages do (round-robin), write one shard each, and the main process merges them in sample order."""
import json
from pathlib import Path

from adamllm.benchmark import Sample


class Questions:
    name, max_new_tokens, domain = "questions", 4, None

    def samples(self):
        return [Sample(str(i), f"question {i}", "yes", fields={"answer_type": "CLOSED"}) for i in range(7)]

    def get_scorer(self, scorer="legacy", seed=0):
        from adamllm.domains.scoring import get_scorer

        return get_scorer("slake", scorer, seed)


class Answers:
    """Answers "yes" to even questions and "no" to odd ones; logs what each rank was asked."""

    family = "fake"

    def __init__(self, log: Path):
        self.log = log

    def generate(self, conversations, images, settings=None):
        numbers = [int(c[-1]["content"].split()[-1]) for c in conversations]
        with self.log.open("a") as handle:
            handle.write("".join(f"{n}\n" for n in numbers))
        return ["yes" if n % 2 == 0 else "no" for n in numbers]


def _worker(out_dir: str) -> None:
    from accelerate import PartialState

    from adamllm.evaluation import process_state, evaluate

    PartialState._reset_state()  # the forked child must not reuse the parent's single-process state
    state = process_state()

    log = Path(out_dir) / f"asked.rank{state.process_index}.txt"
    evaluate(Answers(log), [Questions()], out_dir, batch_size=2, model_name="fake", progress=False)


def test_two_processes_split_the_samples_and_merge_in_order(tmp_path):
    from accelerate import PartialState, debug_launcher

    # samples 0 and 3 are already done (an earlier run): nobody is asked them again
    bench_dir = tmp_path / "questions"
    bench_dir.mkdir()
    earlier = [{"id": "0", "prediction": "yes", "label": "yes", "answer_type": "CLOSED"},
               {"id": "3", "prediction": "no", "label": "yes", "answer_type": "CLOSED"}]
    (bench_dir / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in earlier))

    debug_launcher(_worker, args=(str(tmp_path),), num_processes=2)
    PartialState._reset_state()

    asked = [sorted(int(n) for n in (tmp_path / f"asked.rank{r}.txt").read_text().split()) for r in (0, 1)]
    assert asked == [[1, 4, 6], [2, 5]]  # every other one of the 5 unfinished samples, as the data stages split
    records = [json.loads(line) for line in (bench_dir / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [str(i) for i in range(7)]
    assert not list(bench_dir.glob("predictions.rank*.jsonl"))
    report = json.loads((tmp_path / "report.json").read_text())
    entry = report["benchmarks"]["questions"]
    assert report["num_processes"] == 2
    # right: 0 (earlier "yes"), 2, 4, 6 ("yes"); wrong: 1, 5 ("no") and 3 (earlier "no")
    assert entry["scores"] == {"closed_accuracy": 100 * 4 / 7} and entry["counts"] == {"closed_accuracy": 7}
