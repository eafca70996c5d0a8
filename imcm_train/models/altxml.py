"""AltXML: a BiLSTM document encoder read by two alternating attention heads."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from imcm_train.models.layers import (
    BiLSTMEncoder,
    MultiLabelModel,
    WordEmbedding,
    check_batch,
    masked_softmax,
    padding_mask,
)


class AlternatingAttention(nn.Module):
    """Two attention heads over the encoder states h_i: head m reads only the even positions
    (0, 2, 4, ... of the real tokens), head n only the odd ones; score_i = w · h_i, one w per head.

    Normalisation (the paper's formula leaves it open; this is the reading implemented):
    m = softmax of w_m · h_i over the even real positions, exactly zero at odd and padded positions;
    n = softmax of w_n · h_i over the odd real positions, exactly zero at even and padded positions.
    The document vector is a = sum_i ReLU(m_i + n_i) h_i; at each i only one of m_i, n_i can be
    non-zero, so the ReLU keeps it. A one-token document has no odd position: n is all zero.
    """

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.even_scorer = nn.Linear(hidden_dim, 1, bias=False)  # w_m
        self.odd_scorer = nn.Linear(hidden_dim, 1, bias=False)  # w_n

    def weights(self, hidden: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """hidden [B, T, D], mask [B, T] (True at real tokens) → (m, n), each [B, T]."""
        is_even = torch.arange(hidden.size(1), device=hidden.device) % 2 == 0
        even = masked_softmax(self.even_scorer(hidden).squeeze(-1), mask & is_even)
        odd = masked_softmax(self.odd_scorer(hidden).squeeze(-1), mask & ~is_even)
        return even, odd

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        even, odd = self.weights(hidden, mask)
        alpha = torch.relu(even + odd)
        return torch.einsum("bt,btd->bd", alpha, hidden)


class AltXML(MultiLabelModel):
    """Embedding (N(0,1), padding 0) → dropout → BiLSTM (length-aware: padding never enters it) → alternating attention → linear → sigmoid.

    Paper defaults: embed_dim 256, hidden_size 100 per direction, dropout 0.5, one BiLSTM layer.
    """

    def __init__(
        self,
        vocab_size: int,
        num_labels: int,
        *,
        embed_dim: int = 256,
        hidden_size: int = 100,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(vocab_size, num_labels)
        self.embedding = WordEmbedding(vocab_size, embed_dim, dropout)
        self.encoder = BiLSTMEncoder(embed_dim, hidden_size)
        self.attention = AlternatingAttention(self.encoder.output_dim)
        self.classifier = nn.Linear(self.encoder.output_dim, num_labels)

    def _encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        check_batch(tokens, lengths)
        hidden, _ = self.encoder(self.embedding(tokens), lengths)
        return hidden, padding_mask(lengths, tokens.size(1), tokens.device)

    def attention_weights(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(m, n): the even-head and odd-head weights, each [B, T]."""
        return self.attention.weights(*self._encode(tokens, lengths))

    def logits(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.classifier(self.attention(*self._encode(tokens, lengths)))
