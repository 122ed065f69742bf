"""Entry-point module: stays light, so listing plugins imports nothing heavy."""
from adamllm import hookimpl
from adamllm.specs import BenchmarkSpec, DomainSpec, SourceSpec

DATA = "adamllm_example_domain:data"


@hookimpl
def adamllm_domains():
    return [
        DomainSpec(
            name="shapes",
            description="Toy domain: coloured shapes with captions",
            benchmarks=("shapes_vqa",),
            sources=(SourceSpec("captions", "sharegpt", f"{DATA}/image_caption_pairs.jsonl",
                                "image-caption pairs in the released ShareGPT layout"),),
        )
    ]


@hookimpl
def adamllm_benchmarks():
    return [
        BenchmarkSpec(
            name="shapes_vqa",
            domain="shapes",
            description="Yes/no and open questions about coloured shapes (4 samples)",
            factory="adamllm_example_domain.benchmark:ShapesVQA",
            config="adamllm_example_domain.benchmark:ShapesVQAConfig",
        )
    ]
