"""The text-only causal-LM backbone (``causal_lm``): tiny build, labels, generation, refusals, training."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from adamllm.backbone import IGNORE_INDEX, BackboneConfig, BadSample, Backbone, GenerationSettings, Generator  # noqa: E402
from adamllm.backbones.causal_lm import CausalLMAdapter  # noqa: E402
from adamllm.backbones.tiny import MARKER_FILE, build_tiny  # noqa: E402

TWO_TURNS = [
    {"role": "user", "content": "Which colour is it?"},
    {"role": "assistant", "content": "Green."},
    {"role": "user", "content": "And the shape?"},
    {"role": "assistant", "content": "A triangle."},
]
PROMPTS = [
    [{"role": "user", "content": "Hi."}],
    [{"role": "user", "content": "A much longer question about the recipe, with many more words in it "
                                 "than the first one has?"}],
    [{"role": "user", "content": "Is there a tumor?"}, {"role": "assistant", "content": "Yes."},
     {"role": "user", "content": "Sure?"}],
]


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory):
    return build_tiny("causal_lm", tmp_path_factory.mktemp("causal_lm_chat"), size="tiny", seed=0)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return build_tiny("causal_lm", tmp_path_factory.mktemp("causal_lm_base"), seed=0, chat_template=False)


@pytest.fixture
def adapter(chat_dir):
    """Built through the plugin registry, as a run config's model slot would."""
    from adamllm.registry import PluginManager

    spec = PluginManager(strict=True).spec("backbone", "causal_lm")
    return spec.build(spec.load_config_model()(model=str(chat_dir)))


def _labelled(adapter, sample) -> str:
    return adapter.tokenizer.decode(sample["input_ids"][sample["labels"] != IGNORE_INDEX])


# -- the checkpoint ---------------------------------------------------------------------------
def test_tiny_checkpoint_loads_with_plain_transformers(chat_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(chat_dir)
    tok = AutoTokenizer.from_pretrained(chat_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (chat_dir / "model.safetensors").exists() and not list(chat_dir.glob("*.bin"))
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|begin_of_text|>", "<|eot_id|>",
                                                              "<|finetune_right_pad_id|>")
    cfg = model.config
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (tok.bos_token_id, tok.eos_token_id,
                                                                       tok.pad_token_id)
    assert cfg.vocab_size == len(tok) == 1024
    assert 100_000 < sum(p.numel() for p in model.parameters()) < 600_000
    text = tok.apply_chat_template(TWO_TURNS, tokenize=False)
    assert text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhich colour is it?<|eot_id|>")
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss
    assert 0 < float(loss) < 20
    marker = json.loads((chat_dir / MARKER_FILE).read_text())
    assert marker["family"] == "causal_lm" and marker["chat_template"] is True


def test_adapter_satisfies_the_protocols(adapter):
    assert isinstance(adapter, Generator) and isinstance(adapter, Backbone)
    assert adapter.family == "causal_lm" and adapter.supports_packing is False
    assert adapter.processor is adapter.tokenizer


# -- labels -----------------------------------------------------------------------------------
def test_assistant_policy_labels_exactly_the_answers_and_end_of_turn(adapter):
    sample = adapter.encode(TWO_TURNS, policy="assistant")
    assert _labelled(adapter, sample) == "Green.<|eot_id|>A triangle.<|eot_id|>"
    mask = sample["labels"] != IGNORE_INDEX
    assert (sample["labels"][mask] == sample["input_ids"][mask]).all()
    assert sample["num_image_tokens"] == 0 and set(sample) == {"input_ids", "attention_mask", "labels",
                                                               "num_image_tokens"}


def test_after_first_turn_labels_the_rest_plus_end_of_text(adapter):
    sample = adapter.encode(TWO_TURNS, policy="after_first_turn")
    full, first = adapter.render(TWO_TURNS), adapter.render(TWO_TURNS[:2])
    assert _labelled(adapter, sample) == full[len(first):] + "<|end_of_text|>"
    assert sample["labels"][-1].item() == adapter.tokenizer.convert_tokens_to_ids("<|end_of_text|>")
    mask = (sample["labels"] != IGNORE_INDEX).int()
    assert mask[int(mask.argmax()):].all()  # one contiguous block at the end


def test_collate_pads_right_with_ignored_labels(adapter):
    samples = [adapter.encode(TWO_TURNS), adapter.encode(TWO_TURNS[:2])]
    batch = adapter.collate(samples)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    short = samples[1]["input_ids"].shape[0]
    assert (batch["labels"][1, short:] == IGNORE_INDEX).all()
    assert (batch["input_ids"][1, short:] == adapter.tokenizer.pad_token_id).all()
    assert (batch["attention_mask"][1, short:] == 0).all()


# -- generation -------------------------------------------------------------------------------
def test_batched_generation_equals_generation_one_by_one(adapter):
    settings = GenerationSettings(max_new_tokens=5, min_new_tokens=5)
    batched = adapter.generate(PROMPTS, settings=settings)
    single = [adapter.generate([p], settings=settings)[0] for p in PROMPTS]
    assert batched == single
    assert len(set(batched)) == 3  # the answers depend on the prompts (padding would show)
    raw = adapter.generate(PROMPTS, settings=GenerationSettings(max_new_tokens=5, min_new_tokens=5,
                                                                keep_special_tokens=True))
    assert all(len(adapter.tokenizer(t, add_special_tokens=False)["input_ids"]) >= 4 for t in raw)
    assert not any("<|start_header_id|>user" in t for t in batched)  # only the new text comes back


def test_base_checkpoint_without_chat_template_renders_plain_text_and_generates(base_dir):
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(base_dir).chat_template is None
    assert not (base_dir / "chat_template.jinja").exists()
    adapter = CausalLMAdapter.from_pretrained(base_dir)
    assert adapter.tokenizer.eos_token == "<|end_of_text|>"
    messages = [{"role": "user", "content": "Question: is the sky blue?\nAnswer:"},
                {"role": "assistant", "content": " yes"}]
    assert adapter.render(messages) == "Question: is the sky blue?\nAnswer: yes"
    assert adapter.render(messages[:1], add_generation_prompt=True) == "Question: is the sky blue?\nAnswer:"
    sample = adapter.encode(messages)
    assert _labelled(adapter, sample) == " yes"
    few_shot = [{"role": "user", "content": "Q: red? A: yes\nQ: cat? A: no\nQ: dog? A:"}]
    prompt = adapter.encode(few_shot, add_generation_prompt=True)
    assert prompt["input_ids"].tolist() == adapter.tokenizer(few_shot[0]["content"], add_special_tokens=False)["input_ids"]
    assert (prompt["labels"] == IGNORE_INDEX).all()
    settings = GenerationSettings(max_new_tokens=4, min_new_tokens=4)
    out = adapter.generate([few_shot, messages[:1]], settings=settings)
    assert len(out) == 2 and all(isinstance(t, str) and t for t in out)
    assert out == [adapter.generate([few_shot], settings=settings)[0], adapter.generate([messages[:1]], settings=settings)[0]]


# -- refusals ---------------------------------------------------------------------------------
def test_images_are_bad_samples(adapter):
    with pytest.raises(BadSample, match="text-only.*<image> placeholder"):
        adapter.encode([{"role": "user", "content": "<image>What is this?"}, {"role": "assistant", "content": "A cat."}])
    with pytest.raises(BadSample, match="text-only.*1 image"):
        adapter.encode(TWO_TURNS, ["picture.png"])
    with pytest.raises(BadSample, match="image content item"):
        adapter.render([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}])
    with pytest.raises(BadSample):
        adapter.generate([[{"role": "user", "content": "<image>Describe."}]])
    records = [{"messages": TWO_TURNS}, {"messages": [{"role": "user", "content": "<image>x"},
                                                      {"role": "assistant", "content": "y"}], "images": ["a.png"]},
               {"id": "long", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "word " * 40}]}]
    adapter.max_length = adapter.encode(TWO_TURNS)["input_ids"].shape[0]  # the long record is longer
    result = adapter.encode_all(records)
    assert result.indices == [0] and result.dropped == {"bad_record": 1, "too_long": 1}
    assert "text-only" in result.problems[0] and result.problems[1].startswith("record long:")


def test_image_text_checkpoint_is_refused(tmp_path):
    qwen = build_tiny("qwen2_vl", tmp_path / "qwen", seed=0)
    adapter = CausalLMAdapter.from_pretrained(qwen)
    with pytest.raises(ValueError, match=r"image-text checkpoint .*'qwen2_vl'.*use the matching backbone type, "
                                         r"backbone type 'qwen2_vl'"):
        adapter.model
    with pytest.raises(ValueError, match="use the matching backbone type"):
        adapter.tokenizer


def test_packing_is_not_supported(adapter):
    samples = [adapter.encode(TWO_TURNS)]
    with pytest.raises(NotImplementedError, match="causal_lm does not pack.*collate"):
        adapter.collate_packed(samples)
    with pytest.raises(NotImplementedError, match="causal_lm does not pack"):
        adapter.packed_training(adapter.model)


# -- parameters, saving, training --------------------------------------------------------------
def test_groups_freeze_and_lora_targets(adapter):
    import re

    names = [n for n, _ in adapter.model.named_parameters()]
    groups = adapter.module_groups()
    assert groups["language"] == names and groups["vision"] == groups["projector"] == []
    assert adapter.freeze(["vision", "projector"]) == 0
    assert adapter.freeze(["language"]) == len(names)
    assert not any(p.requires_grad for p in adapter.model.parameters())
    pattern = re.compile(adapter.lora_target_modules())
    targeted = [n for n, _ in adapter.model.named_modules() if pattern.fullmatch(n)]
    assert len(targeted) == 2 * 7  # two layers x q/k/v/o/gate/up/down
    assert all(isinstance(adapter.model.get_submodule(n), torch.nn.Linear) for n in targeted)


def test_save_then_reload_gives_identical_logits(adapter, tmp_path):
    batch = adapter.collate([adapter.encode(TWO_TURNS), adapter.encode(PROMPTS[2], add_generation_prompt=True)])
    batch.pop("labels")
    adapter.model.eval()
    with torch.no_grad():
        before = adapter.model(**batch).logits
    out = adapter.save(tmp_path / "saved")
    assert (out / "model.safetensors").exists() and not list(out.glob("*.bin"))
    assert (out / "chat_template.jinja").exists()
    reloaded = CausalLMAdapter(BackboneConfig(model=str(out)))
    again = reloaded.collate([reloaded.encode(TWO_TURNS), reloaded.encode(PROMPTS[2], add_generation_prompt=True)])
    assert torch.equal(again.pop("input_ids"), batch["input_ids"])
    reloaded.model.eval()
    with torch.no_grad():
        after = reloaded.model(input_ids=batch["input_ids"], attention_mask=again["attention_mask"]).logits
    assert torch.equal(after, before)


def test_full_finetune_halves_the_loss(adapter):
    second = [{"role": "user", "content": "Is there a dog in the picture?"}, {"role": "assistant", "content": "No."}]
    batch = adapter.collate([adapter.encode(TWO_TURNS), adapter.encode(second)])
    torch.manual_seed(0)
    model = adapter.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(**batch).loss
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert min(losses) <= 0.5 * losses[0], f"loss {losses[0]:.3f} -> {min(losses):.3f}"


def test_base_rendering_starts_with_bos_when_the_tokenizer_adds_one(base_dir):
    """Llama-3 base: its tokenizer adds <|begin_of_text|> itself; the plain rendering keeps it, once."""
    from tokenizers.processors import TemplateProcessing

    adapter = CausalLMAdapter.from_pretrained(base_dir)
    tok = adapter.tokenizer
    tok._tokenizer.post_processor = TemplateProcessing(single="<|begin_of_text|> $A",
                                                       special_tokens=[("<|begin_of_text|>", tok.bos_token_id)])
    assert tok("Hi")["input_ids"][0] == tok.bos_token_id
    messages = [{"role": "user", "content": "Q: red?\nA:"}, {"role": "assistant", "content": " yes"}]
    assert adapter.render(messages) == "<|begin_of_text|>Q: red?\nA: yes"
    sample = adapter.encode(messages)
    assert sample["input_ids"].tolist() == tok("Q: red?\nA: yes")["input_ids"]  # BOS once, as the tokenizer does
    assert _labelled(adapter, sample) == " yes"


def test_lora_on_the_default_targets_trains_saves_and_reloads(adapter, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    batch = adapter.collate([adapter.encode(TWO_TURNS)])
    base_dir = adapter.save(tmp_path / "base")
    lora = get_peft_model(adapter.model, LoraConfig(r=4, lora_alpha=8, target_modules=adapter.lora_target_modules(),
                                                    init_lora_weights=False))
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert {adapter.group_of(n) for n, _ in lora.named_parameters()} == {"language"}
    lora.eval()
    with torch.no_grad():
        unmerged = lora(**batch).logits
    lora.save_pretrained(tmp_path / "lora")
    reloaded = PeftModel.from_pretrained(CausalLMAdapter.from_pretrained(base_dir).model, tmp_path / "lora").eval()
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits, unmerged)
