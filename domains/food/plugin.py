"""Built-in food domain: Recipe1M, Nutrition5K, Food101 and FoodSeg103, and its image-caption sources.

Entry-point module: it imports nothing heavy; the benchmarks are built from strings on use.
"""
from adamllm import hookimpl
from adamllm.specs import BenchmarkSpec, DomainSpec, SourceSpec

CONFIG = "adamllm.domains.benchmarks:LayoutBenchmarkConfig"
BENCHMARKS = (
    ("recipe1m", "Recipe1MBenchmark", "Recipe1M recipe generation: ROUGE-L F"),
    ("nutrition5k", "Nutrition5KBenchmark", "Nutrition5K ingredient list: per-sample recall over the vocabulary"),
    ("food101", "Food101Benchmark", "Food101 101-way dish classification: accuracy"),
    ("foodseg103", "FoodSeg103Benchmark", "FoodSeg103 food categories (102 classes): per-sample F1"),
)


@hookimpl
def adamllm_domains():
    return [
        DomainSpec(
            name="food",
            description="Food: Recipe1M dish photos with recipes; dish, ingredient and category recognition",
            benchmarks=tuple(name for name, _, _ in BENCHMARKS),
            sources=(
                SourceSpec("image_caption_pairs", "sharegpt",
                           "hf://datasets/AdaptLLM/food-visual-instructions/image_caption_pairs.json",
                           "Recipe1M images with recipe captions in the released ShareGPT layout; the file "
                           "names its images bare: set the domain's images option to the folder they "
                           "were unzipped into"),
                SourceSpec("recipe1m", "recipe1m", "recipe1m_pairs.json",
                           "Recipe1M-style recipe records (title, ingredients, instructions, image), "
                           "Recipe1M's layer1.json joined with one image per recipe; Recipe1M needs "
                           "registration, so this source is a local file (relative to the run config), its "
                           "images beside it or in its sibling images/ folder",
                           reader="adamllm.domains.sources:read_recipe_pairs"),
            ),
            defaults={"benchmarks": [{"type": name, "scorer": "legacy"} for name, _, _ in BENCHMARKS]},
        )
    ]


@hookimpl
def adamllm_benchmarks():
    return [
        BenchmarkSpec(name=name, domain="food", description=description,
                      factory=f"adamllm.domains.benchmarks:{cls}", config=CONFIG)
        for name, cls, description in BENCHMARKS
    ]
