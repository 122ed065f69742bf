"""The training loss, with the language-model head applied only where there are labels.

A vision-language model's forward computes logits for every position (batch × length × vocab:
for real vocabularies of 128-152k tokens that is most of the activation memory) although only the
assistant tokens carry labels. ``LabelledLM`` runs the model body, gathers the hidden states whose
next token is labelled, and applies the head and the cross-entropy to those rows only. It is an
``nn.Module`` around the model so that DDP (accelerate) wraps it and still syncs gradients.
"""
from __future__ import annotations

import torch
from torch import nn

from adamllm.backbone import IGNORE_INDEX, unwrap_model


class LabelledLM(nn.Module):
    def __init__(self, model: nn.Module, head_on_labels_only: bool = True) -> None:
        super().__init__()
        self.model = model
        self.head_on_labels_only = head_on_labels_only

    def forward(self, labels: torch.Tensor, **inputs) -> tuple[torch.Tensor, int]:
        """Mean cross-entropy over labelled tokens, and how many there were."""
        if not self.head_on_labels_only:
            out = self.model(**inputs, labels=labels)
            return out.loss, int((labels[:, 1:] != IGNORE_INDEX).sum())
        inner = unwrap_model(self.model)
        hidden = inner.model(**inputs).last_hidden_state  # (batch, length, hidden)
        targets = labels[:, 1:]
        keep = targets != IGNORE_INDEX  # position t predicts token t+1
        selected = hidden[:, :-1][keep]
        logits = inner.lm_head(selected).float()
        n = int(keep.sum())
        loss = nn.functional.cross_entropy(logits, targets[keep], reduction="sum") / max(n, 1)
        return loss, n
