"""The batch augmentation engine does what the spec says, face by face: a flip mirrors exactly, a
rotation turns a point by the drawn angle, crops and every other kind stay in range, a seed fixes it."""

import numpy as np
import pytest

from cnntree.data.augment import build_augmenter
from cnntree.spec.sections import AUGMENT


def engine(**augment):
    return build_augmenter(AUGMENT.parse({**augment, "engine": "batch"}, "augment"))


def test_a_flip_only_spec_mirrors_exactly_about_half_of_the_faces(sample):
    faces = sample.images[:64]
    out = engine(h_flip=True).augment(faces, 11)
    same = [np.array_equal(o, f) for o, f in zip(out, faces)]
    mirrored = [np.array_equal(o, f[:, ::-1]) for o, f in zip(out, faces)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 16 <= sum(mirrored) <= 48


def test_a_rotation_turns_a_point_by_the_drawn_angle():
    n, seed, limit = 16, 5, 30.0
    faces = np.zeros((n, 48, 48), np.uint8)
    faces[:, 23:26, 38:41] = 255  # a bright 3x3 dot centred at (row 24, col 39); the centre is (23.5, 23.5)
    out = engine(rotation=limit).augment(faces, seed).astype(np.float64)
    angles = np.random.default_rng(seed).uniform(-limit, limit, n)  # the engine's first draw
    rows, cols = np.mgrid[:48, :48]

    def polar(image):
        y, x = (image * rows).sum() / image.sum() - 23.5, (image * cols).sum() / image.sum() - 23.5
        return np.hypot(x, y), np.degrees(np.arctan2(y, x))

    radius, start = polar(faces[0].astype(np.float64))
    for image, expected in zip(out, angles):
        r, angle = polar(image)
        assert r == pytest.approx(radius, abs=0.5)  # turned about the centre, not moved
        assert angle - start == pytest.approx(expected, abs=2.0)
    assert np.ptp(angles) > 20  # the test saw different angles


def test_shifts_zoom_crop_and_pixel_changes_stay_in_range_and_change_the_faces(sample):
    faces = sample.images[:32]
    everything = engine(rotation=10, width_shift=0.1, height_shift=0.1, zoom=0.1, shear=10, h_flip=True,
                        noise=0.05, brightness=[0.5, 1.5], salt_pepper=0.02, blur=0.5, fog=0.5, crop=40, erasing=0.5)
    out = everything.augment(faces, 1)
    assert out.shape == faces.shape and out.dtype == np.uint8
    assert all(not np.array_equal(o, f) for o, f in zip(out, faces))
    shifted = engine(width_shift=0.2).augment(faces, 2).astype(float)
    assert np.corrcoef(shifted.ravel(), faces.astype(float).ravel())[0, 1] > 0.3  # still the same faces
    noisy = engine(salt_pepper=0.1).augment(faces, 3)
    changed = (noisy != faces).mean()
    assert 0.05 < changed < 0.15  # about 10% of the pixels set to 0 or 255
    assert set(np.unique(noisy[noisy != faces])) <= {0, 255}
