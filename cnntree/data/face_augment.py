"""The ``albumentations`` augmentation engine: the spec's augmentation as one albumentations
pipeline, run face by face on the CPU (the reference's own library). Imported only when this
engine is chosen, so the ``batch`` engine runs where albumentations is not installed."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

from .readers import SIZE


class AlbumentationsAugmenter:
    """The ``albumentations`` engine: one pipeline, reseeded per batch, run face by face."""

    def __init__(self, config: dict):
        self.pipeline = albumentations_pipeline(config)

    def augment(self, faces: np.ndarray, seed: int) -> np.ndarray:
        """The batch augmented; the same seed gives the same batch."""
        self.pipeline.set_random_seed(seed)
        return np.stack([self.pipeline(image=face)["image"] for face in faces])


def albumentations_pipeline(config: dict) -> A.Compose:
    """The spec's augmentation as one albumentations pipeline."""
    c = config
    steps = []
    if c["crop"]:
        steps += [A.RandomCrop(c["crop"], c["crop"], p=1.0), A.Resize(SIZE, SIZE, interpolation=cv2.INTER_AREA)]
    if any((c["rotation"], c["width_shift"], c["height_shift"], c["zoom"], c["shear"])):
        steps.append(A.Affine(rotate=(-c["rotation"], c["rotation"]),
                              translate_percent={"x": (-c["width_shift"], c["width_shift"]),
                                                 "y": (-c["height_shift"], c["height_shift"])},
                              scale=(1 - c["zoom"], 1 + c["zoom"]), shear=(-c["shear"], c["shear"]),
                              border_mode=cv2.BORDER_REPLICATE, p=c["p"]))
    if c["h_flip"]:
        steps.append(A.HorizontalFlip(p=0.5))
    if c["brightness"] != [1.0, 1.0]:
        steps.append(A.MultiplicativeNoise(multiplier=tuple(c["brightness"]), p=1.0))
    if c["noise"]:
        steps.append(A.GaussNoise(std_range=(c["noise"], c["noise"]), p=1.0))
    if c["salt_pepper"]:
        steps.append(A.SaltAndPepper(amount=(c["salt_pepper"], c["salt_pepper"]), p=1.0))
    if c["blur"]:
        steps.append(A.GaussianBlur(blur_limit=0, sigma_limit=(c["blur"], c["blur"]), p=1.0))
    if c["fog"]:
        steps.append(CloudOverlay(p=c["fog"]))
    if c["erasing"]:
        steps.append(A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(0.1, 0.4),
                                     hole_width_range=(0.1, 0.4), fill="random_uniform", p=c["erasing"]))
    return A.Compose(steps)


class CloudOverlay(A.ImageOnlyTransform):
    """A soft cloud-like overlay: smoothed random noise blended into the face (the reports' 'fog')."""

    def __init__(self, strength=(0.2, 0.5), p=0.5):
        super().__init__(p=p)
        self.strength = strength

    def get_params_dependent_on_data(self, params, data):
        """A random cloud the size of the image, and its strength."""
        shape = data["image"].shape[:2]
        coarse = self.random_generator.random((max(2, shape[0] // 8), max(2, shape[1] // 8)))
        cloud = cv2.resize(coarse.astype(np.float32), shape[::-1], interpolation=cv2.INTER_CUBIC)
        return {"cloud": np.clip(cloud, 0, 1), "alpha": self.py_random.uniform(*self.strength)}

    def apply(self, img, cloud, alpha, **params):
        out = img.astype(np.float32) * (1 - alpha * cloud) + 255.0 * alpha * cloud
        return np.clip(out, 0, 255).astype(img.dtype)
