"""The consistency filter's prompt: the exact text for one triplet, the BOS rule, prompt files."""
import pytest

from adamllm.plugins.filtering.consistency import ConsistencyConfig, ConsistencyFilter, bos_prefix
from adamllm.plugins.filtering.prompt import PromptFileError, build_prompt, load_template
from adamllm.records import TaskTriplet

TRIPLET = TaskTriplet(id="p0", image="x.png", instruction="  What colour is the square? ",
                      precise="Red\n", informative="The square is painted red.")

EXPECTED = """\
Each item below gives a question about an image, a long answer that explains its reasoning and a short answer. \
Decide whether the short answer can be inferred from the long answer.
Label Yes when the long answer supports the short answer.
Label No when the two answers disagree.
Label Open when the question has no single answer to check: an open-ended question, a question that many \
different wordings answer equally well, a request to describe or caption the image, or a question that needs \
background knowledge the long answer does not give.

Question: How many eggs are in the carton?
Long answer: The carton holds two rows of eggs; the top row has five and the bottom row has four, which makes \
nine eggs altogether.
Short answer: 9
Label: Yes

Question: Which lung shows the opacity on this chest X-ray?
Long answer: A hazy white patch fills the lower zone of the right lung, while the left lung field looks clear and dark.
Short answer: The left lung
Label: No

Question: Describe the dish on the plate in detail.
Long answer: A white plate holds a fillet of grilled salmon on a bed of rice, with two lemon wedges and a handful \
of steamed green beans beside it.
Short answer: Salmon with rice and vegetables.
Label: Open

Question: Is there a fracture in the wrist radiograph?
Long answer: The distal radius shows a sharp lucent line across the bone with a slightly shifted fragment, which \
points to a fracture.
Short answer: Yes
Label: Yes

Question: Why do doctors recommend eating breakfast?
Long answer: The picture shows a bowl of oats with berries. A morning meal restores blood sugar after the \
night's fast and is linked with better concentration, although studies disagree on how much it matters.
Short answer: It gives energy.
Label: Open

Question: What is the main ingredient of the soup?
Long answer: The bowl is filled with a smooth orange purée scattered with roasted seeds; its colour and texture \
point to pumpkin as the base.
Short answer: Tomato
Label: No

Question: What colour is the square?
Long answer: The square is painted red.
Short answer: Red
Label:"""


def consistency(**options):
    return ConsistencyFilter(ConsistencyConfig.model_validate({"model": {"type": "causal_lm"}, **options}))


def test_the_built_in_prompt_for_one_triplet_is_exact():
    assert build_prompt(load_template(), TRIPLET) == EXPECTED
    assert consistency().prompt(TRIPLET) == EXPECTED
    labels = [line.removeprefix("Label: ") for line in EXPECTED.splitlines() if line.startswith("Label: ")]
    assert sorted(labels) == ["No", "No", "Open", "Open", "Yes", "Yes"]  # six worked examples, two per label


def test_bos_goes_first_only_when_the_tokenizer_adds_it(yes_judge):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(yes_judge)
    assert bos_prefix(tokenizer) == ""  # the tiny tokenizer adds no special tokens
    tokenizer.add_bos_token = True  # as Llama-3's does
    assert bos_prefix(tokenizer) == "<|begin_of_text|>"

    class Adapter:
        pass

    adapter = Adapter()
    adapter.tokenizer = tokenizer
    assert consistency().prompt(TRIPLET, adapter) == "<|begin_of_text|>" + EXPECTED


def test_a_prompt_file_replaces_the_template(tmp_path):
    path = tmp_path / "judge.txt"
    path.write_text("Q={instruction} | L={informative} | S={precise} | {not a field} {json: 1}\nVerdict:\n\n")
    filter_ = consistency(prompt=str(path))
    assert filter_.prompt(TRIPLET) == ("Q=What colour is the square? | L=The square is painted red. | S=Red | "
                                       "{not a field} {json: 1}\nVerdict:")
    # a field holding a placeholder's text is not substituted again
    tricky = TRIPLET.model_copy(update={"instruction": "Say {precise}"})
    assert filter_.prompt(tricky).startswith("Q=Say {precise} | L=")


@pytest.mark.parametrize("content,message", [
    ("Q={instruction} L={informative}", r"judge\.txt: the prompt must contain \{precise\} exactly once, found it 0 times"),
    ("{instruction}{informative}{precise}{precise}", r"\{precise\} exactly once, found it 2 times"),
    ("{instruction}\n{informative}\n{question} {precise}", r"judge\.txt:3: unknown placeholder \{question\}"),
])
def test_a_bad_prompt_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "judge.txt"
    path.write_text(content)
    with pytest.raises(PromptFileError, match=message):
        load_template(path)


def test_unreadable_prompt_files(tmp_path):
    with pytest.raises(PromptFileError, match=r"missing\.txt: no such prompt file"):
        load_template(tmp_path / "missing.txt")
    binary = tmp_path / "judge.txt"
    binary.write_bytes(b"{instruction}{informative}{precise}\xff\xfe")
    with pytest.raises(PromptFileError, match=r"judge\.txt: the prompt file is not UTF-8 text"):
        load_template(binary)


def test_config_validation_names_the_bad_prompt_file(tmp_path):
    from adamllm.config import ConfigError, validate_config
    from adamllm.registry import PluginManager

    (tmp_path / "judge.txt").write_text("no placeholders")
    with pytest.raises(ConfigError) as caught:
        validate_config({"output_dir": "out", "filter": {"type": "consistency", "prompt": "judge.txt",
                                                          "model": {"type": "causal_lm", "model": "m", "tiny": "tiny"}}},
                        PluginManager(strict=True), base_dir=tmp_path)
    text = str(caught.value)
    assert "filter.prompt" in text and str(tmp_path / "judge.txt") in text and "{instruction}" in text
