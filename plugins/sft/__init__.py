"""The built-in ``sft`` trainer: single-stage post-training of a backbone on a composed mix."""
