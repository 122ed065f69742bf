"""Built-in filters: ``consistency`` (an LLM judges each triplet, the paper's filter), ``lexical``
(no model: word overlap) and ``none`` (keep every triplet), the last two for ablations."""
