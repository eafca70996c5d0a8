"""CNN (Kim 2014): parallel convolutions of several widths with max-over-time pooling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imcm_train.models.layers import MultiLabelModel, check_batch, padding_mask


class ConvFeatures(nn.Module):
    """Embedding → one Conv1d per filter width → ReLU → max over the windows that start inside
    the document. Documents shorter than the widest filter are zero-padded to its width; their
    only window is the first one. The padding embedding is forced to zero, so a document's
    features do not depend on how far its batch is padded.
    """

    def __init__(
        self, vocab_size: int, embed_dim: int, num_filters: int, filter_widths: tuple[int, ...]
    ) -> None:
        super().__init__()
        if not filter_widths or min(filter_widths) < 1:
            raise ValueError(f"filter_widths must be positive integers, got {filter_widths}")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.convolutions = nn.ModuleList(nn.Conv1d(embed_dim, num_filters, width) for width in filter_widths)
        self.filter_widths = tuple(filter_widths)
        self.output_dim = num_filters * len(filter_widths)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        check_batch(tokens, lengths)
        mask = padding_mask(lengths, tokens.size(1), tokens.device)
        embedded = self.embedding(tokens) * mask.unsqueeze(-1)
        shortfall = max(self.filter_widths) - tokens.size(1)
        channels_first = F.pad(embedded, (0, 0, 0, max(shortfall, 0))).transpose(1, 2)
        lengths = lengths.to(tokens.device)
        pooled = []
        for width, convolution in zip(self.filter_widths, self.convolutions, strict=True):
            feature_maps = torch.relu(convolution(channels_first))  # [B, filters, windows]
            windows = torch.arange(feature_maps.size(2), device=tokens.device)
            valid = windows.unsqueeze(0) < (lengths - width + 1).clamp(min=1).unsqueeze(1)
            # After ReLU every value is >= 0, so zeroing invalid windows cannot win the max.
            pooled.append(feature_maps.masked_fill(~valid.unsqueeze(1), 0.0).amax(dim=2))
        return torch.cat(pooled, dim=1)


class KimCNN(MultiLabelModel):
    """ConvFeatures (widths 3/4/5, 100 maps each, embed_dim 256) → dropout 0.5 → linear → sigmoid."""

    def __init__(
        self,
        vocab_size: int,
        num_labels: int,
        *,
        embed_dim: int = 256,
        num_filters: int = 100,
        filter_widths: tuple[int, ...] = (3, 4, 5),
        dropout: float = 0.5,
    ) -> None:
        super().__init__(vocab_size, num_labels)
        self.features = ConvFeatures(vocab_size, embed_dim, num_filters, tuple(filter_widths))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.features.output_dim, num_labels)

    def logits(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.features(tokens, lengths)))
