from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from imcm_build.release import parquet_path
from imcm_train.data import (
    PAD_ID,
    UNK_ID,
    EncodedSplit,
    LengthBucketSampler,
    ReleaseError,
    Vocabulary,
    collate,
    load_release,
    make_loader,
)
from tests.train.conftest import write_release


def test_load_release_reads_every_split_and_train_frequencies(small_release: Path) -> None:
    release = load_release(small_release)
    assert set(release.splits) == {"train", "validation", "test"}
    assert release.num_labels == 20
    train = release.split("train")
    table = pq.read_table(small_release / parquet_path("train")).to_pydict()
    assert train.ids == table["id"]
    assert train.tokens[0] == table["tokens"][0].split(" ")
    counted = Counter(label for labels in table["labels"] for label in labels)
    assert release.label_frequency.tolist() == [counted[i] for i in range(20)]
    # label ids follow frequency over the whole release (a split may swap neighbours)
    whole = Counter(label for split in ("train", "validation", "test")
                    for labels in pq.read_table(small_release / parquet_path(split)).to_pydict()["labels"]
                    for label in labels)
    assert [whole[i] for i in range(20)] == sorted(whole.values(), reverse=True)


def test_vocabulary_is_most_frequent_training_tokens_with_ties_by_token() -> None:
    documents = [["b", "a", "c", "c"], ["a", "b", "d"], ["c", "e"]]
    vocabulary = Vocabulary.build(documents, max_size=3)
    assert vocabulary.tokens == ["<pad>", "<unk>", "c", "a", "b"]
    assert vocabulary.encode(["a", "zzz", "e", "c"]) == [3, UNK_ID, UNK_ID, 2]
    assert Vocabulary.build(list(reversed(documents)), max_size=3) == vocabulary


def test_vocabulary_on_real_tokens_round_trips_through_json(small_release: Path, tmp_path: Path) -> None:
    train = load_release(small_release).split("train")
    vocabulary = Vocabulary.build(train.tokens, max_size=500)
    assert len(vocabulary) == 502
    counts = Counter(token for tokens in train.tokens for token in tokens)
    kept = [counts[token] for token in vocabulary.tokens[2:]]
    assert kept == sorted(kept, reverse=True)
    assert min(kept) >= max(count for token, count in counts.items() if token not in set(vocabulary.tokens))
    vocabulary.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == vocabulary
    assert vocabulary.encode(train.tokens[0], max_length=7) == [
        vocabulary.tokens.index(t) if t in vocabulary.tokens else UNK_ID for t in train.tokens[0][:7]
    ]


def test_vocabulary_load_names_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "vocab.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="vocab.json: not a vocabulary file"):
        Vocabulary.load(broken)


@pytest.mark.parametrize("num_replicas", [1, 2, 3])
def test_bucketing_covers_every_document_exactly_once_across_ranks(num_replicas: int) -> None:
    lengths = np.random.default_rng(0).integers(1, 400, size=1001)
    seen: list[int] = []
    for rank in range(num_replicas):
        sampler = LengthBucketSampler(lengths, batch_size=16, seed=3, pool_batches=4, num_replicas=num_replicas, rank=rank)
        sampler.set_epoch(2)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert all(1 <= len(batch) <= 16 for batch in batches)
        seen.extend(index for batch in batches for index in batch)
    assert sorted(seen) == list(range(1001))


def test_bucketing_sorts_within_pools_and_is_seeded_per_epoch() -> None:
    lengths = np.random.default_rng(1).integers(1, 400, size=640)
    sampler = LengthBucketSampler(lengths, batch_size=32, seed=5, pool_batches=5)
    sampler.set_epoch(0)
    first = list(sampler)
    assert first == list(sampler)
    sampler.set_epoch(1)
    assert first != list(sampler)
    spread = np.mean([np.ptp(lengths[batch]) for batch in first])
    random_spread = np.mean([np.ptp(lengths[i : i + 32]) for i in range(0, 640, 32)])
    assert spread < random_spread / 3
    assert [batch[0] for batch in first] != sorted(batch[0] for batch in first)


def test_evaluation_order_is_longest_first_without_shuffle() -> None:
    lengths = [3, 9, 1, 9, 4]
    batches = list(LengthBucketSampler(lengths, batch_size=2, shuffle=False))
    assert batches == [[1, 3], [4, 0], [2]]


def test_collate_pads_to_the_longest_and_sets_lengths_and_targets(small_release: Path) -> None:
    release = load_release(small_release)
    train = release.split("train")
    vocabulary = Vocabulary.build(train.tokens)
    dataset = EncodedSplit.from_split(train, vocabulary, release.num_labels, max_length=60)
    sampler = LengthBucketSampler(dataset.lengths, batch_size=8, seed=0)
    batch = next(iter(make_loader(dataset, sampler)))
    expected_lengths = [min(len(train.tokens[i]), 60) for i in batch.indices.tolist()]
    assert batch.lengths.tolist() == expected_lengths
    assert batch.lengths.device.type == "cpu" and batch.lengths.dtype == torch.long
    assert batch.tokens.shape == (len(batch), max(expected_lengths))
    for row, index in enumerate(batch.indices.tolist()):
        length = expected_lengths[row]
        assert batch.tokens[row, :length].tolist() == vocabulary.encode(train.tokens[index], 60)
        assert (batch.tokens[row, length:] == PAD_ID).all()
        assert batch.targets[row].nonzero().flatten().tolist() == sorted(train.labels[index])
    assert batch.targets.shape == (len(batch), release.num_labels) and batch.targets.dtype == torch.float32


def test_collate_rejects_nothing_and_keeps_empty_label_sets() -> None:
    batch = collate([(0, torch.tensor([5, 6]), []), (1, torch.tensor([7]), [2])], num_labels=3)
    assert batch.targets.tolist() == [[0, 0, 0], [0, 0, 1]]
    assert batch.tokens.tolist() == [[5, 6], [7, 0]]


def test_missing_release_and_missing_split_are_named(small_release: Path, tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="no such release folder"):
        load_release(tmp_path / "nowhere")
    partial = tmp_path / "partial"
    shutil.copytree(small_release, partial)
    (partial / parquet_path("validation")).unlink()
    with pytest.raises(ReleaseError, match=r"validation-00000-of-00001.parquet: missing: the release has no 'validation'"):
        load_release(partial)
    assert load_release(partial, splits=("train", "test")).split("test")


def test_release_with_bad_documents_names_the_document(tmp_path: Path) -> None:
    def columns(tokens: list[str], labels: list[list[int]]) -> dict[str, list]:
        ids = [f"b{i}" for i in range(len(tokens))]
        return {"id": ids, "title": ids, "text": tokens, "tokens": tokens, "labels": labels}

    no_tokens = write_release(tmp_path / "a", ["小说", "历史"], {"train": columns(["小说 好看", ""], [[0], [1]])})
    with pytest.raises(ReleaseError, match="document 'b1' has no tokens"):
        load_release(no_tokens, splits=("train",))
    empty = write_release(tmp_path / "b", ["小说"], {"train": columns([], [])})
    with pytest.raises(ReleaseError, match="'train' split has no documents"):
        load_release(empty, splits=("train",))
    no_labels = write_release(tmp_path / "c", ["小说"], {"train": columns(["小说"], [[0]])})
    (no_labels / "labels.txt").unlink()
    with pytest.raises(ReleaseError, match="labels.txt: missing"):
        load_release(no_labels, splits=("train",))
