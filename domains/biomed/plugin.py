"""Built-in biomed domain: SLAKE, PathVQA, VQA-RAD and PMC-VQA, and its image-caption sources.

Entry-point module: it imports nothing heavy; the benchmarks are built from strings on use.
"""
from adamllm import hookimpl
from adamllm.specs import BenchmarkSpec, DomainSpec, SourceSpec

CONFIG = "adamllm.domains.benchmarks:LayoutBenchmarkConfig"
BENCHMARKS = (
    ("slake", "SlakeBenchmark", "SLAKE radiology VQA: open token recall, closed yes/no accuracy"),
    ("pathvqa", "PathVQABenchmark", "PathVQA pathology VQA: open token recall, closed yes/no accuracy"),
    ("vqa_rad", "VQARadBenchmark", "VQA-RAD radiology VQA: open token recall, closed yes/no accuracy"),
    ("pmc_vqa", "PMCVQABenchmark", "PMC-VQA 4-way multiple choice: accuracy"),
)


@hookimpl
def adamllm_domains():
    return [
        DomainSpec(
            name="biomed",
            description="Biomedicine: PubMed Central figures with captions; radiology and pathology VQA",
            benchmarks=tuple(name for name, _, _ in BENCHMARKS),
            sources=(
                SourceSpec("image_caption_pairs", "sharegpt",
                           "hf://datasets/AdaptLLM/biomed-visual-instructions/image_caption_pairs.json",
                           "500K single-image PubMedVision pairs in the released ShareGPT layout "
                           "(images from FreedomIntelligence/PubMedVision); the file names its images "
                           "bare: set the domain's images option to the folder they were unzipped into"),
                SourceSpec("pubmedvision", "pubmedvision",
                           "hf://datasets/FreedomIntelligence/PubMedVision/PubMedVision_Alignment_VQA.json",
                           "PubMedVision alignment records (image list + human/gpt conversations); "
                           "single-image records are used; set the domain's images option to the "
                           "folder holding their images"),
            ),
            defaults={"benchmarks": [{"type": name, "scorer": "legacy"} for name, _, _ in BENCHMARKS]},
        )
    ]


@hookimpl
def adamllm_benchmarks():
    return [
        BenchmarkSpec(name=name, domain="biomed", description=description,
                      factory=f"adamllm.domains.benchmarks:{cls}", config=CONFIG)
        for name, cls, description in BENCHMARKS
    ]
