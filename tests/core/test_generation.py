"""adamllm.generation: length-sorted batches, order restored, OOM halving, per-sample refusals."""
import pytest

from adamllm.backbone import GenerationSettings
from adamllm.generation import GenerationError, generate_all


class FakeAdapter:
    """Answers each prompt with its own text; records every batch it was called with."""

    family = "fake"
    config = None
    tokenizer = None

    def __init__(self, oom_above: int | None = None, refuse: set[str] = frozenset(), oom_error=None) -> None:
        self.batches: list[list] = []
        self.calls: list[list] = []  # every call, failed ones included
        self.oom_above = oom_above
        self.refuse = set(refuse)
        self.oom_error = oom_error or RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.kwargs: list[dict] = []

    def _answer(self, prompts, images, settings, **kwargs):
        self.calls.append(list(prompts))
        self.kwargs.append(kwargs)
        if self.oom_above is not None and len(prompts) > self.oom_above:
            raise self.oom_error
        for p in prompts:
            if p in self.refuse:
                raise ValueError(f"sample {p!r} has too many tokens")
        self.batches.append(list(prompts))
        return [f"answer to {p} ({len(i)} images)" for p, i in zip(prompts, images)]

    def generate(self, conversations, images=None, settings=None):
        return self._answer([c[-1]["content"] for c in conversations], images, settings)

    def generate_from_text(self, prompts, images=None, settings=None, stop_tokens=None, image_root=None):
        return self._answer(list(prompts), images, settings, stop_tokens=stop_tokens)

    def render(self, messages, add_generation_prompt=False):
        return "".join(m["content"] for m in messages)


def _prompts(n: int) -> list[str]:
    # lengths deliberately out of order: 7, 2, 11, 4, ...
    return ["p" + str(i) + "x" * ((i * 7) % 13) for i in range(n)]


def test_answers_come_back_in_the_original_order():
    prompts = _prompts(23)
    fake = FakeAdapter()
    out = generate_all(fake, [([{"role": "user", "content": p}], [object()] * (i % 2)) for i, p in enumerate(prompts)],
                       GenerationSettings(), batch_size=4)
    assert out == [f"answer to {p} ({i % 2} images)" for i, p in enumerate(prompts)]
    assert sorted(p for b in fake.batches for p in b) == sorted(prompts)  # each once


def test_batches_are_length_sorted_and_full():
    prompts = _prompts(23)
    fake = FakeAdapter()
    generate_all(fake, [(p, []) for p in prompts], None, batch_size=5, method="generate_from_text")
    assert [len(b) for b in fake.batches] == [5, 5, 5, 5, 3]
    lengths = [len(p) for b in fake.batches for p in b]
    assert lengths == sorted(lengths, reverse=True)


class MeasuringAdapter(FakeAdapter):
    """Says each prompt's encoded length: here the reverse of its text length (as when the short
    prompts carry the large images), or None for the prompts in ``unknown``."""

    def __init__(self, unknown=frozenset()):
        super().__init__()
        self.unknown, self.roots = set(unknown), []

    def prompt_length(self, prompt, images=(), image_root=None):
        self.roots.append(image_root)
        return None if prompt in self.unknown else 1000 - len(prompt)


def test_batches_follow_the_adapters_encoded_length_when_it_has_one():
    prompts = _prompts(23)
    fake = MeasuringAdapter()
    out = generate_all(fake, [(p, []) for p in prompts], None, batch_size=5, method="generate_from_text",
                       image_root="/data")
    assert out == [f"answer to {p} (0 images)" for p in prompts]
    lengths = [len(p) for b in fake.batches for p in b]
    assert lengths == sorted(lengths) and lengths != sorted(lengths, reverse=True)  # shortest text first
    assert set(fake.roots) == {"/data"}
    # one request it cannot measure: every request is sorted by the text proxy (one scale)
    fake = MeasuringAdapter(unknown={prompts[3]})
    generate_all(fake, [(p, []) for p in prompts], None, batch_size=5, method="generate_from_text")
    lengths = [len(p) for b in fake.batches for p in b]
    assert lengths == sorted(lengths, reverse=True)


def test_out_of_memory_halves_the_batch_and_answers_every_request():
    prompts = _prompts(20)
    fake = FakeAdapter(oom_above=3)
    out = generate_all(fake, [(p, []) for p in prompts], None, batch_size=16, method="generate_from_text")
    assert out == [f"answer to {p} (0 images)" for p in prompts]
    assert [len(c) for c in fake.calls[:3]] == [16, 8, 4]  # halved on the same batch
    assert all(len(b) <= 2 for b in fake.batches) and sum(map(len, fake.batches)) == 20


def test_out_of_memory_on_one_request_is_raised():
    fake = FakeAdapter(oom_above=0)
    with pytest.raises(RuntimeError, match="out of memory"):
        generate_all(fake, [("a", []), ("b", [])], None, batch_size=2, method="generate_from_text")


def test_torch_out_of_memory_error_is_recognised():
    torch = pytest.importorskip("torch")
    fake = FakeAdapter(oom_above=1, oom_error=torch.cuda.OutOfMemoryError("no room"))
    out = generate_all(fake, [("a", []), ("bb", [])], None, batch_size=2, method="generate_from_text")
    assert out == ["answer to a (0 images)", "answer to bb (0 images)"]


def test_a_refused_sample_gets_none_and_the_rest_of_its_batch_is_answered():
    prompts = _prompts(10)
    bad = prompts[3]
    fake = FakeAdapter(refuse={bad})
    errors = []
    out = generate_all(fake, [(p, []) for p in prompts], None, batch_size=4, method="generate_from_text",
                       on_error=lambda i, exc: errors.append((i, exc)))
    assert out == [None if p == bad else f"answer to {p} (0 images)" for p in prompts]
    assert [i for i, _ in errors] == [3] and isinstance(errors[0][1], ValueError)


def test_method_kwargs_reach_the_adapter_and_contract_breaks_are_errors():
    fake = FakeAdapter()
    generate_all(fake, [("a", [])], None, method="generate_from_text", stop_tokens=["<eot>"])
    assert fake.kwargs == [{"stop_tokens": ["<eot>"]}]

    class Short(FakeAdapter):
        def generate(self, conversations, images=None, settings=None):
            return []

    with pytest.raises(GenerationError, match="returned 0 answers for 1 prompts"):
        generate_all(Short(), [([{"role": "user", "content": "a"}], [])], None)
    with pytest.raises(ValueError, match="method"):
        generate_all(fake, [], None, method="nope")


def test_no_torch_at_import():
    import subprocess
    import sys
    code = "import sys, adamllm.generation; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_batched_greedy_equals_per_sample_on_tiny_qwen2_vl(tmp_path):
    from PIL import Image

    from adamllm.backbone import BackboneConfig
    from adamllm.backbones.families import Qwen2VLAdapter
    from adamllm.backbones.tiny import build_tiny

    model_dir = build_tiny("qwen2_vl", tmp_path / "qwen")
    adapter = Qwen2VLAdapter(BackboneConfig(model=str(model_dir)))
    settings = GenerationSettings(max_new_tokens=6, min_new_tokens=6)
    questions = ["What is this?", "Describe the picture in detail please.", "Colour?", "Count the shapes you see.",
                 "Is it day or night in this image, and why?", "Hi"]
    requests = []
    for i, q in enumerate(questions):
        images = [Image.new("RGB", (56 + 28 * (i % 3), 56), (40 * i, 100, 200))] if i % 2 == 0 else []
        content = ("<image>" if images else "") + q
        requests.append(([{"role": "user", "content": content}], images))
    batched = generate_all(adapter, requests, settings, batch_size=4)
    single = [adapter.generate([c], [imgs], settings)[0] for c, imgs in requests]
    assert batched == single
    assert all(batched)
