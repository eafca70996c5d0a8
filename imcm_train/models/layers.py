"""Layers and decoding shared by the models: embeddings, the BiLSTM encoder, masked softmax,
the `MultiLabelModel` base classes, and greedy / beam decoding of label sequences.

Conventions: token id 0 is padding and 1 is unknown; `tokens` is a LongTensor [B, T] on the model's
device; `lengths` is a CPU LongTensor [B] of real token counts (1 <= length <= T); `targets` is a
0/1 FloatTensor [B, L].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PADDING_ID = 0
UNKNOWN_ID = 1
IGNORE_STEP = -100  # cross-entropy ignore_index for the steps after a document's EOS

State = tuple[Tensor, ...]  # decoder state; every tensor has the batch (or beam) as dimension 0
Context = tuple[Tensor, ...]  # per-document tensors the decoder reads at every step, batch first
StepFunction = Callable[[Tensor, State, Context, Tensor], tuple[Tensor, State]]


def check_batch(tokens: Tensor, lengths: Tensor) -> None:
    """Raise ValueError naming what is wrong with a (tokens, lengths) batch."""
    if tokens.dim() != 2 or tokens.dtype != torch.long:
        raise ValueError(
            f"tokens must be a LongTensor [batch, time], got {tokens.dtype} {tuple(tokens.shape)}"
        )
    if lengths.dim() != 1 or lengths.size(0) != tokens.size(0):
        raise ValueError(f"lengths must have shape [{tokens.size(0)}], got {tuple(lengths.shape)}")
    if tokens.size(0) == 0:
        raise ValueError("empty batch: no documents")
    shortest, longest = int(lengths.min()), int(lengths.max())
    if shortest < 1:
        raise ValueError(
            f"document {int(lengths.argmin())} has length {shortest}: every document needs a token"
        )
    if longest > tokens.size(1):
        raise ValueError(
            f"document {int(lengths.argmax())} has length {longest} > padded width {tokens.size(1)}"
        )


def check_targets(targets: Tensor, batch_size: int, num_labels: int) -> None:
    """Raise ValueError unless targets is a 0/1 matrix [batch_size, num_labels]."""
    if tuple(targets.shape) != (batch_size, num_labels):
        raise ValueError(f"targets must have shape [{batch_size}, {num_labels}], got {tuple(targets.shape)}")
    if not bool(((targets == 0) | (targets == 1)).all()):
        raise ValueError("targets must be a 0/1 indicator matrix")


def padding_mask(lengths: Tensor, width: int, device: torch.device) -> Tensor:
    """BoolTensor [B, width]: True at the real tokens of each document."""
    positions = torch.arange(width, device=device)
    return positions.unsqueeze(0) < lengths.to(device).unsqueeze(1)


def masked_softmax(scores: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax over the positions where mask is True; exactly zero elsewhere.

    A row with no True position gets all zeros (not NaN).
    """
    lowest = torch.finfo(scores.dtype).min
    weights = torch.softmax(scores.masked_fill(~mask, lowest), dim=dim)
    return weights * mask.to(weights.dtype)


class WordEmbedding(nn.Module):
    """Word embedding initialised N(0, 1) with a zero, never-updated padding row (id 0), then dropout."""

    def __init__(self, vocab_size: int, embed_dim: int, dropout: float) -> None:
        super().__init__()
        # nn.Embedding's own initialisation is N(0, 1) with the padding_idx row set to zero.
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PADDING_ID)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.dropout(self.embedding(tokens))


class BiLSTMEncoder(nn.Module):
    """Bidirectional LSTM over a padded batch in which padding never reaches the recurrence.

    Two paths over the same `nn.LSTM` parameters (so a checkpoint loads into either) give the same
    outputs and final states:

    - packed (`pack_padded_sequence`): the default on CUDA, where cuDNN runs packed sequences well;
    - dense: the default on CPU, where packing costs about 3x a plain padded LSTM. Each direction runs
      as a one-directional LSTM over the padded batch, the backward one over each document reversed
      within its own length, so both read the real tokens first and any padding only afterwards;
      outputs at padded positions are then zeroed. Each document's final h is its output at its last
      token; its final c is replayed from the recomputed gates over the few steps where the batch's
      lengths differ (see `cell_after_lengths`).

    `packed=None` chooses by device; True or False forces a path. Weights keep PyTorch's default
    U(-sqrt(k), sqrt(k)) initialisation, k = 1 / hidden_size.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        packed: bool | None = None,
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_dim,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        self.output_dim = 2 * hidden_size
        self.packed = packed

    def forward(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Returns outputs [B, T, 2H] (zero at padding) and the final (h, c), each [layers * 2, B, H]."""
        packed = embedded.is_cuda if self.packed is None else self.packed
        if packed:
            return self._packed_forward(embedded, lengths)
        return self._dense_forward(embedded, lengths)

    def _packed_forward(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_outputs, final_state = self.lstm(packed)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
        return outputs, final_state

    def _dense_forward(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        lengths = lengths.to(embedded.device)
        real = padding_mask(lengths, embedded.size(1), embedded.device).unsqueeze(-1)
        layer_input, final_h, final_c = embedded, [], []
        for layer in range(self.lstm.num_layers):
            if layer > 0:
                layer_input = F.dropout(layer_input, self.lstm.dropout, self.training)
            forward_outputs, *forward_final = self._run_direction(layer_input, lengths, layer, backward=False)
            reversed_input = reverse_within_lengths(layer_input, lengths)
            reversed_outputs, *backward_final = self._run_direction(reversed_input, lengths, layer, backward=True)
            backward_outputs = reverse_within_lengths(reversed_outputs, lengths)
            layer_input = torch.cat([forward_outputs, backward_outputs], dim=-1) * real
            final_h += [forward_final[0], backward_final[0]]
            final_c += [forward_final[1], backward_final[1]]
        return layer_input, (torch.stack(final_h), torch.stack(final_c))

    def _run_direction(
        self, inputs: Tensor, lengths: Tensor, layer: int, backward: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One direction of one layer from the zero state over inputs whose real steps come first.

        Returns outputs [B, T, H] (unspecified after each row's length) and each row's (h, c) after its
        last real step, each [B, H].
        """
        suffix = "_reverse" if backward else ""
        weights = tuple(getattr(self.lstm, f"{name}_l{layer}{suffix}") for name in _LSTM_WEIGHT_NAMES)
        shortest, longest = int(lengths.min()), int(lengths.max())
        zeros = inputs.new_zeros(1, inputs.size(0), self.lstm.hidden_size)
        # Up to `shortest` every row is real, so the state there is every row's own.
        outputs, hidden, cell = _lstm(inputs[:, :shortest], (zeros, zeros), weights, self.training)
        if longest > shortest:
            tail, _, _ = _lstm(inputs[:, shortest:longest], (hidden, cell), weights, self.training)
            outputs = torch.cat([outputs, tail], dim=1)
        rows = torch.arange(inputs.size(0), device=inputs.device)
        final_h = outputs[rows, lengths - 1]
        final_c = cell_after_lengths(inputs, outputs, cell[0], lengths, weights, start=shortest)
        return F.pad(outputs, (0, 0, 0, inputs.size(1) - longest)), final_h, final_c


_LSTM_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # nn.LSTM's order per layer/direction


def _lstm(
    inputs: Tensor, state: tuple[Tensor, Tensor], weights: tuple[Tensor, ...], training: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """One layer, one direction, batch first: the functional form `nn.LSTM` itself runs.

    Returns outputs [B, T, H] and the (h, c) after the last step, each [1, B, H].
    """
    return torch.lstm(inputs, state, weights, True, 1, 0.0, training, False, True)


def cell_after_lengths(
    inputs: Tensor, outputs: Tensor, cell: Tensor, lengths: Tensor, weights: tuple[Tensor, ...], start: int
) -> Tensor:
    """Each row's LSTM cell state [B, H] after its own last real step.

    `outputs` [B, T, H] are the LSTM's hidden states h_t over `inputs` [B, T, D] and `cell` [B, H] its
    cell state after step start - 1 (start >= 1). From there the update c_t = f_t * c_(t-1) + i_t * g_t
    is replayed, its gates recomputed from x_t and h_(t-1) as `nn.LSTM` computes them, holding each
    row's cell once its length is reached. Gradients flow through the gates as through the LSTM.
    """
    weight_ih, weight_hh, bias_ih, bias_hh = weights
    longest = int(lengths.max())
    gates = F.linear(inputs[:, start:longest], weight_ih, bias_ih) + F.linear(
        outputs[:, start - 1 : longest - 1], weight_hh, bias_hh
    )
    input_gate, forget_gate, cell_gate, _ = gates.chunk(4, dim=-1)  # nn.LSTM's gate order: i, f, g, o
    # Unbound once: indexing one step at a time would cost a full-size gradient per step in backward.
    steps = zip(
        input_gate.sigmoid().unbind(1), forget_gate.sigmoid().unbind(1), cell_gate.tanh().unbind(1), strict=True
    )
    for step, (input_t, forget_t, candidate_t) in enumerate(steps, start=start):
        cell = torch.where((lengths > step).unsqueeze(1), forget_t * cell + input_t * candidate_t, cell)
    return cell


def reverse_within_lengths(sequences: Tensor, lengths: Tensor) -> Tensor:
    """[B, T, ...] → each row's first lengths[b] steps in reverse order, the steps after them in place.

    Applying it twice gives back the input.
    """
    positions = torch.arange(sequences.size(1), device=sequences.device).unsqueeze(0)
    last = lengths.to(sequences.device).unsqueeze(1) - 1
    index = torch.where(positions <= last, last - positions, positions)
    rows = torch.arange(sequences.size(0), device=sequences.device).unsqueeze(1)
    return sequences[rows, index]


class MultiLabelModel(nn.Module):
    """Base of every neural model.

    Threshold models (uses_threshold=True) implement `logits`; the loss is binary cross-entropy with
    logits averaged over all N * L entries, and `predict_scores` returns sigmoid probabilities.
    """

    uses_threshold: bool = True

    def __init__(self, vocab_size: int, num_labels: int) -> None:
        super().__init__()
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (0 = padding, 1 = unknown), got {vocab_size}")
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        self.vocab_size = vocab_size
        self.num_labels = num_labels

    def forward(self, tokens: Tensor, lengths: Tensor, targets: Tensor) -> Tensor:
        """The training loss, so that wrappers that hook `__call__` (DDP, torch.compile) see it."""
        return self.loss(tokens, lengths, targets)

    def logits(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define logits()")

    def loss(self, tokens: Tensor, lengths: Tensor, targets: Tensor) -> Tensor:
        check_targets(targets, tokens.size(0), self.num_labels)
        return F.binary_cross_entropy_with_logits(self.logits(tokens, lengths), targets.float())

    def predict_scores(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.sigmoid(self.logits(tokens, lengths)).float()


class LabelSequenceModel(MultiLabelModel):
    """Base of the seq2seq models (CNN-RNN, SGM): a decoder emits label ids, then EOS.

    Output ids: 0 .. L-1 are labels, L is EOS; decoder inputs also use L + 1 as BOS. Labels are
    emitted in descending training frequency, i.e. ascending label id. At every step, in training
    (teacher forcing) and in decoding alike, labels already emitted are masked out, so no label is
    emitted twice. The loss is cross-entropy averaged over all real steps (EOS included).
    `predict_scores` returns the decoded label sets as a 0/1 float matrix.

    Subclasses implement `encode` (documents → initial decoder state and per-document context)
    and `step` (previous output ids → next-step logits with the emitted labels masked).
    """

    uses_threshold = False

    def __init__(self, vocab_size: int, num_labels: int, beam_size: int, max_labels: int | None) -> None:
        super().__init__(vocab_size, num_labels)
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        if max_labels is not None and max_labels < 1:
            raise ValueError(f"max_labels must be >= 1 or None, got {max_labels}")
        self.beam_size = beam_size
        self.max_labels = num_labels if max_labels is None else min(max_labels, num_labels)
        self.eos_id = num_labels
        self.bos_id = num_labels + 1

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[State, Context]:
        raise NotImplementedError

    def step(self, previous: Tensor, state: State, context: Context, emitted: Tensor) -> tuple[Tensor, State]:
        """previous: LongTensor [N]; emitted: BoolTensor [N, L + 1] → logits [N, L + 1] (emitted = -inf)."""
        raise NotImplementedError

    def loss(self, tokens: Tensor, lengths: Tensor, targets: Tensor) -> Tensor:
        check_targets(targets, tokens.size(0), self.num_labels)
        inputs, gold = label_sequences(targets > 0.5, self.eos_id, self.bos_id)
        state, context = self.encode(tokens, lengths)
        logits = teacher_forced_logits(self.step, state, context, inputs, self.eos_id)
        return F.cross_entropy(logits.flatten(0, 1), gold.flatten(), ignore_index=IGNORE_STEP)

    def decode_sequences(self, tokens: Tensor, lengths: Tensor, beam_size: int | None = None) -> Tensor:
        """LongTensor [B, S]: each document's emitted ids, EOS-padded (greedy when beam_size is 1)."""
        beam_size = self.beam_size if beam_size is None else beam_size
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        max_steps = self.max_labels + 1
        with torch.no_grad():
            state, context = self.encode(tokens, lengths)
            if beam_size == 1:
                return greedy_decode(self.step, state, context, self.bos_id, self.eos_id, max_steps)
            return beam_search(self.step, state, context, self.bos_id, self.eos_id, max_steps, beam_size)

    def decode(self, tokens: Tensor, lengths: Tensor, beam_size: int | None = None) -> Tensor:
        """BoolTensor [B, L]: the decoded label set of each document."""
        return sequences_to_indicator(self.decode_sequences(tokens, lengths, beam_size), self.num_labels)

    def predict_scores(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.decode(tokens, lengths).float()


def sequences_to_indicator(sequences: Tensor, num_labels: int) -> Tensor:
    """LongTensor [B, S] of output ids (EOS = num_labels) → BoolTensor [B, num_labels]."""
    indicator = torch.zeros(sequences.size(0), num_labels + 1, dtype=torch.bool, device=sequences.device)
    return indicator.scatter(1, sequences, True)[:, :num_labels]


def label_sequences(positives: Tensor, eos_id: int, bos_id: int) -> tuple[Tensor, Tensor]:
    """Teacher-forcing decoder inputs and gold outputs, each LongTensor [B, S], S = most labels + 1.

    gold row: the document's label ids ascending, then EOS, then IGNORE_STEP;
    input row: BOS followed by the gold row shifted right (EOS where gold is ignored).
    """
    batch_size = positives.size(0)
    counts = positives.sum(dim=1)
    steps = int(counts.max()) + 1
    # A stable sort of "is negative" puts each row's label ids first, in ascending order.
    label_ids = torch.sort((~positives).to(torch.uint8), dim=1, stable=True).indices[:, : steps - 1]
    eos_column = torch.full((batch_size, 1), eos_id, dtype=torch.long, device=positives.device)
    position = torch.arange(steps, device=positives.device).unsqueeze(0)
    emitted = torch.where(position < counts.unsqueeze(1), torch.cat([label_ids, eos_column], dim=1), eos_id)
    gold = emitted.masked_fill(position > counts.unsqueeze(1), IGNORE_STEP)
    bos_column = torch.full_like(eos_column, bos_id)
    inputs = torch.cat([bos_column, emitted[:, :-1]], dim=1)
    return inputs, gold


def mark_emitted(emitted: Tensor, labels: Tensor, eos_id: int) -> Tensor:
    """Add labels [N] to the emitted mask [N, L + 1]; EOS (and BOS, out of range) is never masked."""
    is_label = labels < eos_id
    index = torch.where(is_label, labels, 0).unsqueeze(1)
    return emitted.scatter(1, index, is_label.unsqueeze(1) | emitted.gather(1, index))


def teacher_forced_logits(
    step: StepFunction, state: State, context: Context, inputs: Tensor, eos_id: int
) -> Tensor:
    """Run the decoder on the gold inputs [B, S] (loop over steps, not documents) → logits [B, S, L + 1]."""
    batch_size, steps = inputs.shape
    emitted = torch.zeros(batch_size, eos_id + 1, dtype=torch.bool, device=inputs.device)
    all_logits = []
    for t in range(steps):
        emitted = mark_emitted(emitted, inputs[:, t], eos_id)
        logits, state = step(inputs[:, t], state, context, emitted)
        all_logits.append(logits)
    return torch.stack(all_logits, dim=1)


def greedy_decode(
    step: StepFunction, state: State, context: Context, bos_id: int, eos_id: int, max_steps: int
) -> Tensor:
    """Emit the most probable id at each step until EOS or max_steps → LongTensor [B, S], EOS-padded."""
    batch_size = state[0].size(0)
    device = state[0].device
    previous = torch.full((batch_size,), bos_id, dtype=torch.long, device=device)
    emitted = torch.zeros(batch_size, eos_id + 1, dtype=torch.bool, device=device)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    history = []
    for _ in range(max_steps):
        logits, state = step(previous, state, context, emitted)
        previous = torch.where(finished, eos_id, logits.argmax(dim=-1))
        history.append(previous)
        emitted = mark_emitted(emitted, previous, eos_id)
        finished = finished | (previous == eos_id)
        if bool(finished.all()):
            break
    return torch.stack(history, dim=1)


def beam_search(
    step: StepFunction,
    state: State,
    context: Context,
    bos_id: int,
    eos_id: int,
    max_steps: int,
    beam_size: int,
) -> Tensor:
    """Batched beam search → LongTensor [B, S]: each document's best beam, EOS-padded.

    A beam's score is the sum of its log-probabilities (no length normalisation). A finished beam
    is carried over unchanged (it may only "emit" EOS at log-probability 0). With beam_size 1 this
    is exactly greedy decoding.
    """
    batch_size = state[0].size(0)
    device = state[0].device
    vocab = eos_id + 1
    rows = batch_size * beam_size
    state = tuple(t.repeat_interleave(beam_size, dim=0) for t in state)
    context = tuple(t.repeat_interleave(beam_size, dim=0) for t in context)
    previous = torch.full((rows,), bos_id, dtype=torch.long, device=device)
    emitted = torch.zeros(rows, vocab, dtype=torch.bool, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    history = torch.zeros(rows, 0, dtype=torch.long, device=device)
    # Only the first beam of each document is alive at the start, so the beams do not start as copies.
    scores = torch.full((batch_size, beam_size), float("-inf"), device=device)
    scores[:, 0] = 0.0
    only_eos = torch.full((vocab,), float("-inf"), device=device)
    only_eos[eos_id] = 0.0
    first_row = (torch.arange(batch_size, device=device) * beam_size).unsqueeze(1)
    for _ in range(max_steps):
        logits, state = step(previous, state, context, emitted)
        log_probs = torch.where(finished.unsqueeze(1), only_eos, torch.log_softmax(logits.float(), dim=-1))
        candidates = (scores.reshape(rows, 1) + log_probs).reshape(batch_size, beam_size * vocab)
        scores, best = candidates.topk(beam_size, dim=1)
        source = (first_row + torch.div(best, vocab, rounding_mode="floor")).reshape(rows)
        previous = (best % vocab).reshape(rows)
        state = tuple(t.index_select(0, source) for t in state)
        history = torch.cat([history.index_select(0, source), previous.unsqueeze(1)], dim=1)
        emitted = mark_emitted(emitted.index_select(0, source), previous, eos_id)
        dead = torch.isneginf(scores).reshape(rows)
        finished = finished.index_select(0, source) | (previous == eos_id) | dead
        if bool(finished.all()):
            break
    best_beam = scores.argmax(dim=1)
    return history.reshape(batch_size, beam_size, -1)[torch.arange(batch_size, device=device), best_beam]
