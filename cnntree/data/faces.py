"""FaceData: what every reader returns and every trainer takes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class FaceData:
    """Images with labels; ``labels`` index ``classes``, ``splits`` names each image's split."""

    images: np.ndarray  # (n, 48, 48) uint8
    labels: np.ndarray  # (n,) int64
    classes: tuple[str, ...]
    splits: np.ndarray  # (n,) str: "Training", "PublicTest", ... or "" when the source has none
    names: np.ndarray  # (n,) str: "line 17" or a path relative to the data folder
    source: str = ""
    skipped: tuple[str, ...] = field(default=(), compare=False)  # messages of skipped bad inputs
    resized: int = field(default=0, compare=False)  # images that were not 48x48 (read, and resized)

    def __len__(self):
        return len(self.labels)

    def subset(self, index) -> FaceData:
        """The faces at ``index``, with their labels, splits and names."""
        return replace(self, images=self.images[index], labels=self.labels[index],
                       splits=self.splits[index], names=self.names[index])

    def counts(self) -> dict[str, int]:
        """Images per class."""
        return {c: int(n) for c, n in zip(self.classes, np.bincount(self.labels, minlength=len(self.classes)))}
