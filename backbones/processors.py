"""Processors for the backbone families, without torchvision.

* The Qwen image-only processors (`Qwen2VLImageOnlyProcessor`, `Qwen2_5_VLImageOnlyProcessor`,
  `Qwen3VLImageOnlyProcessor`): transformers' own Qwen2-VL / Qwen2.5-VL / Qwen3-VL processors minus
  the video processor. In transformers 5.x the real classes require a video processor, and video
  processors need torchvision; these subclasses drop the video sub-processor (ProcessorMixin
  derives its sub-processors from the `__init__` signature). They share `_QwenImageOnly` and are
  defined at module level so that they pickle (datasets workers).
* `load_processor(family, path)`: load a saved processor with the concrete class of its family
  and the PIL image-processor class (`*Pil`), so no torchvision backend is tried and nothing
  warns. Never `AutoProcessor`: for an unknown `processor_class` it silently returns a
  tokenizer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import AutoTokenizer
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
from transformers.models.llava_next.processing_llava_next import LlavaNextProcessor
from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil
from transformers.models.mllama.processing_mllama import MllamaProcessor
from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor
from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor
from transformers.processing_utils import ProcessorMixin

__all__ = [
    "FAMILY_CLASSES",
    "Qwen2VLImageOnlyProcessor",
    "Qwen2_5_VLImageOnlyProcessor",
    "Qwen3VLImageOnlyProcessor",
    "image_processor_class",
    "load_processor",
    "processor_class",
]

_VIDEO_KEYS = ("do_convert_rgb", "do_resize", "size", "resample", "do_rescale", "rescale_factor",
               "do_normalize", "image_mean", "image_std", "patch_size", "temporal_patch_size", "merge_size")


class _QwenImageOnly:
    """What the three Qwen image-only processors share: set the token attributes the real
    ``__init__`` sets, skip that ``__init__`` (it insists on a video processor), refuse videos,
    and save under the real class's name.

    Behaves like the real processor for text and images (placeholder expansion of
    ``<|image_pad|>``, ``image_grid_thw``, ``mm_token_type_ids``, chat templates, assistant
    masks). When saved, the processor config names the real processor class (and, if the image
    processor is the PIL one, ``Qwen2VLImageProcessor``) so that the directory looks like a real
    checkpoint; `load_processor(family, path)` loads it back without torchvision.
    """

    #: The real processor class this one stands for (written as ``processor_class`` when saved).
    real_class: str = ""
    #: The video processor a real checkpoint of the family names (a mirrored section is saved).
    video_processor_type: str = ""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        if tokenizer is None:
            raise ValueError(f"{type(self).__name__} needs a tokenizer")
        for name, default in (("image", "<|image_pad|>"), ("video", "<|video_pad|>"),
                              ("vision_start", "<|vision_start|>"), ("vision_end", "<|vision_end|>")):
            token = getattr(tokenizer, f"{name}_token", None) or default
            setattr(self, f"{name}_token", token)
            setattr(self, f"{name}_token_id",
                    getattr(tokenizer, f"{name}_token_id", None) or tokenizer.convert_tokens_to_ids(token))
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    def __call__(self, images=None, text=None, videos=None, **kwargs):
        if videos is not None:
            raise ValueError(f"{type(self).__name__} handles images only (videos need torchvision)")
        return super().__call__(images=images, text=text, **kwargs)

    def to_dict(self):
        output = super().to_dict()
        output["processor_class"] = self.real_class
        image_processor = output.get("image_processor")
        if isinstance(image_processor, dict) and image_processor.get("image_processor_type", "").endswith("Pil"):
            image_processor["image_processor_type"] = image_processor["image_processor_type"][: -len("Pil")]
        return output

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """Save like the real processor would: the processor config also gets a ``video_processor``
        section mirroring the image settings (what a real checkpoint carries), so the real class
        can load the directory where torchvision is installed; this class ignores it."""
        files = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        directory = Path(save_directory)
        config_file = directory / "processor_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8"))
        image = config.get("image_processor", {})
        config.setdefault("video_processor", {
            "video_processor_type": self.video_processor_type,
            **{key: image[key] for key in _VIDEO_KEYS if key in image},
        })
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tokenizer_config = directory / "tokenizer_config.json"
        if tokenizer_config.is_file():
            tok_cfg = json.loads(tokenizer_config.read_text(encoding="utf-8"))
            if tok_cfg.get("processor_class") == type(self).__name__:
                tok_cfg["processor_class"] = self.real_class
                tokenizer_config.write_text(json.dumps(tok_cfg, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
        return files


class Qwen2VLImageOnlyProcessor(_QwenImageOnly, Qwen2VLProcessor):
    """`Qwen2VLProcessor` for images only: no video processor, hence no torchvision."""

    real_class = "Qwen2VLProcessor"
    video_processor_type = "Qwen2VLVideoProcessor"


class Qwen2_5_VLImageOnlyProcessor(_QwenImageOnly, Qwen2_5_VLProcessor):
    """`Qwen2_5_VLProcessor` for images only (Qwen2.5-VL checkpoints name Qwen2-VL's video processor)."""

    real_class = "Qwen2_5_VLProcessor"
    video_processor_type = "Qwen2VLVideoProcessor"


class Qwen3VLImageOnlyProcessor(_QwenImageOnly, Qwen3VLProcessor):
    """`Qwen3VLProcessor` for images only (its frame timestamps concern videos, which it refuses)."""

    real_class = "Qwen3VLProcessor"
    video_processor_type = "Qwen3VLVideoProcessor"


#: family -> (processor class, PIL image-processor class)
FAMILY_CLASSES: dict[str, tuple[type, type]] = {
    "qwen2_vl": (Qwen2VLImageOnlyProcessor, Qwen2VLImageProcessorPil),
    "qwen2_5_vl": (Qwen2_5_VLImageOnlyProcessor, Qwen2VLImageProcessorPil),
    "qwen3_vl": (Qwen3VLImageOnlyProcessor, Qwen2VLImageProcessorPil),  # Qwen3-VL reuses Qwen2-VL's image processor
    "llava_next": (LlavaNextProcessor, LlavaNextImageProcessorPil),
    "mllama": (MllamaProcessor, MllamaImageProcessorPil),
}


def _classes(family: str) -> tuple[type, type]:
    try:
        return FAMILY_CLASSES[family]
    except KeyError:
        raise ValueError(f"unknown family {family!r}; expected one of {sorted(FAMILY_CLASSES)}") from None


def processor_class(family: str) -> type:
    """The processor class used for a family."""
    return _classes(family)[0]


def image_processor_class(family: str) -> type:
    """The PIL image-processor class of a family (no torchvision needed)."""
    return _classes(family)[1]


def _processor_init_kwargs(cls: type, path: Path) -> dict:
    """Processor-level settings saved in processor_config.json (e.g. LLaVA-NeXT's patch_size)."""
    config_file = path / "processor_config.json"
    if not config_file.is_file():
        return {}
    saved = json.loads(config_file.read_text(encoding="utf-8"))
    code = cls.__init__.__code__
    accepted = set(code.co_varnames[1: code.co_argcount]) - set(cls.get_attributes())
    accepted.discard("chat_template")
    return {k: v for k, v in saved.items() if k in accepted}


def load_processor(family: str, path: str | os.PathLike, *, padding_side: str | None = None):
    """Load the processor saved in `path` with the concrete class of `family`.

    Uses the family's ``*Pil`` image-processor class and the saved tokenizer and chat template.
    `padding_side`, when given, is set on the tokenizer (a saved tokenizer keeps its own: right
    for training, left for batched generation).
    """
    cls, image_cls = _classes(family)
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no processor directory at {path}")
    image_processor = image_cls.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    template_file = path / "chat_template.jinja"
    chat_template = (template_file.read_text(encoding="utf-8") if template_file.is_file()
                     else tokenizer.chat_template)
    kwargs = _processor_init_kwargs(cls, path)
    return cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template, **kwargs)
