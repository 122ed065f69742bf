"""Tiny offline checkpoints: build, reload with plain transformers, determinism, templates."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from adamllm.backbones import tiny  # noqa: E402
from adamllm.backbones.offline_tokenizer import train_bpe  # noqa: E402
from adamllm.backbones.processors import PORTABLE_PROCESSOR_CLASS, load_processor  # noqa: E402
from adamllm.backbones.templates import TEMPLATES  # noqa: E402

FAMILIES = tiny.FAMILIES
QWEN = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _image(width: int, height: int, seed: int) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (height, width, 3), generator=g, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def _conversations():
    return [
        [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is shown?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "A red square."}]},
        ],
        [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is there a tumor in this image?"}]},
            {"role": "assistant", "content": "Yes."},
        ],
    ]


def _batch(family: str, processor):
    """A padded batch of two conversations with two differently sized images, plus labels."""
    images = [_image(60, 80, 1), _image(224, 224, 2)]
    texts = processor.apply_chat_template(_conversations(), tokenize=False)
    processor.tokenizer.padding_side = "right"
    batch = processor(
        text=texts,
        images=[[im] for im in images] if family == "mllama" else images,
        padding=True,
        return_tensors="pt",
    )
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return dict(batch), labels


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {family: tiny.build_tiny(family, root / family, size="tiny", seed=0) for family in FAMILIES}


@pytest.fixture(scope="module")
def plain_reload(built, tmp_path_factory):
    """Process a batch in-process, then reload and run every family in ONE subprocess that
    imports transformers only (never adamllm)."""
    root = tmp_path_factory.mktemp("plain")
    jobs = {}
    for family, path in built.items():
        processor = load_processor(family, path)
        batch, labels = _batch(family, processor)
        batch_file = root / f"{family}.pt"
        torch.save({"batch": batch, "labels": labels}, batch_file)
        jobs[family] = {"dir": str(path), "batch": str(batch_file)}
    script = textwrap.dedent(
        """
        import json, sys
        import torch
        from transformers import AutoModelForImageTextToText, AutoTokenizer
        from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
        from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
        pil = {"qwen2_vl": Qwen2VLImageProcessorPil, "qwen2_5_vl": Qwen2VLImageProcessorPil,
               "qwen3_vl": Qwen2VLImageProcessorPil, "llava_next": LlavaNextImageProcessorPil,
               "mllama": MllamaImageProcessorPil}
        out = {}
        for family, job in json.loads(sys.argv[1]).items():
            model = AutoModelForImageTextToText.from_pretrained(job["dir"]).eval()
            tok = AutoTokenizer.from_pretrained(job["dir"])
            ip = pil[family].from_pretrained(job["dir"])
            data = torch.load(job["batch"], weights_only=True)
            with torch.no_grad():
                res = model(**data["batch"], labels=data["labels"])
            out[family] = {
                "class": type(model).__name__, "logits_shape": list(res.logits.shape),
                "finite": bool(torch.isfinite(res.logits).all()), "loss": float(res.loss),
                "vocab": model.config.get_text_config().vocab_size, "len_tok": len(tok),
                "eos": tok.eos_token, "ip_class": type(ip).__name__,
            }
        out["adamllm_imported"] = any(m == "adamllm" or m.startswith("adamllm.") for m in sys.modules)
        print("RESULT" + json.dumps(out))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(jobs)], capture_output=True,
                          text=True, env=ENV, timeout=300, cwd=str(root))
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):]), {f: torch.load(j["batch"], weights_only=True) for f, j in jobs.items()}


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_directory_and_parameter_count(family, built):
    path = built[family]
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja", tiny.MARKER_FILE} <= names
    n = tiny.count_parameters(path)
    assert 100_000 <= n <= 600_000, n
    marker = tiny.read_marker(path)
    assert marker["family"] == family and marker["size"] == "tiny" and marker["seed"] == 0
    assert marker["num_parameters"] == n
    config = json.loads((path / "config.json").read_text())
    text = config["text_config"]
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        assert isinstance(text[key], int) and 0 <= text[key] < text["vocab_size"], (key, text[key])
    assert text["vocab_size"] == 1024


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_transformers_reload_and_forward(family, plain_reload):
    results, saved = plain_reload
    assert results["adamllm_imported"] is False
    res = results[family]
    input_ids = saved[family]["batch"]["input_ids"]
    assert res["logits_shape"] == [input_ids.shape[0], input_ids.shape[1], 1024]
    assert res["finite"]
    assert res["loss"] == res["loss"] and 0 < res["loss"] < 20  # finite, near ln(1024) ~ 6.9
    assert res["vocab"] == res["len_tok"] == 1024
    assert res["ip_class"].endswith("Pil")
    expected = {"qwen2_vl": "Qwen2VL", "qwen2_5_vl": "Qwen2_5_VL", "qwen3_vl": "Qwen3VL",
                "llava_next": "LlavaNext", "mllama": "Mllama"}[family]
    assert res["class"] == f"{expected}ForConditionalGeneration"


@pytest.mark.parametrize("family", FAMILIES)
def test_training_step_loss_finite(family, built):
    from transformers import AutoModelForImageTextToText

    path = built[family]
    processor = load_processor(family, path)
    batch, labels = _batch(family, processor)
    model = AutoModelForImageTextToText.from_pretrained(path)
    model.train()
    out = model(**batch, labels=labels)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # the image reached the language model: some vision weights got a gradient
    vision = [n for n, p in model.named_parameters()
              if p.grad is not None and ("visual" in n or "vision" in n) and p.grad.abs().sum() > 0]
    assert vision


@pytest.mark.parametrize("family", FAMILIES)
def test_load_processor_round_trip(family, built):
    path = built[family]
    processor = load_processor(family, path)
    assert hasattr(processor, "image_processor")
    assert type(processor.image_processor).__name__.endswith("Pil")
    fresh = tiny.build_processor(family, "tiny")
    a, _ = _batch(family, processor)
    b, _ = _batch(family, fresh)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    if family in QWEN:
        saved = json.loads((path / "processor_config.json").read_text())
        real = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}
        assert saved["processor_class"] == PORTABLE_PROCESSOR_CLASS  # AutoProcessor loads it without torchvision
        assert json.loads((path / "tokenizer_config.json").read_text())["processor_class"] == real[family]
        assert saved["image_processor"]["image_processor_type"] == "Qwen2VLImageProcessor"
        assert saved["video_processor"]["video_processor_type"] == (
            "Qwen3VLVideoProcessor" if family == "qwen3_vl" else "Qwen2VLVideoProcessor")
        assert "mm_token_type_ids" in a
        with pytest.raises(ValueError, match="images only"):
            processor(text=["hi"], videos=[[_image(32, 32, 0)]])
    if family == "llava_next":
        config = json.loads((path / "config.json").read_text())
        assert processor.patch_size == config["vision_config"]["patch_size"]
        assert processor.image_processor.image_grid_pinpoints == config["image_grid_pinpoints"]


def test_determinism(built, tmp_path):
    for family in FAMILIES:
        reference = built[family]
        state = torch.get_rng_state()
        same = tiny.build_tiny(family, tmp_path / f"{family}-same", seed=0)
        assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
        other = tiny.build_tiny(family, tmp_path / f"{family}-other", seed=1)
        assert _sha(same / "model.safetensors") == _sha(reference / "model.safetensors"), family
        assert _sha(other / "model.safetensors") != _sha(reference / "model.safetensors"), family
        assert _sha(same / "tokenizer.json") == _sha(reference / "tokenizer.json"), family


def test_tokenizer_independent_of_process(tmp_path):
    """Same BPE in another process with another hash seed (no hash-order dependence)."""
    special = tiny.SPECIAL_TOKENS["mllama"]
    here = hashlib.sha256(train_bpe(1024, special).to_str().encode()).hexdigest()
    script = ("import hashlib, sys; from adamllm.backbones.offline_tokenizer import train_bpe; "
              f"print(hashlib.sha256(train_bpe(1024, {special!r}).to_str().encode()).hexdigest())")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**ENV, "PYTHONHASHSEED": "12345", "RAYON_NUM_THREADS": "1"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == here
    tok = train_bpe(1024, special)
    for i, token in enumerate(special):  # special tokens take the lowest ids, never split
        assert tok.token_to_id(token) == i
        assert tok.encode("a " + token + " b").tokens.count(token) == 1


# ---------------------------------------------------------------------------------------------
def _long_conversation():
    return [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe it."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat on a mat."}]},
        {"role": "user", "content": "And the colour?"},
        {"role": "assistant", "content": "Black."},
        {"role": "user", "content": [{"type": "text", "text": "Options: A. red B. blue"}, {"type": "image"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "B"}]},
    ]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("with_system", [True, False])
def test_chat_template_prefix_consistent(family, with_system):
    tokenizer = tiny.build_tokenizer(family, "tiny")
    messages = _long_conversation() if with_system else _long_conversation()[1:]
    # (transformers refuses an empty conversation, so start at one message)
    renders = [""] + [tokenizer.apply_chat_template(messages[:k], tokenize=False)
                      for k in range(1, len(messages) + 1)]
    for k in range(1, len(messages)):
        assert renders[k + 1].startswith(renders[k]), (k, renders[k], renders[k + 1])
        assert len(renders[k + 1]) > len(renders[k])
        if messages[k]["role"] == "assistant":
            prompt = tokenizer.apply_chat_template(messages[:k], tokenize=False, add_generation_prompt=True)
            assert renders[k + 1].startswith(prompt) and len(prompt) > len(renders[k])
    full = renders[-1]
    image_text = ("<|vision_start|><|image_pad|><|vision_end|>" if family in QWEN
                  else {"llava_next": "<image>\n", "mllama": "<|image|>"}[family])
    assert full.count(image_text) == 2
    assert "\n\n\n" not in full and "Black." in full and "Options: A. red B. blue" in full
    if family in QWEN:
        # Qwen2-VL and Qwen2.5-VL open with a default system turn; Qwen3-VL renders only a given one
        default_system = family != "qwen3_vl"
        assert full.startswith("<|im_start|>system\n" if with_system or default_system else "<|im_start|>user\n")
        assert ("You are a helpful assistant." in full) is (default_system and not with_system)
        assert "<|im_start|>assistant\nBlack.<|im_end|>\n" in full
        # images render in place for the Qwen-VL families ...
        assert "Options: A. red B. blue<|vision_start|>" in full
    else:
        assert full.startswith("<|begin_of_text|>")
        assert "<|start_header_id|>assistant<|end_header_id|>\n\nBlack.<|eot_id|>" in full
        # ... and first for the Llama-3 families
        assert image_text + "Options: A. red B. blue" in full


@pytest.mark.parametrize("family", FAMILIES)
def test_assistant_mask_through_processor(family, built):
    processor = load_processor(family, built[family])
    conversation = [
        {"role": "user", "content": [{"type": "image", "image": _image(64, 64, 3)},
                                     {"type": "text", "text": "What is shown?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A red square."}]},
    ]
    out = processor.apply_chat_template(
        [conversation], tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
        return_tensors="pt", processor_kwargs={"padding": True},
    )
    ids = out["input_ids"][0][out["assistant_masks"][0].bool()]
    eos = tiny.TOKEN_ROLES[family]["eos"]
    assert processor.tokenizer.decode(ids) == "A red square." + eos


def test_template_table_matches_saved(built):
    for family, path in built.items():
        assert (path / "chat_template.jinja").read_text() == TEMPLATES[family]


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", QWEN)
def test_small_qwen(family, tmp_path):
    path = tiny.build_tiny(family, tmp_path / "small", size="small")
    n = tiny.count_parameters(path)
    assert 2_000_000 <= n <= 15_000_000, n
    processor = load_processor(family, path)
    assert tiny.count_image_tokens(processor, family, 224, 224) == 36  # as the module docstring says
    assert tiny.count_image_tokens(processor, family, 64, 64) == 4
    assert json.loads((path / "config.json").read_text())["text_config"]["vocab_size"] == 4096


def test_tiny_words_are_one_token_with_or_without_a_space_and_a_config_builds_them(tmp_path):
    """``words`` (a backbone section's ``tiny_words``): each word one token, the same after a space,
    at a turn's start and before punctuation, never inside a longer word; the model's vocabulary
    grows to hold them; a run config's ``tiny_words`` reaches the builder."""
    from transformers import AutoTokenizer

    from adamllm.config import validate_config
    from adamllm.registry import PluginManager
    from adamllm.runner import StageContext

    plain = tiny.build_tokenizer("qwen2_vl", "tiny")
    assert len(plain.tokenize(" hexagons")) > 1 and plain.tokenize("hexagon") != plain.tokenize(" hexagon")[1:]
    words = ("hexagon", "hexagons", "Two", "two")
    path = tiny.build_tiny("qwen2_vl", tmp_path / "words", words=words)
    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = tokenizer.convert_tokens_to_ids(list(words))
    for text, word in ((" hexagons.", "hexagons"), ("\nhexagon", "hexagon"), ("Two hexagons", "Two"),
                       ("<|im_start|>assistant\ntwo<|im_end|>", "two")):
        assert ids[words.index(word)] in tokenizer(text, add_special_tokens=False)["input_ids"], (text, word)
    assert tokenizer.convert_tokens_to_ids("hexagon") not in tokenizer(" hexagonal")["input_ids"]
    config = json.loads((path / "config.json").read_text())
    assert config["text_config"]["vocab_size"] >= len(tokenizer) == len(plain) + 4
    assert json.loads((path / tiny.MARKER_FILE).read_text())["words"] == list(words)
    with pytest.raises(ValueError, match="causal_lm takes none"):
        tiny.build_tiny("causal_lm", tmp_path / "judge", words=words)

    section = {"type": "qwen2_vl", "model": "built", "tiny": "tiny", "tiny_words": ["hexagon"]}
    cfg = validate_config({"output_dir": "out", "backbone": section}, PluginManager(strict=True), base_dir=tmp_path)
    StageContext("train", cfg, PluginManager(strict=True), echo=lambda _: None).build_model(cfg.backbone)
    built = AutoTokenizer.from_pretrained(tmp_path / "built")
    assert built.tokenize("\nhexagon")[-1] == "hexagon" and len(built) == len(plain) + 1


def test_config_table():
    for family in FAMILIES:
        for size in tiny.SIZES:
            if family not in tiny.LARGE_SIZES.get(size, FAMILIES):
                with pytest.raises(ValueError, match="built for"):
                    tiny.tiny_config(family, size)
                continue
            spec = tiny.tiny_config(family, size)
            assert spec["family"] == family and spec["size"] == size
            spec["text"]["hidden_size"] = -1  # a copy: the table stays intact
            assert tiny.tiny_config(family, size)["text"]["hidden_size"] > 0
    vision = tiny.tiny_config("mllama", "small")["vision"]
    assert vision["vision_output_dim"] == vision["hidden_size"] * (1 + len(vision["intermediate_layers_indices"]))
    with pytest.raises(ValueError):
        tiny.tiny_config("llava", "tiny")
    with pytest.raises(ValueError):
        tiny.tiny_config("mllama", "huge")


def test_llava_next_folders_are_written_in_the_released_key_layout(tmp_path):
    """transformers 5 saves LLaVA-NeXT's vision tower without the ``vision_model`` level the released
    checkpoints (and vLLM's loader) have: the tiny builder and the adapter's save write the released
    layout, and transformers loads it back to the same weights and the same answers."""
    import torch
    from safetensors import safe_open

    from adamllm.backbone import GenerationSettings
    from adamllm.backbones.families import ADAPTERS
    from adamllm.backbones.tiny import build_tiny

    def vision_keys(folder):
        keys = []
        for path in folder.glob("*.safetensors"):
            with safe_open(str(path), "pt") as handle:
                keys += [k for k in handle.keys() if k.startswith("vision_tower.")]
        return keys

    built = build_tiny("llava_next", tmp_path / "tiny", size="tiny", seed=0)
    keys = vision_keys(built)
    assert keys and all(k.startswith("vision_tower.vision_model.") for k in keys), keys[:3]
    adapter = ADAPTERS["llava_next"].from_pretrained(built)
    saved = adapter.save(tmp_path / "saved")
    assert sorted(vision_keys(saved)) == sorted(keys)
    again = ADAPTERS["llava_next"].from_pretrained(saved)
    before, after = dict(adapter.model.named_parameters()), dict(again.model.named_parameters())
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    from PIL import Image

    Image.new("RGB", (40, 30), "red").save(tmp_path / "red.png")
    conversation = [[{"role": "user", "content": "<image>What colour is it?"}]]
    settings = GenerationSettings(max_new_tokens=6)
    assert adapter.generate(conversation, [[str(tmp_path / "red.png")]], settings) == \
        again.generate(conversation, [[str(tmp_path / "red.png")]], settings)
