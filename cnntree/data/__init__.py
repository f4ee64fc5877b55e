"""The data family: readers, loading and its cache, class maps, splits, each node's balanced data,
and augmentation. Where a node gets its data: ``nodedata``."""

from .faces import FaceData
from .load import cache_dir, load_faces, load_for_spec
from .readers import IMAGE_SUFFIXES, SIZE, read_face, read_grey
from .splits import Splits, make_splits, subject_groups

__all__ = ["IMAGE_SUFFIXES", "SIZE", "FaceData", "Splits", "cache_dir", "load_faces", "load_for_spec",
           "make_splits", "read_face", "read_grey", "subject_groups"]
