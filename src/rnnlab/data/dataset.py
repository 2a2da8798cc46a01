"""Encoded texts held as one flat token array + offsets: cheap to load, cheap to batch."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset

TRUNCATION_SIDES = ("head", "tail", "head_tail")
COVERED = 0.99  # a derived max_len keeps this share of the training texts whole


def covering_length(table: pa.Table, share: float = COVERED) -> int:
    """The length in tokens that `share` of the encoded texts in `table` fit in whole: a
    `max_len` that cuts only the longest few, whatever the dataset's scale."""
    lengths = pc.list_value_length(table.column("input_ids")).to_numpy()
    return max(1, int(np.quantile(lengths, share, method="higher")))


def truncate(ids: np.ndarray, max_len: int, side: str) -> np.ndarray:
    """Keep the first, last, or first quarter + last three quarters of `max_len` tokens."""
    if len(ids) <= max_len:
        return ids
    if side == "head":
        return ids[:max_len]
    if side == "tail":
        return ids[len(ids) - max_len :]
    head = max_len // 4
    return np.concatenate([ids[:head], ids[len(ids) - (max_len - head) :]])


class EncodedTexts(Dataset):
    """(token ids, class id) items of one split of any text dataset, stored flat (one array of
    ids and their offsets) so a split of 25k texts is two arrays, not 25k tensors."""

    def __init__(
        self, flat: np.ndarray, offsets: np.ndarray, labels: np.ndarray, max_len: int, side: str
    ) -> None:
        self.flat, self.offsets, self.labels = flat, offsets, labels
        self.max_len, self.side = max_len, side

    @classmethod
    def from_arrow(cls, table: pa.Table, max_len: int, side: str) -> EncodedTexts:
        ids = table.column("input_ids").combine_chunks()
        return cls(
            ids.values.to_numpy(),
            ids.offsets.to_numpy(),
            table.column("label").to_numpy(),
            max_len,
            side,
        )

    @property
    def lengths(self) -> np.ndarray:
        """Lengths after truncation (at least 1: an empty review is one pad token)."""
        return np.clip(np.diff(self.offsets), 1, self.max_len)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        ids = self.flat[self.offsets[i] : self.offsets[i + 1]]
        return truncate(ids, self.max_len, self.side), int(self.labels[i])


def pad_collate(items: list[tuple[np.ndarray, int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence in the batch; lengths tell the model where each ends.
    Labels are class ids (int64) whatever the number of classes; a binary loss converts them."""
    lengths = torch.tensor([max(len(ids), 1) for ids, _ in items])
    input_ids = torch.full((len(items), int(lengths.max())), pad_id, dtype=torch.long)
    for row, (ids, _) in enumerate(items):
        input_ids[row, : len(ids)] = torch.from_numpy(ids.astype(np.int64))
    labels = torch.tensor([label for _, label in items], dtype=torch.int64)
    return {"input_ids": input_ids, "lengths": lengths, "labels": labels}
