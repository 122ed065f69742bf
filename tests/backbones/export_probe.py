"""Load exported model folders the way a user of plain transformers would, in a fresh process.

``python export_probe.py EXPECTED.pt [--pixel-atol X] [--real]``: for each ``family -> folder``
in the expected file, ``AutoProcessor.from_pretrained(folder)`` processes one image and one
rendered conversation, whose inputs must equal the expected ones (what adamllm's own processor
gave; pixel values within ``--pixel-atol``: the torchvision image backend rounds differently from
the PIL one), and ``AutoModelForImageTextToText.from_pretrained(folder)`` runs them, with finite
logits equal to the expected ones. ``--real`` (torchvision installed): the Qwen folders also load
with their real processor class, video processor included, and give the same inputs. Prints one
JSON line per family; exits 1 on the first mismatch. Imports nothing of adamllm, so it runs in
any environment with transformers (a torchvision one included).
"""
import json
import sys

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

REAL = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}


def same(name, got, want, pixel_atol):
    if got.dtype.is_floating_point and pixel_atol:
        return got.shape == want.shape and torch.allclose(got, want, atol=pixel_atol)
    return torch.equal(got, want)


def check(family, entry, pixel_atol, real):
    processor = AutoProcessor.from_pretrained(entry["folder"])
    image = Image.new("RGB", (60, 80), (200, 30, 30))
    text = processor.apply_chat_template(entry["conversation"], tokenize=False)
    assert text == entry["text"], (family, text, entry["text"])
    images = [[image]] if entry["nested"] else [image]  # Mllama takes a list of images per text
    inputs = processor(images=images, text=[text], return_tensors="pt")
    expected = entry["inputs"]
    assert set(inputs) == set(expected), (family, sorted(inputs), sorted(expected))
    for key, want in expected.items():
        assert same(key, inputs[key], want, pixel_atol), (family, key)
    model = AutoModelForImageTextToText.from_pretrained(entry["folder"]).eval()
    with torch.no_grad():
        logits = model(**inputs).logits
    assert torch.isfinite(logits).all(), family
    if not pixel_atol:
        assert torch.equal(logits, entry["logits"]), family
    result = {"family": family, "processor": type(processor).__name__,
              "image_processor": type(processor.image_processor).__name__, "tokens": int(inputs["input_ids"].shape[1])}
    if real and family in REAL:
        import transformers

        cls = getattr(transformers, REAL[family])
        full = cls.from_pretrained(entry["folder"])
        again = full(images=images, text=[text], return_tensors="pt")
        for key, want in expected.items():
            assert same(key, again[key], want, pixel_atol), (family, "real", key)
        result["real"] = [type(full).__name__, type(full.video_processor).__name__]
    return result


def main(argv):
    expected = torch.load(argv[0], weights_only=True)  # tensors, strings and lists only: no pickle code runs
    pixel_atol = float(argv[argv.index("--pixel-atol") + 1]) if "--pixel-atol" in argv else 0.0
    real = "--real" in argv
    assert "adamllm" not in sys.modules
    for family, entry in expected.items():
        print(json.dumps(check(family, entry, pixel_atol, real)), flush=True)
    assert "adamllm" not in sys.modules


if __name__ == "__main__":
    main(sys.argv[1:])
