"""The built-in ``adamllm`` composer: kept triplets and captions into the single-stage training mix."""
