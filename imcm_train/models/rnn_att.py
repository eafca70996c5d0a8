"""RNN+Att: AltXML's network with one ordinary attention head over all positions."""

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


class RNNAttention(MultiLabelModel):
    """Embedding → dropout → BiLSTM (length-aware) → attention (softmax of w · h_i over the real tokens)
    → linear → sigmoid. Defaults as AltXML: embed_dim 256, hidden_size 100, dropout 0.5.
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
        self.scorer = nn.Linear(self.encoder.output_dim, 1, bias=False)
        self.classifier = nn.Linear(self.encoder.output_dim, num_labels)

    def _encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        check_batch(tokens, lengths)
        hidden, _ = self.encoder(self.embedding(tokens), lengths)
        mask = padding_mask(lengths, tokens.size(1), tokens.device)
        return hidden, masked_softmax(self.scorer(hidden).squeeze(-1), mask)

    def attention_weights(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """[B, T]: attention over the real tokens, zero at padding."""
        return self._encode(tokens, lengths)[1]

    def logits(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        hidden, weights = self._encode(tokens, lengths)
        return self.classifier(torch.einsum("bt,btd->bd", weights, hidden))
