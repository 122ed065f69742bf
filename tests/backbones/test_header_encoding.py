"""Training samples encoded from image sizes (no processor before step 1) equal the processor's."""
import json
import random

import pytest
import torch
from PIL import Image

from adamllm.backbones.families import ADAPTERS
from adamllm.backbones.header_encoding import encode_from_headers, same_sample
from adamllm.plugins.sft.config import SFTConfig
from adamllm.plugins.sft.data import load_records
from adamllm.plugins.sft.trainer import SFTTrainer
from adamllm.testing.data import write_mix


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Images of many sizes and aspect ratios (each family's token count depends on both)."""
    root = tmp_path_factory.mktemp("sizes")
    rng = random.Random(0)
    paths = []
    for i in range(12):
        width, height = rng.randint(20, 900), rng.randint(20, 900)
        Image.new("RGB", (width, height), (rng.randrange(255), 40, 90)).save(root / f"i{i}.png")
        paths.append(f"i{i}.png")
    return root, paths


def conversations(paths):
    """One and two images per sample, two and four turns."""
    for i, path in enumerate(paths):
        messages = [{"role": "user", "content": "<image>Describe this."},
                    {"role": "assistant", "content": "Red " * (i % 4) + "shapes."}]
        if i % 3 == 0:
            messages += [{"role": "user", "content": "And <image> this one?"}, {"role": "assistant", "content": "Blue."}]
            yield messages, [path, paths[(i + 5) % len(paths)]]
        else:
            yield messages, [path]


@pytest.mark.parametrize("family,budget", [("qwen2_vl", {}), ("qwen2_vl", {"min_pixels": 3136, "max_pixels": 3136}),
                                           ("qwen2_5_vl", {}), ("qwen3_vl", {}), ("llava_next", {})])
@pytest.mark.parametrize("policy", ["assistant", "after_first_turn"])
def test_each_family_counts_image_tokens_as_its_processor(family, budget, policy, tiny_checkpoints, images):
    root, paths = images
    adapter = ADAPTERS[family].from_pretrained(tiny_checkpoints(family), **budget)
    for check in ("decode", "header"):
        for messages, imgs in conversations(paths):
            full = adapter.encode(messages, imgs, policy, image_root=root)
            header = encode_from_headers(adapter, messages, imgs, policy, root, check=check,
                                         token_types="mm_token_type_ids" in full)
            assert header is not None and same_sample(header, full, adapter.pixel_keys), (family, imgs)
            assert header["num_image_tokens"] == full["num_image_tokens"]


def test_mllama_whose_processor_cannot_count_is_encoded_by_its_processor(tiny_checkpoints, images):
    root, paths = images
    adapter = ADAPTERS["mllama"].from_pretrained(tiny_checkpoints("mllama"))
    messages, imgs = next(conversations(paths[1:]))
    assert encode_from_headers(adapter, messages, imgs, image_root=root) is None
    records = [{"messages": m, "images": i} for m, i in conversations(paths[:4])]
    result = adapter.encode_all(records, image_root=root)
    assert result.header_encoded is False and len(result.samples) == 4


def test_a_wrong_count_falls_back_to_the_processor_for_every_record(tiny_checkpoints, images):
    """A processor version whose own count disagrees with its output is caught on the first sample."""
    root, paths = images
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(tiny_checkpoints("qwen2_vl"))
    records = [{"messages": m, "images": i} for m, i in conversations(paths[:5])]
    right = adapter.encode_all(records, image_root=root)
    assert right.header_encoded is True
    count = adapter.processor._get_num_multimodal_tokens
    adapter.processor._get_num_multimodal_tokens = lambda image_sizes: {  # off by one, as a changed version could be
        "num_image_tokens": [n + 1 for n in count(image_sizes=image_sizes)["num_image_tokens"]]}
    wrong = adapter.encode_all(records, image_root=root)
    assert wrong.header_encoded is False
    for a, b in zip(right.samples, wrong.samples):
        assert torch.equal(a["input_ids"].long(), b["input_ids"].long()) and torch.equal(a["labels"], b["labels"])


def test_a_truncated_image_is_refused_before_step_1_unless_only_headers_are_read(tiny_checkpoints, images, tmp_path):
    root, paths = images
    data = (root / paths[0]).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    for path in paths[:2]:
        (tmp_path / path).write_bytes((root / path).read_bytes())
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(tiny_checkpoints("qwen2_vl"))
    messages = [{"role": "user", "content": "<image>Describe."}, {"role": "assistant", "content": "Red."}]
    records = [{"id": name, "messages": messages, "images": [name]} for name in (paths[0], paths[1], "cut.png")]
    decoded = adapter.encode_all(records, image_root=tmp_path, image_check="decode")
    assert decoded.indices == [0, 1] and "truncated image file" in decoded.problems[0]
    headers = adapter.encode_all(records, image_root=tmp_path, image_check="header")
    assert headers.indices == [0, 1, 2]  # only the header was read: the batch finds it
    with pytest.raises(ValueError, match="cut.png: truncated image file"):
        adapter.collate([headers.samples[2]])


def test_training_on_header_encoded_samples_gives_the_same_losses(tiny_checkpoints, tmp_path):
    records, root = load_records(write_mix(tmp_path / "data", n=8))
    losses = {}
    for check in ("processor", "decode", "header"):
        adapter = ADAPTERS["qwen2_vl"].from_pretrained(tiny_checkpoints("qwen2_vl"))
        config = SFTConfig(learning_rate=3e-3, batch_size=4, num_epochs=2, warmup_ratio=0.0, image_check=check)
        summary = SFTTrainer(config).train(adapter, records, tmp_path / check, image_root=root, seed=0)
        assert summary["image_tokens_from_sizes"] is (None if check == "processor" else True)
        losses[check] = [json.loads(line)["loss"] for line in (tmp_path / check / "loss.jsonl").read_text().splitlines()]
    assert len(losses["processor"]) == 4
    assert losses["processor"] == losses["decode"] == losses["header"]
