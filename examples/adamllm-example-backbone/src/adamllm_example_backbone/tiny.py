"""A tiny random LLaVA-1.5 checkpoint, built offline (``adamllm tiny llava DIR``)."""
from __future__ import annotations

from pathlib import Path

SPECIAL = ("<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>", "<|start_header_id|>",
           "<|end_header_id|>", "<|eot_id|>", "<|python_tag|>", "<image>")
SIZES = {
    "tiny": dict(vocab=1024, hidden=64, layers=2, heads=4, vision_hidden=32, image=32, patch=8),
    "small": dict(vocab=4096, hidden=256, layers=4, heads=8, vision_hidden=128, image=56, patch=14),
}


def build_tiny(out_dir, size: str = "tiny", seed: int = 0) -> Path:
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from adamllm.backbones.offline_tokenizer import build_tokenizer
    from adamllm.backbones.templates import LLAVA_NEXT_TEMPLATE  # Llama-3 turns, "<image>\n" first

    s = SIZES[size]
    tokenizer = build_tokenizer(s["vocab"], SPECIAL, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                pad_token="<|finetune_right_pad_id|>", chat_template=LLAVA_NEXT_TEMPLATE)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": s["image"]},
                                            crop_size={"height": s["image"], "width": s["image"]})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=s["patch"],
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_NEXT_TEMPLATE)
    config = LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", image_size=s["image"], patch_size=s["patch"],
                           hidden_size=s["vision_hidden"], intermediate_size=2 * s["vision_hidden"],
                           num_hidden_layers=2, num_attention_heads=2),
        text_config=dict(model_type="llama", vocab_size=len(tokenizer), hidden_size=s["hidden"],
                         intermediate_size=2 * s["hidden"], num_hidden_layers=s["layers"],
                         num_attention_heads=s["heads"], num_key_value_heads=s["heads"] // 2,
                         bos_token_id=ids["<|begin_of_text|>"], eos_token_id=ids["<|eot_id|>"],
                         pad_token_id=ids["<|finetune_right_pad_id|>"]),
        image_token_index=ids["<image>"], vision_feature_layer=-2, vision_feature_select_strategy="default",
        image_seq_length=(s["image"] // s["patch"]) ** 2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids["<|eot_id|>"], ids["<|end_of_text|>"]]
    model.generation_config.pad_token_id = ids["<|finetune_right_pad_id|>"]
    out = Path(out_dir)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
