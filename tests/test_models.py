import inspect
import re

import numpy as np
import pytest

from cnntree.errors import CnnTreeError
from cnntree.nets.models import MODELS, create_model
from cnntree.spec.sections import MODEL

from .helpers import ROOT


@pytest.mark.parametrize("name,params,outputs,count", [
    ("lenet", {}, 7, 1_181_863),
    ("vgg", {}, 7, 2_922_951),             # the reference's "final" VGG-style network (2.9M)
    ("vgg", {"blocks": 3}, 2, 3_508_930),   # the moravcik root node
    ("vgg", {"blocks": 2}, 3, 4_981_187),
    ("vgg", {"width": 0.25}, 7, 184_695),
    ("mini_xception", {}, 7, 58_423),       # Arriaga et al.: ~60k
    ("mobilenet_v2", {}, 7, 1_015_527),
    ("vggnet", {}, 7, 40_380_359),
])
def test_parameter_counts(name, params, outputs, count):
    assert create_model(name, n_outputs=outputs, **params).count_params() == count


def test_every_spec_model_has_a_builder_with_the_same_parameters_and_no_defaults_of_its_own():
    assert set(MODEL.variants) == set(MODELS)
    for name, fields in MODEL.variants.items():
        signature = inspect.signature(MODELS[name])
        assert set(fields) == set(signature.parameters) - {"x", "n_outputs"}, name
        assert all(p.default is inspect.Parameter.empty for p in signature.parameters.values()), name


def test_create_model_takes_the_spec_tables_defaults_and_bounds():
    assert create_model("vgg", blocks=3, n_outputs=2).count_params() == \
        create_model("vgg", blocks=3, filters=[64, 128, 256, 256, 512, 512], dense=256, n_outputs=2).count_params()
    with pytest.raises(CnnTreeError, match=r"model.width: 9 is out of range \(<= 4\)"):
        create_model("mini_xception", width=9)


@pytest.mark.parametrize("normalize,expected", [("unit", (0.0, 1.0)), ("symmetric", (-1.0, 1.0))])
def test_models_normalise_raw_pixels(normalize, expected):
    model = create_model("mini_xception", normalize=normalize)
    layer = model.get_layer("normalize")
    out = np.asarray(layer(np.array([[0.0], [255.0]], np.float32)))
    assert out.ravel().tolist() == pytest.approx(expected)
    probs = np.asarray(model(np.full((2, 48, 48, 1), 128.0, np.float32)))
    assert probs.shape == (2, 7) and probs.sum(axis=1) == pytest.approx([1, 1], abs=1e-5)


def test_models_and_training_use_only_the_keras_public_api():
    for module in ("nets/models.py", "nets/train.py", "nets/schedules.py", "data/augment.py"):
        source = (ROOT / "cnntree" / module).read_text()
        assert not re.search(r"^\s*(import|from)\s+tensorflow", source, re.M), module
        assert "tf." not in source, module


def test_vgg_needs_enough_filter_counts():
    with pytest.raises(ValueError, match="3 blocks need 3 filter counts"):
        create_model("vgg", blocks=3, filters=[8, 8])


def test_cost_counts_parameters_and_multiply_adds_by_hand():
    import keras

    from cnntree.nets.cost import multiply_adds, parameters

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)          # 8*8 positions * 9 * 1 * 4 = 2304
    x = keras.layers.SeparableConv2D(6, 3, padding="valid")(x)     # 6*6 * 4 * (9 + 6) = 2160
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5)(x)                             # 216 * 5 = 1080
    model = keras.Model(inputs, outputs)
    assert multiply_adds(model) == 2304 + 2160 + 1080
    assert parameters(model) == (9 * 4 + 4) + (9 * 4 + 4 * 6 + 6) + (216 * 5 + 5)
