"""The reference code's evaluation settings (docs/method.md §9, docs/backbones.md): the default
answer budgets, the exact evaluation prompt each backbone family is given for a SLAKE record (the
Qwen-VL families with the system message), that the settings are recorded and compared like the
generation settings, and `adamllm eval` end to end with the Qwen2.5-VL and Qwen3-VL backbones."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from adamllm.benchmark import open_image
from adamllm.cli import cli
from adamllm.domains.benchmarks import BENCHMARK_CLASSES, DEFAULT_MAX_NEW_TOKENS, LayoutBenchmarkConfig
from adamllm.evaluation import EvalTask, EvaluationError, evaluate, evaluation_conversation

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
SYSTEM = "You are a helpful assistant."
REFERENCE_PROMPTING = {"system_message": SYSTEM, "min_pixels": 50176, "max_pixels": 1003520}


def slake(**options):
    return BENCHMARK_CLASSES["slake"](LayoutBenchmarkConfig(source=str(FIXTURES / "slake"), **options))


def test_default_budgets_are_the_reference_codes_and_a_section_overrides_them():
    assert DEFAULT_MAX_NEW_TOKENS == {"slake": 1024, "pathvqa": 1024, "vqa_rad": 1024, "pmc_vqa": 1024,
                                      "recipe1m": 1024, "nutrition5k": 256, "food101": 256, "foodseg103": 256}
    for name, cls in BENCHMARK_CLASSES.items():
        assert cls().max_new_tokens == DEFAULT_MAX_NEW_TOKENS[name]
    assert slake(max_new_tokens=7).max_new_tokens == 7


# -- the exact evaluation prompt per family -------------------------------------------------
QWEN_PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
               "<|vision_start|><|image_pad|><|vision_end|>Which organ is abnormal in this image?<|im_end|>\n"
               "<|im_start|>assistant\n")
LLAMA3_QUESTION = "Which organ is abnormal in this image?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
PROMPTS = {
    # family: (rendered prompt, image token, image tokens for the 32 px SLAKE image)
    "qwen2_vl": (QWEN_PROMPT, "<|image_pad|>", 64),    # budget >= 224*224 px: (224/28)^2 tokens
    "qwen2_5_vl": (QWEN_PROMPT, "<|image_pad|>", 64),
    "qwen3_vl": (QWEN_PROMPT, "<|image_pad|>", 49),    # 32 px tokens: (224/32)^2
    "llava_next": ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<image>\n" + LLAMA3_QUESTION,
                   "<image>", 36),
    "mllama": ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>" + LLAMA3_QUESTION,
               "<|image|>", 1),
}


@pytest.mark.parametrize("family", sorted(PROMPTS))
def test_the_evaluation_prompt_of_a_slake_record(tiny_checkpoints, family):
    from adamllm.backbones.families import ADAPTERS

    rendered, image_token, n_image = PROMPTS[family]
    sample = slake().samples()[0]
    adapter = ADAPTERS[family].from_pretrained(tiny_checkpoints(family))
    settings = adapter.use_evaluation_settings()
    assert settings == (REFERENCE_PROMPTING if family.startswith("qwen") else {"system_message": None})
    conversation = evaluation_conversation(sample, settings["system_message"])
    expected_turns = [{"role": "user", "content": "<image>Which organ is abnormal in this image?"}]
    if settings["system_message"]:
        expected_turns.insert(0, {"role": "system", "content": SYSTEM})
    assert conversation == expected_turns
    assert adapter.render(conversation, add_generation_prompt=True) == rendered
    tokens = adapter.encode(conversation, [open_image(sample.image)], add_generation_prompt=True)["input_ids"]
    # the tokens the model reads: the same text, each image placeholder expanded to the image's tokens
    assert adapter.tokenizer.decode(tokens) == rendered.replace(image_token, image_token * n_image, 1)
    first = "<|im_start|>" if family.startswith("qwen") else "<|begin_of_text|>"
    assert int(tokens[0]) == adapter.tokenizer.convert_tokens_to_ids(first)
    assert int((tokens == adapter.image_token_id).sum()) == n_image


# -- the settings are recorded and compared --------------------------------------------------
class Recorder:
    """A backbone without a model: records the conversations it is asked, answers "Lung"."""

    family = "recorder"

    def __init__(self, system_message=None, with_settings=True):
        self.system_message, self.conversations = system_message, []
        if with_settings:
            self.use_evaluation_settings = lambda: {"system_message": self.system_message}

    def generate(self, conversations, images, settings=None):
        self.conversations += conversations
        return ["Lung"] * len(conversations)


def test_the_system_message_leads_every_prompt_and_is_recorded_and_compared(tmp_path):
    def run(adapter, **options):
        return evaluate(adapter, [EvalTask(slake(), "biomed")], tmp_path, model_name="m", progress=False, **options)

    brief = Recorder("Be brief.")
    report = run(brief)
    assert len(brief.conversations) == 4
    assert all(c[0] == {"role": "system", "content": "Be brief."} and c[1]["role"] == "user" and len(c) == 2
               for c in brief.conversations)
    assert report["benchmarks"]["slake"]["prompting"] == {"system_message": "Be brief."}
    assert json.loads((tmp_path / "slake" / "run.json").read_text())["prompting"] == {"system_message": "Be brief."}
    assert report["benchmarks"]["slake"]["generation"]["max_new_tokens"] == 1024

    with pytest.raises(EvaluationError, match="different prompting"):
        run(Recorder("Answer in French."))
    again = Recorder("Be brief.")
    run(again)
    assert again.conversations == []  # same settings: the finished predictions are reused
    plain = Recorder(with_settings=False)  # a backbone without evaluation settings: no system turn
    report = run(plain, restart_stale=True)
    assert [c[0]["role"] for c in plain.conversations] == ["user"] * 4
    assert "prompting" not in report["benchmarks"]["slake"]


# -- adamllm eval end to end with the new backbones ------------------------------------------
COUNTS = {"slake": 2, "pathvqa": 2, "vqa_rad": 2, "pmc_vqa": 2, "recipe1m": 2, "nutrition5k": 2, "food101": 2,
          "foodseg103": 2}


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_eval_cli_runs_the_fixture_benchmarks_with_the_new_qwen_backbones(tiny_checkpoints, tmp_path, family):
    model = str(tiny_checkpoints(family))
    out = tmp_path / "eval"
    args = ["eval", "--backbone", family, "--model", model, "--benchmarks", "biomed,food", "--data-root",
            str(FIXTURES), "--limit", "2", "--out", str(out), "--max-new-tokens", "2", "--batch-size", "4", "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["backbone"] == family and list(report["benchmarks"]) == list(COUNTS)
    for name, entry in report["benchmarks"].items():
        assert entry["n_samples"] == COUNTS[name] and entry["n_errors"] == 0
        assert entry["prompting"] == REFERENCE_PROMPTING and entry["generation"]["max_new_tokens"] == 2
        records = [json.loads(line) for line in (out / name / "predictions.jsonl").read_text().splitlines()]
        assert len(records) == COUNTS[name] and all(isinstance(r["prediction"], str) for r in records)
    assert len(report["averages"]["biomed"]["columns"]) == 7 and len(report["averages"]["food"]["columns"]) == 4
    written = {name: (out / name / "predictions.jsonl").stat().st_mtime_ns for name in COUNTS}
    rerun = CliRunner().invoke(cli, args)  # same settings, everything finished: nothing is generated again
    assert rerun.exit_code == 0, rerun.output
    assert {name: (out / name / "predictions.jsonl").stat().st_mtime_ns for name in COUNTS} == written
    assert json.loads((out / "report.json").read_text())["benchmarks"] == report["benchmarks"]


# -- the presets -------------------------------------------------------------------------------
PRESETS = Path(__file__).resolve().parents[2] / "examples" / "presets"


def test_the_paper_evaluation_preset_carries_exactly_the_reference_settings():
    from adamllm.backbones.qwen_vl_family import REFERENCE_MAX_PIXELS, REFERENCE_MIN_PIXELS
    from adamllm.config import load_config
    from adamllm.registry import PluginManager

    cfg = load_config(PRESETS / "paper-evaluation.yaml", PluginManager(strict=True))
    assert cfg.stages == ["evaluate"]
    budgets = {section.type: section.options.max_new_tokens for section in cfg.benchmarks}
    assert budgets == DEFAULT_MAX_NEW_TOKENS  # every built-in benchmark, at the reference budget
    assert {section.options.scorer for section in cfg.benchmarks} == {"legacy"}
    backbone = cfg.backbone.options
    assert (backbone.min_pixels, backbone.max_pixels) == (REFERENCE_MIN_PIXELS, REFERENCE_MAX_PIXELS) == (50176, 1003520)


def test_the_qwen2_5_vl_preset_is_the_later_papers_setting():
    from adamllm.config import load_config
    from adamllm.registry import PluginManager

    cfg = load_config(PRESETS / "qwen2.5-vl-3b-biomed.yaml", PluginManager(strict=True))
    assert (cfg.backbone.type, cfg.backbone.options.model) == ("qwen2_5_vl", "Qwen/Qwen2.5-VL-3B-Instruct")
    trainer = cfg.trainer.options
    assert (trainer.num_epochs, trainer.learning_rate, trainer.mode) == (1, 1e-5, "full")
    assert 8 * trainer.batch_size * trainer.gradient_accumulation_steps == 128  # 8 GPUs
