"""The ``adamllm`` synthesizer: prompts in the backbone's own template, parsing end to end, tiny
checkpoints of the released synthesizer's shape (LLaVA-NeXT, Llama-3, its image token) and Qwen2-VL."""
import pytest

from adamllm.plugins.synthesis.protocol import RELEASED
from adamllm.plugins.synthesis.synthesizer import (
    MLLMSynthesizer,
    MLLMSynthesizerConfig,
    open_user_turn_prompt,
)
from adamllm.records import ImageCaptionPair, TaskTriplet
from adamllm.testing.data import write_pairs
from adamllm.testing.stage_contract import SynthesizerContract

RELEASED_IMAGE_TOKEN = "<|reserved_special_token_4|>"
P, I = RELEASED.precise_hint, RELEASED.informative_hint
H = "<|start_header_id|>{}<|end_header_id|>\n\n"


def llama3_continuation(instruction, precise, informative):
    return (f"{P}\n{instruction}<|eot_id|>{H.format('assistant')}{precise}<|eot_id|>"
            f"{H.format('user')}{I}\n{instruction}<|eot_id|>{H.format('assistant')}{informative}<|eot_id|>"
            f"<|end_of_text|>")


class FakeLlama3Adapter:
    """Renders like a Llama-3 LLaVA-NeXT template and 'generates' a hand-written continuation
    chosen by the caption in the prompt."""

    family = "llava_next"
    config = None
    tokenizer = None
    end_of_text_token = "<|end_of_text|>"
    image_token = RELEASED_IMAGE_TOKEN

    def __init__(self, replies, fail_on=()):
        self.replies, self.fail_on, self.calls = replies, set(fail_on), []

    def render(self, messages, add_generation_prompt=False):
        out = "<|begin_of_text|>"
        for m in messages:
            out += H.format(m["role"]) + m["content"].replace("<image>", RELEASED_IMAGE_TOKEN + "\n") + "<|eot_id|>"
        return out + (H.format("assistant") if add_generation_prompt else "")

    def encode_prompt(self, text, images=(), image_root=None):
        """What the prompt probe needs: token ids, the image's tokens counted (a fixed 4)."""
        return {"input_ids": text.split(), "num_image_tokens": 4 * text.count(RELEASED_IMAGE_TOKEN)}

    def generate(self, conversations, images=None, settings=None):  # pragma: no cover - not used
        raise AssertionError("the synthesizer continues rendered prompts")

    def generate_from_text(self, prompts, images=None, settings=None, stop_tokens=None):
        self.calls.append((list(prompts), settings, stop_tokens))
        out = []
        for prompt in prompts:
            caption = next(c for c in self.replies if c in prompt)
            if caption in self.fail_on:
                raise ValueError(f"sample has 9999 tokens ({caption})")
            out.append(self.replies[caption])
        return out


class FakeContext:
    prompt_log = None

    def __init__(self, adapter, tuned=None):
        self.adapter, self.built, self.tuned, self.models = adapter, 0, tuned, []
        self.said = []

    def echo(self, line):
        self.said.append(line)

    def record_prompts(self, prompts):  # pragma: no cover - prompt_log is None
        raise AssertionError("only under --preview")

    def tuned_synthesizer_model(self):
        return self.tuned

    def build_model(self, slot, model=None):
        self.built += 1
        self.models.append(model)
        return self.adapter


def fixture_pairs(tmp_path, n):
    import json

    path = write_pairs(tmp_path / "pairs", n=n)
    records = json.loads(path.read_text())
    return [ImageCaptionPair(id=f"p{i}", image=str(path.parent / r["images"][0]),
                             caption=r["messages"][1]["content"] + f" (#{i})") for i, r in enumerate(records)]


def synthesizer(**options):
    return MLLMSynthesizer(MLLMSynthesizerConfig(model={"type": "llava_next", "model": "x"}, **options))


def test_config_rejects_unknown_options_and_profiles():
    with pytest.raises(ValueError, match="unknown protocol profile"):
        MLLMSynthesizerConfig(model={"type": "llava_next", "model": "x"}, profile="nope")
    with pytest.raises(ValueError):
        MLLMSynthesizerConfig(model={"type": "llava_next", "model": "x"}, temperature=0.7)


def test_prompt_opens_a_user_turn_in_the_template():
    prompt = open_user_turn_prompt(FakeLlama3Adapter({}), "A red square.", RELEASED)
    assert prompt == (f"<|begin_of_text|>{H.format('user')}{RELEASED_IMAGE_TOKEN}\nDescribe the image.<|eot_id|>"
                      f"{H.format('assistant')}A red square.<|eot_id|>{H.format('user')}")


def test_hand_written_continuations_parse_end_to_end(tmp_path):
    pairs = fixture_pairs(tmp_path, 4)
    replies = {pairs[0].caption: llama3_continuation("What colour?", "Red.", "It is painted red, so: red."),
               pairs[1].caption: "junk junk<|end_of_text|>",
               pairs[2].caption: f"{P}\nWhat shape?<|eot_id|>{H.format('assistant')}A sq",  # ran out of tokens
               pairs[3].caption: llama3_continuation("How many?", "One.", "There is a single shape: one.")}
    adapter = FakeLlama3Adapter(replies)
    synth, ctx = synthesizer(batch_size=3, max_new_tokens=77), FakeContext(adapter)
    results = synth.synthesize(pairs, ctx) + synth.synthesize([], ctx)
    assert [r.id if r else None for r in results] == ["p0", None, None, "p3"]
    assert results[0] == TaskTriplet(id="p0", image=pairs[0].image, instruction="What colour?", precise="Red.",
                                     informative="It is painted red, so: red.", raw=replies[pairs[0].caption])
    assert ctx.built == 1 and ctx.models == [None]  # one adapter for every batch; no tune stage ran
    assert [len(c[0]) for c in adapter.calls] == [3, 1]  # batch_size pairs per generation
    _, settings, stops = adapter.calls[0]
    assert settings.max_new_tokens == 77 and not settings.do_sample and settings.keep_special_tokens
    assert stops == ["<|end_of_text|>"]  # not <|eot_id|>: the model must write several turns
    stats = synth.stats
    assert {k: stats[k] for k in ("pairs", "triplets", "parse_error", "truncated_only", "truncated", "bad_sample")} \
        == {"pairs": 4, "triplets": 2, "parse_error": 1, "truncated_only": 0, "truncated": 1, "bad_sample": 0}
    assert stats["no_pair"] == 1  # the truncated one: a complete user turn, its answer ran out


def test_a_window_of_pairs_is_length_sorted_before_it_is_cut_into_batches(tmp_path):
    pairs = fixture_pairs(tmp_path, 4)
    pairs = [p.model_copy(update={"caption": p.caption + " more words" * n}) for p, n in zip(pairs, (0, 5, 1, 9))]
    replies = {p.caption: llama3_continuation(f"Q{i}?", "a", "long a") for i, p in enumerate(pairs)}
    adapter = FakeLlama3Adapter(replies)
    synth = synthesizer(batch_size=2, sort_window=2)
    assert synth.batch_size == 4  # the stage hands over one window per call
    results = synth.synthesize(pairs, FakeContext(adapter))
    assert [r.instruction for r in results] == ["Q0?", "Q1?", "Q2?", "Q3?"]  # back in pair order
    batches = [[next(i for i, p in enumerate(pairs) if p.caption in prompt) for prompt in call[0]]
               for call in adapter.calls]
    assert batches == [[3, 1], [2, 0]]  # the two longest captions together, then the two shortest


def test_the_model_the_tune_stage_wrote_replaces_the_slot_model(tmp_path):
    pairs = fixture_pairs(tmp_path, 1)
    ctx = FakeContext(FakeLlama3Adapter({pairs[0].caption: llama3_continuation("Q?", "a", "long a")}),
                      tuned=str(tmp_path / "out" / "tune" / "model"))
    synthesizer().synthesize(pairs, ctx)
    assert ctx.models == [str(tmp_path / "out" / "tune" / "model")]


def test_a_failing_sample_is_a_failure_and_counted_not_a_crash(tmp_path):
    from adamllm.records import Failure

    pairs = fixture_pairs(tmp_path, 3)
    pairs[2] = pairs[2].model_copy(update={"image": str(tmp_path / "missing.png")})
    replies = {p.caption: llama3_continuation("Q?", "a", "long a") for p in pairs}
    adapter = FakeLlama3Adapter(replies, fail_on=[pairs[0].caption])
    synth = synthesizer()
    results = synth.synthesize(pairs, FakeContext(adapter))
    assert [type(r).__name__ for r in results] == ["Failure", "TaskTriplet", "Failure"]
    assert [r.id for r in results] == ["p0", "p1", "p2"]
    assert results[0] == Failure(id="p0", kind="bad_sample", reason=f"sample has 9999 tokens ({pairs[0].caption})")
    assert "missing.png" in results[2].reason  # the stage quarantines both with their reasons
    assert synth.stats["bad_sample"] == 2 and synth.stats["triplets"] == 1
    assert any("9999 tokens" in p for p in synth.problems) and any("p2" in p for p in synth.problems)


def test_a_backbone_without_generate_from_text_is_refused(tmp_path):
    class TextOnly:
        def render(self, messages, add_generation_prompt=False):
            return ""

    with pytest.raises(TypeError, match="generate_from_text"):
        synthesizer().synthesize(fixture_pairs(tmp_path, 1), FakeContext(TextOnly()))


# -- real tiny checkpoints through a real StageContext --------------------------------------
def stage_context(tmp_path, model_slot, **options):
    from adamllm.config import validate_config
    from adamllm.registry import PluginManager
    from adamllm.runner import StageContext

    pm = PluginManager(strict=True)
    pairs = write_pairs(tmp_path / "pairs", n=3)
    cfg = validate_config({"output_dir": str(tmp_path / "out"), "data": {"synthesize": str(pairs)},
                           "synthesizer": {"type": "adamllm", "model": model_slot, **options}}, pm, base_dir=tmp_path)
    return StageContext("synthesize", cfg, pm, echo=lambda _: None)


@pytest.fixture(scope="module")
def released_shape(tmp_path_factory):
    """A tiny LLaVA-NeXT shaped like the released synthesizer: Llama-3 template, its image token."""
    from adamllm.backbones.tiny import build_tiny

    return build_tiny("llava_next", tmp_path_factory.mktemp("released") / "ckpt", image_token=RELEASED_IMAGE_TOKEN)


def test_released_shape_stand_in_declares_its_image_token(released_shape):
    from adamllm.backbone import BackboneConfig
    from adamllm.backbones.families import LlavaNextAdapter
    from adamllm.backbones.tiny import read_marker

    adapter = LlavaNextAdapter(BackboneConfig(model=str(released_shape)))
    assert adapter.image_token == RELEASED_IMAGE_TOKEN == adapter.processor.image_token
    assert adapter.image_token_id == adapter.model.config.image_token_index
    assert RELEASED_IMAGE_TOKEN in adapter.processor.chat_template and "<image>" not in adapter.processor.chat_template
    assert read_marker(released_shape)["image_token"] == RELEASED_IMAGE_TOKEN
    sample = adapter.encode([{"role": "user", "content": "<image>Describe the image."},
                             {"role": "assistant", "content": "A square."}], [write_png(released_shape)])
    assert sample["num_image_tokens"] > 1  # the declared token was expanded into image features


def write_png(folder):
    from PIL import Image

    path = folder / "probe.png"
    Image.new("RGB", (40, 32), "blue").save(path)
    return str(path)


def test_tiny_released_shape_synthesizer_runs(tmp_path, released_shape):
    ctx = stage_context(tmp_path, {"type": "llava_next", "model": str(released_shape)}, max_new_tokens=12)
    synth = ctx.component()
    pairs = list(ctx.pairs())
    results = synth.synthesize(pairs, ctx)
    assert len(results) == len(pairs)
    for pair, result in zip(pairs, results):
        assert result is None or result.id == pair.id
    stats = synth.stats
    assert stats["pairs"] == 3 and stats["bad_sample"] == 0 and stats["generated_tokens"] > 0
    assert sum(stats[k] for k in ("triplets", "no_pair", "truncated_only", "unbalanced", "parse_error")) == 3
    prompt = open_user_turn_prompt(synth._adapter, pairs[0].caption, RELEASED)
    assert RELEASED_IMAGE_TOKEN in prompt and prompt.endswith(H.format("user"))


def test_tiny_qwen2_vl_synthesizer_runs(tmp_path):
    ctx = stage_context(tmp_path, {"type": "qwen2_vl", "model": "ckpt", "tiny": "tiny"}, max_new_tokens=8,
                        batch_size=2)
    synth = ctx.component()
    pairs = list(ctx.pairs())
    results = synth.synthesize(pairs, ctx)
    assert len(results) == 3 and all(r is None or r.id == p.id for p, r in zip(pairs, results))
    assert synth.stats["pairs"] == 3 and synth.stats["bad_sample"] == 0 and synth.stats["generated_tokens"] > 0
    prompt = open_user_turn_prompt(synth._adapter, pairs[0].caption, RELEASED)
    assert prompt.endswith("<|im_end|>\n<|im_start|>user\n")


class TestAdamllmSynthesizerContract(SynthesizerContract):
    component = "adamllm"
    options = {"model": {"type": "qwen2_vl", "model": "ckpt", "tiny": "tiny"}, "max_new_tokens": 8}


def test_generate_from_text_checks_its_prompt_and_stop_tokens(released_shape, tmp_path):
    from adamllm.backbone import BackboneConfig, BadSample, GenerationSettings
    from adamllm.backbones.families import LlavaNextAdapter
    from adamllm.backbones.tiny import build_tiny

    adapter = LlavaNextAdapter(BackboneConfig(model=str(released_shape)))
    prompt = open_user_turn_prompt(adapter, "A blue square.", RELEASED)
    with pytest.raises(BadSample, match="1 <|reserved_special_token_4|> tokens in the prompt but 0 images"):
        adapter.encode_prompt(prompt, [])
    with pytest.raises(ValueError, match="not a token"):
        adapter.generate_from_text([prompt], [[write_png(tmp_path)]], stop_tokens=["<|no such token|>"])
    (text,) = adapter.generate_from_text([prompt], [[write_png(tmp_path)]],
                                         GenerationSettings(max_new_tokens=3, min_new_tokens=3, keep_special_tokens=True),
                                         stop_tokens=["<|end_of_text|>"])
    assert isinstance(text, str) and text
    with pytest.raises(ValueError, match="llava_next only"):
        build_tiny("qwen2_vl", tmp_path / "q", image_token=RELEASED_IMAGE_TOKEN)
