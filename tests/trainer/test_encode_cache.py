"""The encoded training set is reused by a rerun only while everything it was made from is unchanged."""
import json

import torch
from PIL import Image

from adamllm.backbones.families import ADAPTERS
from adamllm.plugins.sft import encode_cache
from adamllm.plugins.sft.config import SFTConfig
from adamllm.plugins.sft.data import load_records
from adamllm.plugins.sft.trainer import SFTTrainer
from adamllm.testing.data import write_mix


def run(checkpoint, records, root, out, **options):
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(checkpoint, **options.pop("backbone", {}))
    for token in options.pop("add_tokens", []):
        adapter.tokenizer.add_tokens([token])
    config = SFTConfig(**{"learning_rate": 3e-3, "batch_size": 4, "max_steps": 2, "warmup_ratio": 0.0, **options})
    summary = SFTTrainer(config).train(adapter, records, out, image_root=root, seed=0, resume=False)
    losses = [json.loads(line)["loss"] for line in (out / "loss.jsonl").read_text().splitlines()]
    return summary, losses


def test_a_rerun_reads_the_cache_and_trains_the_same(tiny_checkpoints, tmp_path):
    ckpt = tiny_checkpoints("qwen2_vl")
    records, root = load_records(write_mix(tmp_path / "data", n=8))
    first, losses = run(ckpt, records, root, tmp_path / "out")
    assert first["encoded_from_cache"] is False
    files = sorted(p.name for p in (tmp_path / "out" / encode_cache.FOLDER).iterdir())
    assert files == ["meta.json", "samples.safetensors"]  # tensors as safetensors, the rest JSON: no pickle
    again, losses_again = run(ckpt, records, root, tmp_path / "out")
    assert again["encoded_from_cache"] is True and losses_again == losses
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(ckpt)
    fresh = adapter.encode_all(records, image_root=root)
    key = encode_cache.cache_key(adapter, records, policy="assistant", image_root=root, image_check="decode")
    cached = encode_cache.load(tmp_path / "out" / encode_cache.FOLDER, key)
    assert cached.indices == fresh.indices and len(cached.samples) == len(fresh.samples)
    for a, b in zip(cached.samples, fresh.samples):
        assert a.keys() == b.keys()
        for name in a:
            if isinstance(a[name], torch.Tensor):
                assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name
            else:
                assert a[name] == b[name] or name == "image_refs" and list(a[name][0]) == list(b[name][0])


def test_a_changed_record_image_tokenizer_or_budget_is_encoded_again(tiny_checkpoints, tmp_path):
    ckpt = tiny_checkpoints("qwen2_vl")
    records, root = load_records(write_mix(tmp_path / "data", n=8))
    out = tmp_path / "out"
    assert run(ckpt, records, root, out)[0]["encoded_from_cache"] is False
    assert run(ckpt, records, root, out)[0]["encoded_from_cache"] is True

    edited = [dict(r) for r in records]
    edited[3] = {**edited[3], "messages": [*edited[3]["messages"][:-1],
                                           {"role": "assistant", "content": "Another answer."}]}
    assert run(ckpt, edited, root, out)[0]["encoded_from_cache"] is False

    image = root / records[0]["images"][0]  # same name, same size, other pixels
    size = Image.open(image).size
    Image.new("RGB", size, (1, 2, 3)).save(image)
    assert run(ckpt, edited, root, out)[0]["encoded_from_cache"] is False
    assert run(ckpt, edited, root, out)[0]["encoded_from_cache"] is True

    assert run(ckpt, edited, root, out, add_tokens=["zzzq"])[0]["encoded_from_cache"] is False
    assert run(ckpt, edited, root, out, backbone={"max_pixels": 56 * 56})[0]["encoded_from_cache"] is False
    assert run(ckpt, edited, root, out, label_policy="after_first_turn")[0]["encoded_from_cache"] is False
    assert run(ckpt, edited, root, out, image_check="header")[0]["encoded_from_cache"] is False


def test_the_cache_can_be_turned_off(tiny_checkpoints, tmp_path):
    records, root = load_records(write_mix(tmp_path / "data", n=4))
    summary, _ = run(tiny_checkpoints("qwen2_vl"), records, root, tmp_path / "out", encode_cache=False)
    assert summary["encoded_from_cache"] is False and not (tmp_path / "out" / encode_cache.FOLDER).exists()
