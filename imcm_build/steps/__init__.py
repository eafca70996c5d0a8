"""The build steps, in order: clean → dedup → tokenize → length filter → labels → split."""

from __future__ import annotations

from imcm_build.config import BuildConfig
from imcm_build.pipeline import Step
from imcm_build.steps.clean import Clean
from imcm_build.steps.dedup import Deduplicate
from imcm_build.steps.labels import LabelOutlook, Labels
from imcm_build.steps.length import LengthFilter
from imcm_build.steps.split import Split
from imcm_build.steps.tokenize import Tokenize

__all__ = ["Clean", "Deduplicate", "Labels", "LengthFilter", "Split", "Tokenize", "build_steps"]


def build_steps(config: BuildConfig) -> list[Step]:
    """The steps of one build, configured from `config`, in the order they run."""
    return [
        Clean(to_simplified=config.to_simplified),
        Deduplicate(
            near=config.near_dedup,
            threshold=config.minhash_threshold,
            num_perm=config.minhash_num_perm,
        ),
        Tokenize(outlook=LabelOutlook(config.num_labels, config.min_label_freq, config.min_words)),
        LengthFilter(min_words=config.min_words),
        Labels(num_labels=config.num_labels, min_label_freq=config.min_label_freq),
        Split(ratios=config.split_ratios, seed=config.seed),
    ]
