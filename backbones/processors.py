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

What a saved Qwen directory (a trained model, an ``adamllm export``) holds so that plain
``transformers.AutoProcessor.from_pretrained(dir)`` loads it with or without torchvision: in
transformers 5.x no Qwen-VL processor class can be built without a video processor (none is
optional: without a ``video_processor`` section ``from_pretrained`` looks for a video processor
file and fails, with one it imports the video processor, which needs torchvision), and
``AutoProcessor`` takes the class that ``processor_config.json`` names. So the directory names
``PORTABLE_PROCESSOR_CLASS``, an image-only processor of transformers itself whose image path is
the Qwen one (``<|image_pad|>`` repeated ``grid_t*grid_h*grid_w / merge_size**2`` times,
``mm_token_type_ids`` for M-RoPE; the token given by the tokenizer's ``image_token``, which the
tokenizer config declares): it gives the same ``input_ids``, ``pixel_values``,
``image_grid_thw`` and ``mm_token_type_ids`` as the family's processor
(``tests/backbones/test_export_autoprocessor.py``). The ``video_processor`` section stays, so
``Qwen2VLProcessor.from_pretrained(dir)`` (``Qwen2_5_VLProcessor``, ``Qwen3VLProcessor``) still
builds the real processor, video included, where torchvision is installed. LLaVA-NeXT and Mllama
have no video processor: their directories name their own processor classes.
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
    "PORTABLE_PROCESSOR_CLASS",
    "Qwen2VLImageOnlyProcessor",
    "Qwen2_5_VLImageOnlyProcessor",
    "Qwen3VLImageOnlyProcessor",
    "image_processor_class",
    "load_processor",
    "processor_class",
]

#: The processor class a saved Qwen-VL directory names (see the module docstring).
PORTABLE_PROCESSOR_CLASS = "PaddleOCRVLProcessor"
#: The tokenizer's named vision tokens, declared in tokenizer_config.json (``tokenizer.image_token``).
QWEN_VISION_TOKENS = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                      "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"}

_VIDEO_KEYS = ("do_convert_rgb", "do_resize", "size", "resample", "do_rescale", "rescale_factor",
               "do_normalize", "image_mean", "image_std", "patch_size", "temporal_patch_size", "merge_size")


class _QwenImageOnly:
    """What the three Qwen image-only processors share: set the token attributes the real
    ``__init__`` sets, skip that ``__init__`` (it insists on a video processor), refuse videos,
    and save under the real class's name.

    Behaves like the real processor for text and images (placeholder expansion of
    ``<|image_pad|>``, ``image_grid_thw``, ``mm_token_type_ids``, chat templates, assistant
    masks). When saved, the directory loads with ``AutoProcessor`` with or without torchvision
    (see the module docstring) and with the real class where torchvision is installed;
    `load_processor(family, path)` loads it back as this class.
    """

    #: The real processor class this one stands for (the ``processor_class`` of the saved tokenizer config).
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
        """Save so that ``AutoProcessor`` loads the directory with or without torchvision (the
        module docstring): ``processor_config.json`` names ``PORTABLE_PROCESSOR_CLASS`` and keeps
        a ``video_processor`` section mirroring the image settings (what a real checkpoint
        carries: the real class loads it where torchvision is installed; this class and the
        portable one ignore it); ``tokenizer_config.json`` names the real class and declares the
        vision tokens (``QWEN_VISION_TOKENS``). Saving the tokenizer again afterwards would
        drop them: save it first."""
        files = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        directory = Path(save_directory)
        config_file = directory / "processor_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8"))
        image = config.get("image_processor", {})
        config["processor_class"] = PORTABLE_PROCESSOR_CLASS
        config.setdefault("video_processor", {
            "video_processor_type": self.video_processor_type,
            **{key: image[key] for key in _VIDEO_KEYS if key in image},
        })
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tokenizer_config = directory / "tokenizer_config.json"
        if tokenizer_config.is_file():
            tok_cfg = json.loads(tokenizer_config.read_text(encoding="utf-8"))
            if tok_cfg.get("processor_class") in (type(self).__name__, None):
                tok_cfg["processor_class"] = self.real_class
            for name, default in QWEN_VISION_TOKENS.items():
                tok_cfg.setdefault(name, getattr(self, name, None) or default)
            tokenizer_config.write_text(json.dumps(tok_cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
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


def saved_chat_template(path: Path) -> str | None:
    """The processor's chat template saved in ``path``: ``chat_template.jinja`` (transformers 5),
    else the ``chat_template`` of ``chat_template.json`` (the older layout, e.g. the released
    synthesizer's), else None (the tokenizer's own applies)."""
    jinja, legacy = path / "chat_template.jinja", path / "chat_template.json"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    if legacy.is_file():
        try:
            template = json.loads(legacy.read_text(encoding="utf-8")).get("chat_template")
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"{legacy}: not a JSON object with a chat_template string ({exc})") from None
        return template if isinstance(template, str) else None
    return None


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
    chat_template = saved_chat_template(path) or tokenizer.chat_template
    kwargs = _processor_init_kwargs(cls, path)
    return cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template, **kwargs)
