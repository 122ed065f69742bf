"""Built-in benchmarks that belong to no domain: ``vqa``, for evaluating on your own VQA set.

Entry-point module: strings only, nothing heavy is imported.
"""
from adamllm import hookimpl
from adamllm.specs import BenchmarkSpec


@hookimpl
def adamllm_benchmarks():
    return [
        BenchmarkSpec(name="vqa", description="Your own VQA set in the public layout (source: folder or hub id)",
                      factory="adamllm.domains.benchmarks:CustomVQABenchmark",
                      config="adamllm.domains.benchmarks:CustomVQAConfig")
    ]
