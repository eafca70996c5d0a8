"""CNN-RNN (Chen et al. 2017): CNN document features initialise an LSTM that emits the labels."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from imcm_train.models.cnn import ConvFeatures
from imcm_train.models.layers import Context, LabelSequenceModel, State


class CNNRNN(LabelSequenceModel):
    """Kim-CNN features (widths 3/4/5 × 100 maps) → dropout → tanh(linear) as the initial (h, c)
    of a one-layer LSTM decoder over label embeddings; each step: dropout → linear over labels + EOS.

    Trained with teacher forcing (labels in ascending id = descending frequency, then EOS);
    decoded greedily (beam_size 1) unless beam_size says otherwise.
    """

    def __init__(
        self,
        vocab_size: int,
        num_labels: int,
        *,
        embed_dim: int = 256,
        num_filters: int = 100,
        filter_widths: tuple[int, ...] = (3, 4, 5),
        label_embed_dim: int = 256,
        decoder_hidden: int = 256,
        dropout: float = 0.5,
        beam_size: int = 1,
        max_labels: int | None = None,
    ) -> None:
        super().__init__(vocab_size, num_labels, beam_size, max_labels)
        self.features = ConvFeatures(vocab_size, embed_dim, num_filters, tuple(filter_widths))
        self.dropout = nn.Dropout(dropout)
        self.initial_hidden = nn.Linear(self.features.output_dim, decoder_hidden)
        self.initial_cell = nn.Linear(self.features.output_dim, decoder_hidden)
        self.label_embedding = nn.Embedding(num_labels + 2, label_embed_dim)  # labels, EOS, BOS
        self.decoder = nn.LSTM(label_embed_dim, decoder_hidden, batch_first=True)
        self.output = nn.Linear(decoder_hidden, num_labels + 1)

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[State, Context]:
        features = self.dropout(self.features(tokens, lengths))
        hidden = torch.tanh(self.initial_hidden(features)).unsqueeze(1)  # [B, layers=1, H]
        cell = torch.tanh(self.initial_cell(features)).unsqueeze(1)
        return (hidden, cell), ()

    def step(self, previous: Tensor, state: State, context: Context, emitted: Tensor) -> tuple[Tensor, State]:
        hidden, cell = (t.transpose(0, 1).contiguous() for t in state)
        output, (hidden, cell) = self.decoder(self.label_embedding(previous).unsqueeze(1), (hidden, cell))
        logits = self.output(self.dropout(output.squeeze(1))).masked_fill(emitted, float("-inf"))
        return logits, (hidden.transpose(0, 1), cell.transpose(0, 1))
