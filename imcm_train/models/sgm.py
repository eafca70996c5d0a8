"""SGM and SGM+GE (Yang et al. 2018): sequence generation of labels with attention over a BiLSTM."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imcm_train.models.layers import (
    BiLSTMEncoder,
    Context,
    LabelSequenceModel,
    State,
    WordEmbedding,
    check_batch,
    masked_softmax,
    padding_mask,
)


class SGM(LabelSequenceModel):
    """Embedding → stacked BiLSTM encoder → stacked LSTM decoder over label embeddings with Luong
    ("general") attention over the encoder states (padding masked):
    s_t = LSTM(s_{t-1}, g(y_{t-1})); c_t = sum_i softmax_i(h_i · W_a s_t) h_i;
    logits_t = W_o dropout(tanh(W_c [c_t; s_t])), labels already emitted masked to -inf.
    The decoder starts from the encoder's final states, forward and backward concatenated per layer
    (decoder hidden = 2 × encoder_hidden).

    global_embedding=True (SGM+GE): g(y_{t-1}) = (1 - H) ⊙ e + H ⊙ ē, where e is the embedding of
    the label taken at step t-1, ē = sum_i p_{t-1}(i) e_i is the average of all label embeddings
    weighted by the step's (masked) output distribution, and H = sigmoid(W_1 e + W_2 ē) is the
    transform gate (the sigmoid, left implicit in the paper, is the authors' code). At the first
    step p is one-hot on BOS, so ē = e.

    Defaults follow the authors' configuration: embed_dim 256, encoder_hidden 256, 2 layers,
    dropout 0.5, beam_size 5.
    """

    def __init__(
        self,
        vocab_size: int,
        num_labels: int,
        *,
        embed_dim: int = 256,
        encoder_hidden: int = 256,
        num_layers: int = 2,
        dropout: float = 0.5,
        beam_size: int = 5,
        max_labels: int | None = None,
        global_embedding: bool = False,
    ) -> None:
        super().__init__(vocab_size, num_labels, beam_size, max_labels)
        decoder_hidden = 2 * encoder_hidden
        self.num_layers = num_layers
        self.global_embedding = global_embedding
        self.embedding = WordEmbedding(vocab_size, embed_dim, dropout=0.0)
        self.encoder = BiLSTMEncoder(embed_dim, encoder_hidden, num_layers=num_layers, dropout=dropout)
        self.label_embedding = nn.Embedding(num_labels + 2, embed_dim)  # labels, EOS, BOS
        self.decoder = nn.LSTM(
            embed_dim,
            decoder_hidden,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.attention_query = nn.Linear(decoder_hidden, self.encoder.output_dim)
        self.attention_output = nn.Linear(self.encoder.output_dim + decoder_hidden, decoder_hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(decoder_hidden, num_labels + 1)
        if global_embedding:
            self.gate_from_label = nn.Linear(embed_dim, embed_dim)
            self.gate_from_average = nn.Linear(embed_dim, embed_dim)

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[State, Context]:
        check_batch(tokens, lengths)
        memory, (hidden, cell) = self.encoder(self.embedding(tokens), lengths)
        mask = padding_mask(lengths, tokens.size(1), tokens.device)
        state = (self._merge_directions(hidden), self._merge_directions(cell))
        if self.global_embedding:
            state += (
                F.one_hot(
                    torch.full_like(lengths, self.bos_id, device=tokens.device), self.bos_id + 1
                ).float(),
            )
        return state, (memory, mask)

    def _merge_directions(self, final: Tensor) -> Tensor:
        """[layers * 2, B, H] → [B, layers, 2H], forward then backward state of each layer."""
        batch_size = final.size(1)
        by_layer = final.view(self.num_layers, 2, batch_size, -1)
        return torch.cat([by_layer[:, 0], by_layer[:, 1]], dim=-1).transpose(0, 1)

    def _label_input(self, previous: Tensor, previous_probabilities: Tensor | None) -> Tensor:
        label = self.label_embedding(previous)
        if previous_probabilities is None:
            return label
        average = previous_probabilities @ self.label_embedding.weight
        gate = torch.sigmoid(self.gate_from_label(label) + self.gate_from_average(average))
        return (1 - gate) * label + gate * average

    def step(self, previous: Tensor, state: State, context: Context, emitted: Tensor) -> tuple[Tensor, State]:
        memory, mask = context
        hidden, cell = (t.transpose(0, 1).contiguous() for t in state[:2])
        previous_probabilities = state[2] if self.global_embedding else None
        label_input = self._label_input(previous, previous_probabilities).unsqueeze(1)
        output, (hidden, cell) = self.decoder(label_input, (hidden, cell))
        query = output.squeeze(1)
        scores = torch.bmm(memory, self.attention_query(query).unsqueeze(2)).squeeze(2)
        weights = masked_softmax(scores, mask)
        attended = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        combined = torch.tanh(self.attention_output(torch.cat([attended, query], dim=1)))
        logits = self.output(self.dropout(combined)).masked_fill(emitted, float("-inf"))
        new_state: State = (hidden.transpose(0, 1), cell.transpose(0, 1))
        if self.global_embedding:
            probabilities = torch.softmax(logits, dim=-1)
            new_state += (F.pad(probabilities, (0, 1)),)  # BOS is never an output
        return logits, new_state
