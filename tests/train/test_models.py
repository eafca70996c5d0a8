"""The neural models: shapes, padding invariance, the alternating heads, decoding, and overfitting a
tiny batch of real Douban documents."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence as pack

from imcm_build.text import tokenize
from imcm_train.models import MODEL_NAMES, build_model, default_hparams
from imcm_train.models.altxml import AlternatingAttention
from imcm_train.models.layers import (
    BiLSTMEncoder,
    beam_search,
    greedy_decode,
    label_sequences,
    masked_softmax,
    reverse_within_lengths,
    teacher_forced_logits,
)
from tests.conftest import shared_path

SMALL = {
    "altxml": {"embed_dim": 16, "hidden_size": 12},
    "rnn_att": {"embed_dim": 16, "hidden_size": 12},
    "cnn": {"embed_dim": 16, "num_filters": 8},
    "cnn_rnn": {"embed_dim": 16, "num_filters": 8, "label_embed_dim": 8, "decoder_hidden": 16},
    "sgm": {"embed_dim": 16, "encoder_hidden": 8, "num_layers": 1, "beam_size": 3},
    "sgm_ge": {"embed_dim": 16, "encoder_hidden": 8, "num_layers": 1, "beam_size": 3},
}
THRESHOLD_MODELS = ("altxml", "rnn_att", "cnn")
SEQUENCE_MODELS = ("cnn_rnn", "sgm", "sgm_ge")
VOCAB, LABELS = 40, 5


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run faster on one thread than on a shared, busy pair of cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_model(name: str, **overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, VOCAB, LABELS, **{**SMALL[name], **overrides})


def padded_batch(documents: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(doc) for doc in documents])
    tokens = torch.zeros(len(documents), int(lengths.max()), dtype=torch.long)
    for row, doc in enumerate(documents):
        tokens[row, : len(doc)] = torch.tensor(doc)
    return tokens, lengths


def random_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    documents = [torch.randint(2, VOCAB, (n,), generator=generator).tolist() for n in (9, 1, 4, 2)]
    targets = torch.tensor(
        [[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 1]], dtype=torch.float
    )
    return *padded_batch(documents), targets


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_finite_loss_and_backward(name: str) -> None:
    model = small_model(name)
    tokens, lengths, targets = random_batch()
    loss = model.loss(tokens, lengths, targets)
    assert loss.dim() == 0 and math.isfinite(loss.item())
    loss.backward()
    gradients = [p.grad for p in model.parameters() if p.grad is not None]
    assert gradients and all(torch.isfinite(g).all() for g in gradients)
    model.eval()
    scores = model.predict_scores(tokens, lengths)
    assert scores.shape == (4, LABELS) and scores.dtype == torch.float
    if model.uses_threshold:
        assert ((scores > 0) & (scores < 1)).all()
    else:
        assert set(scores.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_length_one_documents_give_no_nan(name: str) -> None:
    model = small_model(name)
    tokens, lengths = padded_batch([[7], [3, 4, 5, 6, 8, 9]])
    loss = model.loss(tokens, lengths, torch.tensor([[1.0, 0, 0, 0, 1], [0, 1, 0, 0, 0]]))
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    assert torch.isfinite(model.predict_scores(tokens[:1, :1], lengths[:1])).all()


@pytest.mark.parametrize("name", THRESHOLD_MODELS)
def test_padding_never_changes_the_output(name: str) -> None:
    model = small_model(name).eval()
    short, long = [5, 9, 2, 17, 3], list(range(2, 32))
    alone = model.predict_scores(*padded_batch([short]))
    in_batch = model.predict_scores(*padded_batch([long, short]))
    torch.testing.assert_close(in_batch[1:], alone, rtol=0, atol=1e-5)
    # Unknown (non-padding) tokens after the end would change it, so the check above has teeth.
    tokens, lengths = padded_batch([short + [1] * 5])
    assert not torch.allclose(model.predict_scores(tokens, lengths), alone, atol=1e-5)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_padding_never_changes_the_decoder_distributions(name: str) -> None:
    model = small_model(name).eval()
    short, long = [5, 9, 2, 17, 3], list(range(2, 32))
    gold_inputs, _ = label_sequences(
        torch.tensor([[True, False, True, False, True]] * 2), model.eos_id, model.bos_id
    )

    def decoder_logits(documents: list[list[int]]) -> torch.Tensor:
        state, context = model.encode(*padded_batch(documents))
        return teacher_forced_logits(model.step, state, context, gold_inputs[: len(documents)], model.eos_id)

    with torch.no_grad():
        torch.testing.assert_close(
            decoder_logits([long, short])[1:], decoder_logits([short]), rtol=0, atol=1e-5
        )


def test_cnn_pads_documents_shorter_than_its_widest_filter() -> None:
    model = small_model("cnn").eval()
    two_tokens = model.predict_scores(*padded_batch([[4, 6]]))
    next_to_long_document = model.predict_scores(*padded_batch([[4, 6], list(range(2, 20))]))[:1]
    torch.testing.assert_close(next_to_long_document, two_tokens, rtol=0, atol=1e-5)


def test_altxml_attention_weights_ignore_padding() -> None:
    model = small_model("altxml").eval()
    short, long = [5, 9, 2, 17, 3], list(range(2, 12))
    alone = model.attention_weights(*padded_batch([short]))
    in_batch = model.attention_weights(*padded_batch([long, short]))
    for head_alone, head_in_batch in zip(alone, in_batch, strict=True):
        torch.testing.assert_close(head_in_batch[1:, :5], head_alone, rtol=0, atol=1e-6)
        assert (head_in_batch[1, 5:] == 0).all()


def test_alternating_heads_each_see_only_their_own_positions() -> None:
    torch.manual_seed(0)
    attention = AlternatingAttention(hidden_dim=6)
    hidden = torch.randn(2, 7, 6)
    mask = torch.arange(7).unsqueeze(0) < torch.tensor([[7], [4]])
    even, odd = attention.weights(hidden, mask)
    is_even = torch.arange(7) % 2 == 0
    assert (even[:, ~is_even] == 0).all() and (odd[:, is_even] == 0).all()
    assert (even[~mask] == 0).all() and (odd[~mask] == 0).all()
    torch.testing.assert_close(even.sum(1), torch.ones(2))
    torch.testing.assert_close(odd.sum(1), torch.ones(2))

    odd_perturbed = hidden.clone()
    odd_perturbed[:, 1::2] += torch.randn(2, 3, 6)
    even_after, odd_after = attention.weights(odd_perturbed, mask)
    assert torch.equal(even_after, even) and not torch.allclose(odd_after, odd)

    even_perturbed = hidden.clone()
    even_perturbed[:, 0::2] += torch.randn(2, 4, 6)
    even_after, odd_after = attention.weights(even_perturbed, mask)
    assert torch.equal(odd_after, odd) and not torch.allclose(even_after, even)

    # The document vector is the sum of both heads' weighted states (the ReLU reading).
    expected = torch.einsum("bt,btd->bd", even + odd, hidden)
    torch.testing.assert_close(attention(hidden, mask), expected)


def test_altxml_model_exposes_the_alternating_weights() -> None:
    model = small_model("altxml").eval()
    tokens, lengths = padded_batch([list(range(2, 11)), [4, 5, 6, 7], [8]])
    even, odd = model.attention_weights(tokens, lengths)
    real = torch.arange(9).unsqueeze(0) < lengths.unsqueeze(1)
    is_even = torch.arange(9) % 2 == 0
    assert (even[~(real & is_even)] == 0).all() and (odd[~(real & ~is_even)] == 0).all()
    torch.testing.assert_close(even.sum(1), torch.ones(3))
    torch.testing.assert_close(odd.sum(1), torch.tensor([1.0, 1.0, 0.0]))  # a 1-token doc has no odd position
    assert even[2, 0] == 1


def test_reverse_within_lengths_keeps_padding_in_place() -> None:
    sequences = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0], [6, 0, 0, 0], [7, 8, 9, 10]]).unsqueeze(-1)
    lengths = torch.tensor([3, 2, 1, 4])
    reversed_rows = reverse_within_lengths(sequences, lengths)
    assert reversed_rows.squeeze(-1).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0], [6, 0, 0, 0], [10, 9, 8, 7]]
    assert torch.equal(reverse_within_lengths(reversed_rows, lengths), sequences)


def _encoder_run(
    encoder: BiLSTMEncoder, inputs: torch.Tensor, lengths: torch.Tensor, packed: bool
) -> tuple[torch.Tensor, ...]:
    """Outputs, final h, final c, and the gradients of a loss reading all three (inputs first)."""
    encoder.packed = packed
    encoder.zero_grad()
    inputs = inputs.clone().requires_grad_()
    outputs, (hidden, cell) = encoder(inputs, lengths)
    weights = torch.linspace(-1, 1, outputs.size(-1))
    (outputs.tanh() @ weights).sum().add(hidden.pow(2).sum()).add(cell.sin().sum()).backward()
    return outputs, hidden, cell, inputs.grad, *(p.grad.clone() for p in encoder.parameters())


@pytest.mark.parametrize(("num_layers", "training"), [(1, False), (2, False), (2, True)])
def test_dense_and_packed_encoders_agree_in_outputs_final_states_and_gradients(
    num_layers: int, training: bool
) -> None:
    torch.manual_seed(0)
    # Dropout between layers draws different masks on the two paths, so training runs without it.
    encoder = BiLSTMEncoder(10, 6, num_layers=num_layers, dropout=0.0 if training else 0.5).train(training)
    generator = torch.Generator().manual_seed(5)
    # Random lengths with repeats, several one-token documents, and padding past the longest document.
    lengths = torch.cat([torch.tensor([1, 1, 17]), torch.randint(1, 18, (13,), generator=generator)])
    inputs = torch.randn(16, 20, 10, generator=generator)
    dense = _encoder_run(encoder, inputs, lengths, packed=False)
    packed = _encoder_run(encoder, inputs, lengths, packed=True)
    for name, got, expected in zip(("outputs", "final h", "final c"), dense[:3], packed[:3], strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
    assert (dense[0][padding_columns(lengths, 20)] == 0).all()
    for got, expected in zip(dense[3:], packed[3:], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def padding_columns(lengths: torch.Tensor, width: int) -> torch.Tensor:
    return torch.arange(width).unsqueeze(0) >= lengths.unsqueeze(1)


@pytest.mark.parametrize("packed", [False, True])
def test_encoder_output_of_a_document_does_not_depend_on_its_batch(packed: bool) -> None:
    torch.manual_seed(0)
    encoder = BiLSTMEncoder(8, 5, num_layers=2, packed=packed).eval()
    short, long = torch.randn(1, 4, 8), torch.randn(1, 9, 8)
    alone_outputs, (alone_h, alone_c) = encoder(short, torch.tensor([4]))
    batch = torch.cat([long, torch.nn.functional.pad(short, (0, 0, 0, 5))])
    outputs, (hidden, cell) = encoder(batch, torch.tensor([9, 4]))
    torch.testing.assert_close(outputs[1:, :4], alone_outputs, rtol=0, atol=1e-6)
    torch.testing.assert_close(hidden[:, 1:], alone_h, rtol=0, atol=1e-6)
    torch.testing.assert_close(cell[:, 1:], alone_c, rtol=0, atol=1e-6)
    assert (outputs[1, 4:] == 0).all()


def test_encoder_is_dense_on_cpu_and_keeps_the_lstm_parameter_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    import imcm_train.models.layers as layers

    packings = []
    monkeypatch.setattr(
        layers, "pack_padded_sequence", lambda *args, **kwargs: packings.append(1) or pack(*args, **kwargs)
    )
    encoder = BiLSTMEncoder(8, 5, num_layers=2)
    inputs, lengths = torch.randn(2, 3, 8), torch.tensor([3, 2])
    encoder(inputs, lengths)
    assert packings == []
    encoder.packed = True
    encoder(inputs, lengths)
    assert packings == [1]
    plain = torch.nn.LSTM(8, 5, num_layers=2, bidirectional=True, batch_first=True)
    layout = {f"lstm.{name}": tuple(value.shape) for name, value in plain.state_dict().items()}
    assert {name: tuple(value.shape) for name, value in encoder.state_dict().items()} == layout


@pytest.mark.parametrize("name", ["altxml", "sgm"])
def test_a_checkpoint_predicts_the_same_on_both_encoder_paths(name: str) -> None:
    """AltXML reads the encoder outputs; SGM (two layers) also starts its decoder from the final states."""
    hparams = {"num_layers": 2} if name == "sgm" else {}
    source = small_model(name, **hparams)
    dense, packed = small_model(name, **hparams).eval(), small_model(name, **hparams).eval()
    torch.manual_seed(9)
    with torch.no_grad():  # away from the fresh weights, so loading the checkpoint is what matters
        for parameter in source.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    dense.load_state_dict(source.state_dict())
    packed.load_state_dict(source.state_dict())
    dense.encoder.packed, packed.encoder.packed = False, True
    generator = torch.Generator().manual_seed(4)
    documents = [torch.randint(2, VOCAB, (n,), generator=generator).tolist() for n in (1, 12, 5, 5, 2, 30, 9)]
    tokens, lengths = padded_batch(documents)
    targets = (torch.rand(len(documents), LABELS, generator=generator) > 0.6).float()
    with torch.no_grad():
        torch.testing.assert_close(dense.loss(tokens, lengths, targets), packed.loss(tokens, lengths, targets))
        if name == "sgm":
            dense_state, _ = dense.encode(tokens, lengths)
            packed_state, _ = packed.encode(tokens, lengths)
            torch.testing.assert_close(dense_state, packed_state, rtol=0, atol=1e-5)
    torch.testing.assert_close(dense.predict_scores(tokens, lengths), packed.predict_scores(tokens, lengths))


def test_masked_softmax_of_a_fully_masked_row_is_zero() -> None:
    weights = masked_softmax(torch.randn(2, 3), torch.tensor([[True, False, True], [False, False, False]]))
    assert weights[0, 1] == 0 and math.isclose(weights[0].sum().item(), 1, rel_tol=1e-6)
    assert (weights[1] == 0).all()


def test_label_sequences_are_ascending_ids_then_eos() -> None:
    eos, bos, ignore = 4, 5, -100
    positives = torch.tensor([[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    inputs, gold = label_sequences(positives, eos, bos)
    assert gold.tolist() == [[1, 3, eos], [eos, ignore, ignore], [0, eos, ignore]]
    assert inputs.tolist() == [[bos, 1, 3], [bos, eos, eos], [bos, 0, eos]]


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_decoding_never_emits_a_label_twice(name: str) -> None:
    model = small_model(name, max_labels=LABELS).eval()
    with torch.no_grad():  # make label 0 overwhelmingly likely and EOS nearly impossible at every step
        model.output.bias.zero_()
        model.output.bias[0] = 50.0
        model.output.bias[model.eos_id] = -50.0
    tokens, lengths = padded_batch([[3, 4, 5], [6], list(range(2, 14))])
    for beam_size in (1, 3):
        sequences = model.decode_sequences(tokens, lengths, beam_size=beam_size)
        for row in sequences.tolist():
            labels = [label for label in row if label != model.eos_id]
            # Without the mask, label 0 would repeat; with it, every label comes once, then EOS.
            assert sorted(labels) == list(range(LABELS)) and row[0] == 0
            assert row[LABELS] == model.eos_id


@pytest.mark.parametrize("name", ["sgm", "sgm_ge"])
def test_beam_search_with_beam_one_equals_greedy(name: str) -> None:
    model = small_model(name).eval()
    generator = torch.Generator().manual_seed(3)
    documents = [torch.randint(2, VOCAB, (n,), generator=generator).tolist() for n in (3, 8, 1, 5, 12, 2)]
    tokens, lengths = padded_batch(documents)
    state, context = model.encode(tokens, lengths)
    greedy = greedy_decode(model.step, state, context, model.bos_id, model.eos_id, LABELS + 1)
    beam_one = beam_search(model.step, state, context, model.bos_id, model.eos_id, LABELS + 1, beam_size=1)
    assert torch.equal(beam_one, greedy)


def test_global_embedding_mixes_in_the_previous_distribution() -> None:
    with_ge = small_model("sgm_ge").eval()
    plain = small_model("sgm").eval()
    plain.load_state_dict(with_ge.state_dict(), strict=False)  # same weights, no gate
    tokens, lengths = padded_batch([[3, 4, 5], [6, 7]])
    state, context = with_ge.encode(tokens, lengths)
    assert state[2].argmax(dim=1).tolist() == [with_ge.bos_id] * 2  # step 1 averages over BOS alone
    previous, emitted = torch.tensor([0, 2]), torch.zeros(2, LABELS + 1, dtype=torch.bool)
    on_previous = torch.nn.functional.one_hot(previous, LABELS + 2).float()
    spread = torch.cat([torch.full((2, LABELS + 1), 1 / (LABELS + 1)), torch.zeros(2, 1)], dim=1)
    with torch.no_grad():
        logits_on_previous, _ = with_ge.step(previous, (*state[:2], on_previous), context, emitted)
        logits_spread, new_state = with_ge.step(previous, (*state[:2], spread), context, emitted)
        logits_plain, _ = plain.step(previous, state[:2], context, emitted)
    # A distribution concentrated on the label taken leaves nothing to mix: ē = e, the plain SGM step.
    torch.testing.assert_close(logits_on_previous, logits_plain)
    assert not torch.allclose(logits_spread, logits_plain, atol=1e-4)
    torch.testing.assert_close(new_state[2][:, :-1], torch.softmax(logits_spread, dim=1))


def test_beam_search_finds_the_sequence_greedy_misses() -> None:
    # Labels 0, 1; EOS = 2; BOS = 3. P(0 | BOS) = .6, P(1 | BOS) = .4; after 0: P(1) = .55, P(EOS) = .45;
    # after 1: P(EOS) = 1. Greedy: 0, 1, EOS (p = .33). Best: 1, EOS (p = .4).
    eos, bos, tiny = 2, 3, 1e-9
    table = torch.tensor([[tiny, 0.55, 0.45], [tiny, tiny, 1.0], [tiny, tiny, 1.0], [0.6, 0.4, tiny]]).log()

    def step(previous, state, context, emitted):  # noqa: ANN001, ANN202 - the decoder protocol
        return table[previous].masked_fill(emitted, float("-inf")), state

    state = (torch.zeros(2, 1),)
    greedy = greedy_decode(step, state, (), bos, eos, max_steps=3)
    beam = beam_search(step, state, (), bos, eos, max_steps=3, beam_size=2)
    assert greedy.tolist() == [[0, 1, eos]] * 2
    assert beam[:, :2].tolist() == [[1, eos]] * 2


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_same_seed_same_model_and_loss(name: str) -> None:
    tokens, lengths, targets = random_batch()
    losses = []
    for _ in range(2):
        model = small_model(name)  # train mode: dropout active
        torch.manual_seed(7)
        losses.append(model.loss(tokens, lengths, targets).item())
    assert losses[0] == losses[1]
    torch.manual_seed(7)
    assert model(tokens, lengths, targets).item() == losses[0]  # calling the model = its loss


def test_bad_input_is_rejected_with_a_reason() -> None:
    model = small_model("altxml")
    tokens, lengths, targets = random_batch()
    with pytest.raises(ValueError, match="length 0"):
        model.loss(tokens, torch.tensor([9, 0, 4, 2]), targets)
    with pytest.raises(ValueError, match="padded width"):
        model.loss(tokens, torch.tensor([10, 1, 4, 2]), targets)
    with pytest.raises(ValueError, match="targets must have shape"):
        model.loss(tokens, lengths, targets[:, :3])
    with pytest.raises(ValueError, match="0/1"):
        small_model("sgm").loss(tokens, lengths, targets * 2)
    with pytest.raises(ValueError, match="unknown model 'bert'"):
        build_model("bert", VOCAB, LABELS)
    with pytest.raises(ValueError, match="no hyper-parameter.*global_embedding"):
        build_model("sgm_ge", VOCAB, LABELS, global_embedding=False)


def test_paper_defaults() -> None:
    assert default_hparams("altxml") == {"embed_dim": 256, "hidden_size": 100, "dropout": 0.5}
    model = build_model("altxml", 1000, 10)
    assert model.encoder.lstm.hidden_size == 100 and model.encoder.lstm.num_layers == 1
    assert model.embedding.embedding.weight.shape == (1000, 256)
    assert (model.embedding.embedding.weight[0] == 0).all()
    assert (
        build_model("sgm_ge", 1000, 10).global_embedding and not build_model("sgm", 1000, 10).global_embedding
    )
    assert build_model("sgm", 1000, 10).beam_size == 5


@dataclass
class TinyCorpus:
    tokens: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor
    vocab_size: int


@pytest.fixture(scope="module")
def real_batch() -> TinyCorpus:
    """16 real Douban summaries, first 40 jieba tokens each, labelled with the 8 commonest tags of
    the first 200 records (ids in descending frequency)."""
    path = shared_path("douban-public/records.jsonl")
    with path.open(encoding="utf-8") as lines:
        records = [json.loads(line) for line, _ in zip(lines, range(200), strict=False)]
    common = [tag for tag, _ in Counter(t for r in records for t in r["tags"]).most_common(8)]
    chosen = [r for r in records if 1 <= len(set(r["tags"]) & set(common)) <= 4 and len(r["summary"]) >= 40][
        :16
    ]
    documents = [tokenize(r["summary"])[:40] for r in chosen]
    vocabulary = {
        word: index for index, word in enumerate(sorted({w for d in documents for w in d}), start=2)
    }
    tokens, lengths = padded_batch([[vocabulary[w] for w in d] for d in documents])
    targets = torch.tensor([[float(tag in r["tags"]) for tag in common] for r in chosen])
    assert len(chosen) == 16 and lengths.min() < lengths.max()  # padding is exercised
    return TinyCorpus(tokens, lengths, targets, len(vocabulary) + 2)


OVERFIT = {
    "altxml": {"embed_dim": 32, "hidden_size": 32},
    "rnn_att": {"embed_dim": 32, "hidden_size": 32},
    "cnn": {"embed_dim": 32, "num_filters": 32},
    "cnn_rnn": {"embed_dim": 32, "num_filters": 32, "label_embed_dim": 16, "decoder_hidden": 32},
    "sgm": {"embed_dim": 32, "encoder_hidden": 16, "num_layers": 1, "beam_size": 3},
    "sgm_ge": {"embed_dim": 32, "encoder_hidden": 16, "num_layers": 1, "beam_size": 3},
}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_overfits_sixteen_real_documents(name: str, real_batch: TinyCorpus) -> None:
    torch.manual_seed(0)
    labels = real_batch.targets.size(1)
    model = build_model(name, real_batch.vocab_size, labels, dropout=0.0, **OVERFIT[name])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    batch = (real_batch.tokens, real_batch.lengths)
    first_loss = model.loss(*batch, real_batch.targets).item()
    for step in range(1, 301):
        optimizer.zero_grad()
        loss = model.loss(*batch, real_batch.targets)
        loss.backward()
        optimizer.step()
        if step % 5 == 0 and _predicts_exactly(model, batch, real_batch.targets):
            break
    assert loss.item() < first_loss / 5, f"{name}: loss {first_loss:.3f} -> {loss.item():.3f}"
    assert _predicts_exactly(model, batch, real_batch.targets), (
        f"{name} did not fit the batch in {step} steps"
    )


def _predicts_exactly(
    model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor], targets: torch.Tensor
) -> bool:
    model.eval()
    predicted = model.predict_scores(*batch)
    model.train()
    return torch.equal((predicted >= 0.5).float(), targets)
