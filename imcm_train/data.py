"""Release → vocabulary → tensors, in length-bucketed batches.

A release (see `imcm_build.release`) holds space-joined jieba tokens and ClassLabel id lists per split.
`load_release` reads and checks them; `Vocabulary` maps tokens to ids (0 = padding, 1 = unknown);
`EncodedSplit` + `LengthBucketSampler` + `collate` produce `Batch`es of padded token ids.

Documents are truncated to `DEFAULT_MAX_LENGTH` = 500 tokens by default: the Douban summaries are a few
hundred tokens at most (mean ≈ 150 jieba tokens), so 500 keeps essentially every document whole while
bounding the cost of a pathological long one. Pass `max_length=None` to keep every token.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, Sampler

from imcm_build.release import SPLITS, ReleaseError, read_label_names, read_split

PAD_ID = 0
UNK_ID = 1
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
DEFAULT_MAX_VOCAB = 60_000
DEFAULT_MAX_LENGTH = 500
DEFAULT_POOL_BATCHES = 50

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_MAX_VOCAB",
    "PAD_ID",
    "UNK_ID",
    "Batch",
    "EncodedSplit",
    "LengthBucketSampler",
    "ReleaseData",
    "ReleaseError",
    "SplitData",
    "Vocabulary",
    "collate",
    "encode",
    "load_release",
    "make_loader",
]


@dataclass
class SplitData:
    """One split of a release: per document its id, token list and ClassLabel ids."""

    name: str
    ids: list[str]
    tokens: list[list[str]]
    labels: list[list[int]]

    def __len__(self) -> int:
        return len(self.ids)

    def joined_tokens(self) -> list[str]:
        """Documents as space-joined token strings (the input format of the scikit-learn baselines)."""
        return [" ".join(tokens) for tokens in self.tokens]


@dataclass
class ReleaseData:
    path: Path
    label_names: list[str]
    splits: dict[str, SplitData]
    label_frequency: np.ndarray  # documents per label id in the training split

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def split(self, name: str) -> SplitData:
        if name not in self.splits:
            raise ReleaseError(f"{self.path}: split {name!r} was not loaded (loaded: {', '.join(self.splits)})")
        return self.splits[name]


def load_release(path: str | Path, splits: Sequence[str] = SPLITS) -> ReleaseData:
    """Read and check the given splits of a release folder.

    Raises `ReleaseError` naming the file (and the document id) for a missing folder, split, column or
    label list, an empty split, a document without tokens, or a label id outside labels.txt.
    """
    path = Path(path)
    if not path.is_dir():
        raise ReleaseError(f"{path}: no such release folder")
    if "train" not in splits:
        raise ReleaseError(f"{path}: the training split is needed for the label frequencies")
    label_names = read_label_names(path)
    loaded = {name: _read_checked_split(path, name, len(label_names)) for name in splits}
    frequency = np.zeros(len(label_names), dtype=np.int64)
    for labels in loaded["train"].labels:
        frequency[labels] += 1
    return ReleaseData(path, label_names, loaded, frequency)


def _read_checked_split(path: Path, name: str, num_labels: int) -> SplitData:
    raw = read_split(path, name)
    where = path / f"data/{name}-00000-of-00001.parquet"
    if not raw.ids:
        raise ReleaseError(f"{where}: the {name!r} split has no documents")
    tokens = [text.split() for text in raw.tokens]
    for doc_id, doc_tokens, labels in zip(raw.ids, tokens, raw.labels, strict=True):
        if not doc_tokens:
            raise ReleaseError(f"{where}: document {doc_id!r} has no tokens")
        bad = [label for label in labels if not 0 <= label < num_labels]
        if bad:
            raise ReleaseError(
                f"{where}: document {doc_id!r} has label id(s) {bad} outside labels.txt (0..{num_labels - 1})"
            )
    return SplitData(name, list(raw.ids), tokens, [list(labels) for labels in raw.labels])


class Vocabulary:
    """Token ↔ id. Ids 0 and 1 are padding and unknown; real tokens start at 2, most frequent first."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = [PAD_TOKEN, UNK_TOKEN, *tokens]
        self._ids = {token: index for index, token in enumerate(self.tokens)}
        if len(self._ids) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique and must not be <pad> or <unk>")

    @classmethod
    def build(cls, documents: Iterable[Sequence[str]], max_size: int = DEFAULT_MAX_VOCAB) -> Vocabulary:
        """The `max_size` most frequent tokens of `documents` (count desc, then token, so deterministic)."""
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        counts = Counter(token for document in documents for token in document)
        counts.pop(PAD_TOKEN, None)
        counts.pop(UNK_TOKEN, None)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([token for token, _ in ranked[:max_size]])

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def encode(self, tokens: Sequence[str], max_length: int | None = DEFAULT_MAX_LENGTH) -> list[int]:
        ids = [self._ids.get(token, UNK_ID) for token in tokens]
        return ids if max_length is None else ids[:max_length]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"tokens": self.tokens[2:]}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data["tokens"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a vocabulary file ({error})") from error


def encode(
    vocabulary: Vocabulary, documents: Iterable[Sequence[str]], max_length: int | None = DEFAULT_MAX_LENGTH
) -> list[list[int]]:
    """Token lists → id lists, truncated to `max_length` tokens (None: no truncation)."""
    return [vocabulary.encode(document, max_length) for document in documents]


class EncodedSplit(Dataset):
    """A split as id tensors and label lists; item i = (token ids, label ids)."""

    def __init__(self, token_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], num_labels: int) -> None:
        if len(token_ids) != len(labels):
            raise ValueError(f"{len(token_ids)} documents but {len(labels)} label lists")
        empty = [index for index, ids in enumerate(token_ids) if not ids]
        if empty:
            raise ValueError(f"documents {empty[:5]} have no tokens (every document needs at least one)")
        self.token_ids = [torch.tensor(ids, dtype=torch.long) for ids in token_ids]
        self.labels = [list(label_ids) for label_ids in labels]
        self.num_labels = num_labels

    @classmethod
    def from_split(
        cls, split: SplitData, vocabulary: Vocabulary, num_labels: int, max_length: int | None = DEFAULT_MAX_LENGTH
    ) -> EncodedSplit:
        return cls(encode(vocabulary, split.tokens, max_length), split.labels, num_labels)

    def __len__(self) -> int:
        return len(self.token_ids)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, list[int]]:
        return index, self.token_ids[index], self.labels[index]

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.token_ids]


@dataclass
class Batch:
    tokens: torch.Tensor  # LongTensor [B, T], T = longest document of the batch, 0-padded
    lengths: torch.Tensor  # CPU LongTensor [B]
    targets: torch.Tensor  # FloatTensor [B, L] of 0/1
    indices: torch.Tensor  # LongTensor [B]: positions of the documents in their split

    def __len__(self) -> int:
        return len(self.indices)


def collate(items: Sequence[tuple[int, torch.Tensor, list[int]]], num_labels: int) -> Batch:
    indices, token_ids, labels = zip(*items, strict=True)
    targets = torch.zeros(len(items), num_labels)
    for row, label_ids in enumerate(labels):
        targets[row, list(label_ids)] = 1.0
    return Batch(
        tokens=pad_sequence(list(token_ids), batch_first=True, padding_value=PAD_ID),
        lengths=torch.tensor([len(ids) for ids in token_ids], dtype=torch.long),
        targets=targets,
        indices=torch.tensor(indices, dtype=torch.long),
    )


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of documents of similar length, so little of each batch is padding.

    Training (`shuffle=True`): each epoch the documents are shuffled with a generator seeded by
    (seed, epoch), cut into pools of `pool_batches * batch_size`, each pool sorted by length and cut into
    batches, and the batch order shuffled. Evaluation (`shuffle=False`): all documents sorted by length.

    Distributed (`num_replicas > 1`): the shuffled order is dealt round-robin, so every rank gets a
    disjoint shard and together they cover every document exactly once; shards differ by at most one
    document, so ranks may get different batch counts (the trainer uses DDP's `join` for that).
    Call `set_epoch` before each epoch, as with `DistributedSampler`.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = DEFAULT_POOL_BATCHES,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1 or pool_batches < 1:
            raise ValueError(f"batch_size and pool_batches must be positive, got {batch_size}, {pool_batches}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.pool_size = pool_batches * batch_size
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shard(self) -> np.ndarray:
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.lengths))
        else:
            order = np.arange(len(self.lengths))
        return order[self.rank :: self.num_replicas]

    def _batches(self) -> list[np.ndarray]:
        shard = self._shard()
        if not self.shuffle:
            by_length = shard[np.argsort(-self.lengths[shard], kind="stable")]
            return [by_length[i : i + self.batch_size] for i in range(0, len(by_length), self.batch_size)]
        batches = []
        for start in range(0, len(shard), self.pool_size):
            pool = shard[start : start + self.pool_size]
            pool = pool[np.argsort(-self.lengths[pool], kind="stable")]
            batches.extend(pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        rng = np.random.default_rng((self.seed, self.epoch, 1))
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._batches():
            yield batch.tolist()

    def __len__(self) -> int:
        shard_size = len(range(self.rank, len(self.lengths), self.num_replicas))
        if not self.shuffle:
            return -(-shard_size // self.batch_size)
        full_pools, rest = divmod(shard_size, self.pool_size)
        per_pool = self.pool_size // self.batch_size
        return full_pools * per_pool + -(-rest // self.batch_size)


def make_loader(dataset: EncodedSplit, sampler: LengthBucketSampler) -> DataLoader:
    """Batches in the sampler's order, collated in the main process (collation is cheap)."""
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=partial(collate, num_labels=dataset.num_labels))
