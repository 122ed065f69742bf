"""The backbone contract suite: subclass it to prove an adapter works.

::

    from adamllm.testing.backbone_contract import BackboneContract

    class TestMyBackbone(BackboneContract):
        backbone = "my_backbone"                       # the registered component name

        def build_checkpoint(self, path):              # a tiny random checkpoint, offline
            return my_package.build_tiny(path)

Every check runs on CPU in seconds with a tiny model of the real architecture.
"""
from __future__ import annotations

import re

import pytest

from adamllm.backbone import IGNORE_INDEX


def _image(width: int, height: int, colour: str):
    from PIL import Image

    return Image.new("RGB", (width, height), colour)


def conversation(answer: str = "A red square.", question: str = "Describe the image.") -> list[dict]:
    return [{"role": "user", "content": f"<image>{question}"}, {"role": "assistant", "content": answer}]


FOUR_EXAMPLES = [
    (conversation("A red square on white."), ("red", 60, 80)),
    (conversation("Blue circle.", "What is shown?"), ("blue", 48, 48)),
    (conversation("Green.", "Which colour is it?") + [{"role": "user", "content": "And the shape?"},
                                                     {"role": "assistant", "content": "A triangle."}], ("green", 80, 60)),
    (conversation("A small yellow star in the corner.", "Caption this."), ("yellow", 56, 56)),
]


class BackboneContract:
    """Checks an adapter: labels, learning, generation, save/reload, LoRA, groups, length."""

    backbone: str = ""
    max_length: int = 4096

    def build_checkpoint(self, path):  # pragma: no cover - subclasses implement it
        raise NotImplementedError("return the directory of a tiny random checkpoint built under `path`")

    # -- fixtures --------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def checkpoint(cls, tmp_path_factory):
        return cls().build_checkpoint(tmp_path_factory.mktemp(f"ckpt_{cls.backbone}"))

    @pytest.fixture
    def adapter(self, checkpoint):
        import torch

        from adamllm.backbone import BackboneConfig
        from adamllm.registry import PluginManager

        torch.manual_seed(0)
        spec = PluginManager(strict=True).spec("backbone", self.backbone)
        config = spec.load_config_model()(model=str(checkpoint), max_length=self.max_length)
        assert isinstance(config, BackboneConfig) or hasattr(config, "model")
        return spec.build(config)

    @staticmethod
    def images(spec):
        colour, w, h = spec
        return [_image(w, h, colour)]

    # -- the contract ----------------------------------------------------------------------
    def test_adapter_has_every_member_of_the_core_backbone_contract(self, adapter):
        """``adamllm.backbone.Backbone`` is everything the trainer, evaluator and synthesizer call."""
        from adamllm.backbone import Backbone, Generator
        from adamllm.contracts import members

        missing = [name for name in sorted(members(Backbone)) if not hasattr(adapter, name)]
        assert not missing, f"{type(adapter).__name__} lacks {missing} of adamllm.backbone.Backbone"
        assert isinstance(adapter, Backbone) and isinstance(adapter, Generator)

    # -- labels ----------------------------------------------------------------------------
    def _labelled_text(self, adapter, sample):
        ids, labels = sample["input_ids"], sample["labels"]
        return adapter.tokenizer.decode(ids[labels != IGNORE_INDEX])

    def test_assistant_policy_labels_only_assistant_turns(self, adapter):
        messages, image = FOUR_EXAMPLES[2]
        sample = adapter.encode(messages, self.images(image), policy="assistant")
        labelled = self._labelled_text(adapter, sample)
        assert "Green." in labelled and "A triangle." in labelled
        assert labelled.index("Green.") < labelled.index("A triangle.")
        for user_text in ("Which colour is it?", "And the shape?", "user", "assistant"):
            assert user_text not in labelled
        assert (sample["labels"][sample["input_ids"] == adapter.image_token_id] == IGNORE_INDEX).all()
        # labels are the input ids where set (the model shifts them itself)
        mask = sample["labels"] != IGNORE_INDEX
        assert (sample["labels"][mask] == sample["input_ids"][mask]).all()
        # the assistant's end-of-turn token is trained, so generation learns to stop
        assert labelled.rstrip().endswith(adapter.tokenizer.decode([adapter.tokenizer.eos_token_id]).strip())

    def test_after_first_turn_policy(self, adapter):
        messages, image = FOUR_EXAMPLES[2]
        sample = adapter.encode(messages, self.images(image), policy="after_first_turn")
        labelled = self._labelled_text(adapter, sample)
        assert "Green." not in labelled and "Which colour is it?" not in labelled
        assert "And the shape?" in labelled and "A triangle." in labelled  # user turn 2 is learned too
        assert sample["labels"][-1].item() == adapter.tokenizer.convert_tokens_to_ids(adapter.end_of_text_token)
        # everything after the first exchange is labelled: one contiguous block at the end
        mask = (sample["labels"] != IGNORE_INDEX).int()
        first = int(mask.argmax())
        assert mask[first:].all()

    def test_image_tokens_match_what_the_model_consumes(self, adapter):
        import torch

        for messages, image in FOUR_EXAMPLES:
            sample = adapter.encode(messages, self.images(image))
            assert sample["num_image_tokens"] == int((sample["input_ids"] == adapter.image_token_id).sum()) > 0
            expected = adapter.consumed_image_tokens(sample)
            if expected is not None:
                assert sample["num_image_tokens"] == expected
            batch = adapter.collate([sample])
            with torch.no_grad():
                out = adapter.model(**batch)  # the model itself refuses mismatched image features
            assert torch.isfinite(out.loss)

    def test_placeholder_image_count_mismatch_is_an_error(self, adapter):
        with pytest.raises(ValueError, match="placeholders"):
            adapter.encode(conversation(), [])

    def test_pixels_recomputed_per_batch_equal_the_encoded_ones(self, adapter):
        import torch

        records = [{"messages": m, "images": self.images(i)} for m, i in FOUR_EXAMPLES]
        lazy = adapter.encode_all(records)  # keeps image references, not pixel tensors
        assert all("image_refs" in s and "pixel_values" not in s for s in lazy.samples)
        eager = adapter.encode_all(records, keep_pixels=True)
        a, b = adapter.collate(lazy.samples), adapter.collate(eager.samples)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key

    # -- packing ---------------------------------------------------------------------------
    def test_packed_row_gives_the_padded_batch_loss_and_gradients(self, adapter):
        """Families that declare ``supports_packing``: one packed row trains exactly like the padded
        batch (same loss, same gradients), and the attention implementation is put back after."""
        import torch

        from adamllm.backbone import unwrap_model

        samples = [adapter.encode(m, self.images(i)) for m, i in FOUR_EXAMPLES]
        samples.append(adapter.encode([{"role": "user", "content": "Say hi."},
                                       {"role": "assistant", "content": "Hi."}]))  # text only
        if not adapter.supports_packing:
            with pytest.raises(NotImplementedError):
                adapter.collate_packed(samples)
            return
        packed = adapter.collate_packed(samples)
        lengths = [int(s["input_ids"].shape[0]) for s in samples]
        assert packed["input_ids"].shape == (1, sum(lengths))
        starts = [sum(lengths[:i]) for i in range(len(lengths))]
        assert all(int(packed["labels"][0, s]) == IGNORE_INDEX for s in starts)
        text_positions = packed["position_ids"].reshape(-1, sum(lengths))[0]
        assert (text_positions == 0).nonzero().flatten().tolist() == starts

        model = unwrap_model(adapter.model)
        model.train()
        before = model.config.get_text_config()._attn_implementation

        def loss_and_grads(batch):
            model.zero_grad(set_to_none=True)
            loss = model(**batch).loss
            loss.backward()
            return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

        padded_loss, padded_grads = loss_and_grads(adapter.collate(samples))
        with adapter.packed_training(model):
            assert model.config.get_text_config()._attn_implementation != before
            packed_loss, packed_grads = loss_and_grads(packed)
        assert model.config.get_text_config()._attn_implementation == before
        assert torch.allclose(packed_loss, padded_loss, atol=1e-5), (packed_loss, padded_loss)
        assert packed_grads.keys() == padded_grads.keys()
        for name, grad in padded_grads.items():
            assert torch.allclose(packed_grads[name], grad, atol=1e-5, rtol=1e-4), name

    # -- learning --------------------------------------------------------------------------
    def test_full_finetune_loss_halves_within_50_steps(self, adapter):
        import torch

        samples = [adapter.encode(m, self.images(i)) for m, i in FOUR_EXAMPLES]
        batch = adapter.collate(samples)
        model = adapter.model
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        losses = []
        for _ in range(50):
            loss = model(**batch).loss
            losses.append(loss.item())
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if losses[-1] <= 0.5 * losses[0]:
                break
        assert min(losses) <= 0.5 * losses[0], f"loss {losses[0]:.3f} -> {min(losses):.3f} in {len(losses)} steps"

    # -- generation ------------------------------------------------------------------------
    def test_prompt_length_is_the_encoded_length(self, adapter, tmp_path):
        """``prompt_length`` (optional: the engine's sort key) must count what ``encode`` makes,
        image tokens included, for conversations, rendered prompts and image files."""
        if not callable(getattr(adapter, "prompt_length", None)):
            pytest.skip("the adapter has no prompt_length (the engine sorts by text length)")
        sizes = [(60, 80), (48, 48), (80, 60), (56, 168), (168, 56), (112, 112)]
        for n, (messages, _) in enumerate(FOUR_EXAMPLES + FOUR_EXAMPLES[:2]):
            question = messages[:1]
            image = [_image(*sizes[n], "red")]
            encoded = adapter.encode(question, image, add_generation_prompt=True)
            assert adapter.prompt_length(question, image) == encoded["input_ids"].shape[0], sizes[n]
            text = adapter.render(question, add_generation_prompt=True)
            assert adapter.prompt_length(text, image) == adapter.encode_prompt(text, image)["input_ids"].shape[0]
        image[0].save(tmp_path / "wide.png")
        question = FOUR_EXAMPLES[0][0][:1]
        on_disk = adapter.prompt_length(question, ["wide.png"], image_root=tmp_path)
        assert on_disk == adapter.encode(question, ["wide.png"], add_generation_prompt=True,
                                         image_root=tmp_path)["input_ids"].shape[0]
        text_only = [{"role": "user", "content": "No picture here."}]
        assert adapter.prompt_length(text_only) == adapter.encode(text_only, add_generation_prompt=True)[
            "input_ids"].shape[0]

    def test_batched_greedy_equals_per_sample_greedy(self, adapter):
        from adamllm.backbone import GenerationSettings

        prompts = [conversation()[:1],
                   [{"role": "user", "content": "<image>A much longer question about this picture, with many "
                                                "more words in it than the first one has?"}],
                   conversation("Blue.")[:1] + [{"role": "assistant", "content": "Blue."},
                                                {"role": "user", "content": "Sure?"}]]
        images = [self.images(("red", 60, 80)), self.images(("blue", 48, 64)), self.images(("green", 64, 48))]
        settings = GenerationSettings(max_new_tokens=8, min_new_tokens=8, keep_special_tokens=True)
        batched = adapter.generate(prompts, images, settings)
        single = [adapter.generate([p], [i], settings)[0] for p, i in zip(prompts, images)]
        assert batched == single
        assert all(len(adapter.tokenizer(t, add_special_tokens=False)["input_ids"]) >= 4 for t in batched)

    # -- save / reload / LoRA --------------------------------------------------------------
    def _logits(self, model, batch):
        import torch

        model.eval()
        with torch.no_grad():
            return model(**batch).logits

    def test_save_reload_gives_identical_logits(self, adapter, tmp_path):
        batch = adapter.collate([adapter.encode(m, self.images(i)) for m, i in FOUR_EXAMPLES[:2]])
        before = self._logits(adapter.model, batch)
        out = adapter.save(tmp_path / "saved")
        assert (out / "model.safetensors").exists() or list(out.glob("model-*.safetensors"))
        assert not list(out.glob("*.bin")), "weights must be safetensors"
        reloaded = type(adapter).from_pretrained(out)
        again = reloaded.collate([reloaded.encode(m, self.images(i)) for m, i in FOUR_EXAMPLES[:2]])
        for key in ("input_ids", "labels"):
            assert (again[key] == batch[key]).all()
        assert (self._logits(reloaded.model, again) == before).all()

    def test_fresh_model_is_a_new_copy_with_the_checkpoints_weights(self, adapter):
        """``fresh_model``: what sharded training loads its gathered weights into before saving."""
        import torch

        fresh = adapter.fresh_model()
        ours = dict(adapter.model.named_parameters())
        theirs = dict(fresh.named_parameters())
        assert fresh is not adapter.model and set(ours) == set(theirs)
        assert all(torch.equal(ours[n], theirs[n]) for n in ours)
        name = next(n for n, p in theirs.items() if p.is_floating_point())
        with torch.no_grad():
            theirs[name].add_(1.0)  # a copy: the adapter's own model is untouched
        assert not torch.equal(ours[name], theirs[name])

    def test_lora_save_reload_and_merge(self, adapter, tmp_path):
        import torch
        from peft import LoraConfig, PeftModel, get_peft_model

        batch = adapter.collate([adapter.encode(m, self.images(i)) for m, i in FOUR_EXAMPLES[:2]])
        base_dir = adapter.save(tmp_path / "base")
        lora = get_peft_model(adapter.model, LoraConfig(r=4, lora_alpha=8, target_modules=adapter.lora_target_modules(),
                                                        init_lora_weights=False))
        unmerged = self._logits(lora, batch)
        lora.save_pretrained(tmp_path / "lora")
        assert (tmp_path / "lora" / "adapter_model.safetensors").exists()
        base = type(adapter).from_pretrained(base_dir).model
        reloaded = PeftModel.from_pretrained(base, tmp_path / "lora")
        assert (self._logits(reloaded, batch) == unmerged).all()
        merged = reloaded.merge_and_unload()
        assert torch.allclose(self._logits(merged, batch), unmerged, atol=1e-5, rtol=0)

    # -- groups ----------------------------------------------------------------------------
    def test_groups_partition_parameters_and_freeze_exactly(self, adapter):
        groups = adapter.module_groups()
        names = [n for n, _ in adapter.model.named_parameters()]
        assert sorted(sum(groups.values(), [])) == sorted(names)
        assert all(groups[g] for g in ("vision", "projector", "language"))
        for group in ("vision", "projector", "language"):
            for p in adapter.model.parameters():
                p.requires_grad_(True)
            adapter.freeze([group])
            frozen = {n for n, p in adapter.model.named_parameters() if not p.requires_grad}
            assert frozen == set(groups[group])

    def test_default_lora_targets_only_language_linear_layers(self, adapter):
        import torch

        pattern = re.compile(adapter.lora_target_modules())
        targeted = [name for name, _ in adapter.model.named_modules() if pattern.fullmatch(name)]
        assert targeted
        language = set(adapter.module_groups()["language"])
        for name in targeted:
            module = adapter.model.get_submodule(name)
            assert isinstance(module, torch.nn.Linear), name
            assert f"{name}.weight" in language, name

    # -- length ----------------------------------------------------------------------------
    def test_over_long_sample_is_dropped_and_counted(self, adapter):
        short = FOUR_EXAMPLES[1]
        long = (conversation("word " * 400), ("red", 60, 80))
        records = [{"messages": m, "images": self.images(i)} for m, i in (short, long, short)]
        adapter.max_length = 256
        result = adapter.encode_all(records)
        assert len(result.samples) == 2
        assert result.dropped == {"too_long": 1}
        assert all(s["input_ids"].shape[0] <= 256 for s in result.samples)
        assert all(s["num_image_tokens"] > 0 for s in result.samples)  # nothing cut through images
