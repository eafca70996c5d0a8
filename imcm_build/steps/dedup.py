"""Deduplicate: one document per book.

Two passes, the exact one first so that copies never reach MinHash:

* **exact duplicates**: the same normalised text (casefolded, only letters and digits kept, so
  whitespace and punctuation differences do not count). Dropped with reason "exact_duplicate".
  Placeholder texts that are exact copies ("在线阅读本书", found on 11 different books in the shared
  records) are merged too; such texts are far below any length threshold, so LengthFilter drops the
  keeper afterwards and the merged tags do not reach the release.
* **near duplicates** (other editions of the same book), when `near` is on. Two documents are near
  duplicates when
  - the MinHash estimate of the Jaccard similarity of their character 5-shingles (of the normalised
    text) is at least `threshold`; candidates come from banding (`lsh_candidates`), then are checked with the
    estimated Jaccard itself; or
  - they have the same normalised title and either the same `meta["author"]` (when both have one) or
    an estimated Jaccard of at least `TITLE_MATCH_MIN_JACCARD`. Same-title editions on Douban often
    carry rewritten blurbs (Jaccard 0.2-0.6 in the shared records), while unrelated texts score
    close to 0; the title alone is never enough, because different books share titles.
  Near duplicates are grouped transitively (A~B and B~C put A, B, C in one group) and dropped with
  reason "near_duplicate".

In each group the keeper is the document with the longest text, ties broken by the smallest numeric id,
then by the id string, so the result does not depend on input order. The others' tags are merged into
the keeper (keeper's tags first, then new tags in the keepers' rank order), and their ids (plus any ids
they had absorbed) are appended to `keeper.meta["merged_ids"]`. Kept documents stay in input order.

A text without any letter or digit (a placeholder such as "-") is an exact duplicate only of the very
same text (whitespace aside) and never a near duplicate.
MinHash (`minhash_signature`, numpy over the whole text at once, in the build's worker processes): each
5-shingle of code points gets a 64-bit polynomial hash mixed to 32 bits (MurmurHash3's finalizer);
`num_perm` multiply-shift hash functions h(x) = (a·x + b) >> 32 (a odd; a, b drawn from `seed`) are applied
and each one's minimum kept. Candidate pairs come from banding the signatures (`lsh_bands`, `lsh_candidates`)
and are then checked against the threshold.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from functools import cache

import numpy as np

from imcm_build.document import Document
from imcm_build.pipeline import parallel_map
from imcm_build.report import StepReport
from imcm_build.steps.split import id_sort_key

SHINGLE_SIZE = 5
TITLE_MATCH_MIN_JACCARD = 0.2
MERGE_SAMPLE_SIZE = 20
LSH_RECALL = 0.999  # chance that a pair right at the threshold becomes a candidate
_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")
_SHINGLE_BASE = np.uint64(0x100000001B3)  # FNV's 64-bit prime: an odd multiplier for the polynomial hash
_FMIX_MULTIPLIER = np.uint64(0xFF51AFD7ED558CCD)
_U33, _U32 = np.uint64(33), np.uint64(32)


def normalized_key(text: str) -> str:
    """Casefolded letters and digits only (by `str.isalnum`): the identity of a text for exact deduplication."""
    return _NOT_ALPHANUMERIC.sub("", text.casefold())


def exact_key(text: str, normalized: str | None = None) -> str:
    """`normalized_key` (pass it if already computed), or for a text without letters and digits ("-",
    "……") the text minus whitespace."""
    if normalized is None:
        normalized = normalized_key(text)
    return normalized or "".join(text.split())


@cache
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.RandomState(seed)
    multipliers = generator.randint(0, 1 << 62, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    offsets = generator.randint(0, 1 << 62, size=num_perm, dtype=np.uint64)
    return multipliers, offsets


def shingle_hashes(key: str, size: int = SHINGLE_SIZE) -> np.ndarray:
    """32-bit hashes (as uint64) of the character `size`-shingles of `key`; a shorter key is one shingle."""
    points = np.frombuffer(key.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    width = min(size, len(points))
    count = len(points) - width + 1
    hashes = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(width):
            hashes = hashes * _SHINGLE_BASE + points[offset : offset + count]
        hashes ^= hashes >> _U33
        hashes *= _FMIX_MULTIPLIER
        hashes ^= hashes >> _U33
    return hashes >> _U32


def minhash_signature(key: str, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """The MinHash signature of `key`'s shingle set: `num_perm` uint32 values."""
    multipliers, offsets = _permutations(num_perm, seed)
    with np.errstate(over="ignore"):
        return ((shingle_hashes(key)[:, None] * multipliers + offsets) >> _U32).min(axis=0).astype(np.uint32)


def _signature_task(task: tuple[str, int, int]) -> np.ndarray:
    return minhash_signature(*task)


def estimated_jaccard(first: np.ndarray, second: np.ndarray) -> float:
    """The share of equal signature values: an unbiased estimate of the shingle sets' Jaccard similarity."""
    return float(np.count_nonzero(first == second)) / len(first)


def lsh_bands(threshold: float, num_perm: int, recall: float = LSH_RECALL) -> tuple[int, int]:
    """(bands, rows) for LSH: the most rows per band (fewest candidates) that still make two texts of
    Jaccard `threshold` candidates with probability >= `recall`. Banding that balances false positives
    against false negatives (datasketch's default, 5 bands of 25 rows at 0.9) finds only 31% of the pairs
    at Jaccard 0.9; candidates are checked against the threshold anyway, so only misses are costly."""
    for rows in range(num_perm // 2, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


def lsh_candidates(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Pairs (i, j), i < j, of rows of `signatures` that agree on all values of at least one band;
    an (n, 2) array without repeats, sorted."""
    pairs = []
    mixing = np.random.RandomState(0).randint(1, 1 << 62, size=rows, dtype=np.uint64) | np.uint64(1)
    for band in range(bands):
        block = signatures[:, band * rows : (band + 1) * rows].astype(np.uint64)
        with np.errstate(over="ignore"):
            keys = (block * mixing).sum(axis=1)  # a 64-bit hash of the band: collisions only add candidates
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(keys)]
        for start, end in zip(starts[ends - starts > 1], ends[ends - starts > 1], strict=True):
            members = np.sort(order[start:end])
            first, second = np.triu_indices(len(members), k=1)
            pairs.append(np.column_stack((members[first], members[second])))
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(pairs), axis=0)


def keeper_rank(doc: Document) -> tuple[int, tuple[int, int | float, str]]:
    """Sort key putting the preferred keeper first: longest text, then smallest numeric id, then id."""
    return (-len(doc.text), id_sort_key(doc.id))


class _Groups:
    """Union-find over positions 0..n-1; the smallest position of a group is its root (its keeper)."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, position: int) -> int:
        root = position
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[position] != root:
            self.parent[position], position = root, self.parent[position]
        return root

    def union(self, first: int, second: int) -> None:
        first_root, second_root = self.find(first), self.find(second)
        if first_root != second_root:
            low, high = sorted((first_root, second_root))
            self.parent[high] = low

    def members(self) -> Iterator[list[int]]:
        """Groups of two or more positions, each sorted, in order of their keeper."""
        groups: dict[int, list[int]] = defaultdict(list)
        for position in range(len(self.parent)):
            groups[self.find(position)].append(position)
        for root in sorted(groups):
            if len(groups[root]) > 1:
                yield groups[root]


def merge_into(keeper: Document, other: Document) -> None:
    """Union of tags (keeper's first, then new ones in order) and provenance of the merged document."""
    known = set(keeper.tags)
    for tag in other.tags:
        if tag not in known:
            keeper.tags.append(tag)
            known.add(tag)
    merged = keeper.meta.setdefault("merged_ids", [])
    merged.append(other.id)
    merged.extend(other.meta.get("merged_ids", []))


class Deduplicate:
    """Build step: drop exact and near-duplicate documents, merging their tags into one keeper."""

    name = "dedup"

    def __init__(self, near: bool = True, threshold: float = 0.9, num_perm: int = 128, seed: int = 1) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"Deduplicate: threshold must be in (0, 1], got {threshold}")
        self.near, self.threshold, self.num_perm, self.seed = near, threshold, num_perm, seed

    def run(self, docs: list[Document], report: StepReport) -> list[Document]:
        ranked = sorted(docs, key=keeper_rank)
        keys = parallel_map(normalized_key, [doc.text for doc in ranked], desc="dedup keys")
        keyed_survivors, exact_sample, exact_groups = self._drop_exact(ranked, keys, report)
        survivors = [doc for doc, _ in keyed_survivors]
        near_sample: list[dict] = []
        near_groups = 0
        if self.near:
            survivors, near_sample, near_groups = self._drop_near(keyed_survivors, report)
        kept = {id(doc) for doc in survivors}
        report.notes.update(
            {
                "near": self.near,
                "threshold": self.threshold,
                "title_match_min_jaccard": TITLE_MATCH_MIN_JACCARD,
                "num_perm": self.num_perm,
                "exact_groups": exact_groups,
                "near_groups": near_groups,
                "merged_sample": (exact_sample + near_sample)[:MERGE_SAMPLE_SIZE],
            }
        )
        return [doc for doc in docs if id(doc) in kept]

    def _drop_exact(
        self, ranked: list[Document], keys: list[str], report: StepReport
    ) -> tuple[list[tuple[Document, str]], list[dict], int]:
        """(survivor, its normalised key) in rank order, merge samples, number of groups."""
        first_with_key: dict[str, Document] = {}
        grouped: dict[str, list[str]] = {}
        survivors = []
        for doc, normalized in zip(ranked, keys, strict=True):
            key = exact_key(doc.text, normalized)
            keeper = first_with_key.get(key)
            if keeper is None:
                first_with_key[key] = doc
                survivors.append((doc, normalized))
                continue
            merge_into(keeper, doc)
            grouped.setdefault(keeper.id, []).append(doc.id)
            report.drop("exact_duplicate", doc.id)
        sample = [{"kept": kept, "merged": merged, "kind": "exact"} for kept, merged in grouped.items()]
        return survivors, sample[:MERGE_SAMPLE_SIZE], len(grouped)

    def _drop_near(
        self, survivors: list[tuple[Document, str]], report: StepReport
    ) -> tuple[list[Document], list[dict], int]:
        ranked = [doc for doc, _ in survivors]
        comparable = [position for position, (_, key) in enumerate(survivors) if key]
        tasks = [(survivors[position][1], self.num_perm, self.seed) for position in comparable]
        signatures = dict(zip(comparable, parallel_map(_signature_task, tasks, desc="minhash"), strict=True))
        groups = _Groups(len(ranked))
        for first, second in self._similar_text_pairs(signatures):
            groups.union(first, second)
        for first, second in self._same_title_pairs(ranked, signatures):
            groups.union(first, second)

        dropped: set[int] = set()
        sample = []
        n_groups = 0
        for members in groups.members():
            n_groups += 1
            keeper = ranked[members[0]]
            for position in members[1:]:
                merge_into(keeper, ranked[position])
                report.drop("near_duplicate", ranked[position].id)
                dropped.add(position)
            if len(sample) < MERGE_SAMPLE_SIZE:
                sample.append(
                    {"kept": keeper.id, "merged": [ranked[p].id for p in members[1:]], "kind": "near"}
                )
        return [doc for position, doc in enumerate(ranked) if position not in dropped], sample, n_groups

    def _similar_text_pairs(self, signatures: dict[int, np.ndarray]) -> Iterator[tuple[int, int]]:
        """Pairs whose estimated Jaccard reaches `threshold` (LSH candidates, then checked)."""
        if len(signatures) < 2:
            return
        positions = np.fromiter(signatures, dtype=np.int64, count=len(signatures))
        matrix = np.stack(list(signatures.values()))
        pairs = lsh_candidates(matrix, *lsh_bands(self.threshold, self.num_perm))
        if not len(pairs):
            return
        agreement = np.count_nonzero(matrix[pairs[:, 0]] == matrix[pairs[:, 1]], axis=1) / self.num_perm
        for first, second in pairs[agreement >= self.threshold]:
            yield int(positions[first]), int(positions[second])

    def _same_title_pairs(
        self, ranked: list[Document], signatures: dict[int, np.ndarray]
    ) -> Iterator[tuple[int, int]]:
        """Pairs with the same normalised title and the same author or enough shared text."""
        by_title: dict[str, list[int]] = defaultdict(list)
        for position, doc in enumerate(ranked):
            title = normalized_key(doc.title)
            if title:
                by_title[title].append(position)
        for positions in by_title.values():
            for index, first in enumerate(positions):
                for second in positions[index + 1 :]:
                    if self._same_edition(
                        ranked[first], ranked[second], signatures.get(first), signatures.get(second)
                    ):
                        yield first, second

    @staticmethod
    def _same_edition(
        first: Document, second: Document, first_hash: np.ndarray | None, second_hash: np.ndarray | None
    ) -> bool:
        first_author, second_author = first.meta.get("author"), second.meta.get("author")
        if first_author and second_author:
            return normalized_key(str(first_author)) == normalized_key(str(second_author))
        if first_hash is None or second_hash is None:
            return False
        return estimated_jaccard(first_hash, second_hash) >= TITLE_MATCH_MIN_JACCARD
