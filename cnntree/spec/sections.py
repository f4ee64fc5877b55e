"""The spec's field tables: every section, its keys, their defaults and bounds.

``schema`` says how a field is checked; this module says which fields a spec has. ``docs/spec.md``
describes them for people.
"""

from __future__ import annotations

from .schema import Bool, Either, Ident, ListOf, MapOf, Nullable, Num, Obj, Passthrough, Tagged, Text

FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
KINDS = ("tree", "single", "voting")
MAX_CLASSES = 256
MAX_NETWORKS = 256  # a tree over 256 classes has at most 255 inner nodes

SEED = Num(0, lo=0, hi=2**31 - 1, integer=True)


def _l2(default=0.0):
    return Num(default, lo=0, hi=1)


def _dropout(default):
    return Num(default, lo=0, hi=0.95)


def _width():
    return Num(1.0, lo=0.05, hi=4)  # multiplies every layer's filter count


def _channels(default: list[int]):
    return ListOf(Num(lo=1, hi=4096, integer=True), default, min_len=1, max_len=8)


def _units(default: int):
    return Num(default, lo=1, hi=65536, integer=True)


MODEL = Tagged("name", {
    "lenet": {"filters": _channels([64, 128, 160]), "dense": _units(160), "dropout": _dropout(0.0), "l2": _l2()},
    "vgg": {"blocks": Num(4, lo=1, hi=6, integer=True), "filters": _channels([64, 128, 256, 256, 512, 512]),
            "dense": _units(256), "dropout": _dropout(0.25), "dense_dropout": _dropout(0.5),
            "width": _width(), "l2": _l2()},
    "mini_xception": {"width": _width(), "l2": _l2(0.01)},
    "mobilenet_v2": {"widths": _channels([256, 256, 512, 512]), "expansion": Num(1, lo=1, hi=8, integer=True),
                     "dense": _units(128), "dropout": _dropout(0.2), "l2": _l2()},
    "vggnet": {"width": _width(), "dropout": _dropout(0.2), "l2": _l2()},
}, default={"name": "vgg"})

AUGMENT = Obj({
    "rotation": Num(0.0, lo=0, hi=180),          # degrees, +-
    "width_shift": Num(0.0, lo=0, hi=1),         # fraction of the width, +-
    "height_shift": Num(0.0, lo=0, hi=1),
    "zoom": Num(0.0, lo=0, hi=1),                # scale in [1 - zoom, 1 + zoom]
    "shear": Num(0.0, lo=0, hi=80),              # degrees, +- (Keras ImageDataGenerator's unit)
    "h_flip": Bool(False),
    "noise": Num(0.0, lo=0, hi=1),               # Gaussian std as a fraction of 255
    "brightness": ListOf(Num(lo=0, hi=10), [1.0, 1.0], min_len=2, max_len=2),  # multiply range
    "salt_pepper": Num(0.0, lo=0, hi=0.5),       # fraction of pixels
    "blur": Num(0.0, lo=0, hi=10),               # Gaussian sigma in pixels
    "fog": Num(0.0, lo=0, hi=1),                 # probability of a cloud-like overlay
    "crop": Num(0, lo=0, hi=48, integer=True),   # random crop size (0: off), resized back
    "erasing": Num(0.0, lo=0, hi=1),             # probability of random erasing
    "mixup": Num(0.0, lo=0, hi=10),              # Beta(alpha, alpha) blend of two faces and their labels; 0: off
    "cutmix": Num(0.0, lo=0, hi=10),             # Beta(alpha, alpha) share of a pasted box; 0: off
    "p": Num(1.0, lo=0, hi=1),                   # probability of each geometric transform
    "test_time": Text("none", choices=["none", "flip", "ten_crop"]),
    # albumentations: face by face on the CPU; batch: the whole batch in keras.ops (data/batch_augment.py)
    "engine": Text("auto", choices=["auto", "albumentations", "batch"]),  # auto: data.augment.engine_for
}, default={})

OPTIMIZER = Tagged("name", {
    "adam": {"lr": Num(1e-3, lo=0, hi=10, lo_open=True), "beta_1": Num(0.9, lo=0, hi=1),
             "beta_2": Num(0.999, lo=0, hi=1), "weight_decay": Num(0.0, lo=0, hi=1)},
    "adamw": {"lr": Num(1e-3, lo=0, hi=10, lo_open=True), "beta_1": Num(0.9, lo=0, hi=1),
              "beta_2": Num(0.999, lo=0, hi=1), "weight_decay": Num(1e-4, lo=0, hi=1)},
    "sgd": {"lr": Num(1e-2, lo=0, hi=10, lo_open=True), "momentum": Num(0.9, lo=0, hi=1),
            "nesterov": Bool(False), "weight_decay": Num(0.0, lo=0, hi=1)},
}, default={"name": "adam"})

SCHEDULE = Tagged("name", {
    "constant": {},
    "exponential": {"gamma": Num(0.95, lo=0, hi=1, lo_open=True)},
    "plateau": {"factor": Num(0.5, lo=0, hi=1, lo_open=True), "patience": Num(5, lo=1, hi=1000, integer=True),
                "min_lr": Num(1e-6, lo=0, hi=1)},
    "cosine": {"min_lr": Num(0.0, lo=0, hi=1)},
    "cosine_restarts": {"first_epochs": Num(10, lo=1, hi=10000, integer=True), "t_mul": Num(2.0, lo=1, hi=10),
                        "m_mul": Num(1.0, lo=0, hi=1, lo_open=True), "min_lr": Num(0.0, lo=0, hi=1)},
    "one_cycle": {"max_lr": Num(1e-2, lo=0, hi=10, lo_open=True), "pct_start": Num(0.3, lo=0, hi=1, lo_open=True)},
    "step": {"every": Num(10, lo=1, hi=10000, integer=True), "gamma": Num(0.1, lo=0, hi=1, lo_open=True)},
}, default={"name": "constant"})

TRAIN = Obj({
    "epochs": Num(30, lo=1, hi=10000, integer=True),
    "batch_size": Num(64, lo=1, hi=8192, integer=True),
    "optimizer": OPTIMIZER,
    "schedule": SCHEDULE,
    "loss": Text("categorical_crossentropy", choices=["categorical_crossentropy", "mse", "squared_hinge"]),
    "label_smoothing": Num(0.0, lo=0, hi=0.5),
    "warmup_epochs": Num(0.0, lo=0, hi=1000),  # the learning rate rises linearly, step by step, over these
    "ema": Num(0.0, lo=0, hi=0.9999),  # momentum of an exponential moving average of the weights; 0: off
    "freeze_trunk_epochs": Num(0, lo=0, hi=10000, integer=True),  # warm start: only the head trains at first
    "early_stopping": Num(0, lo=0, hi=10000, integer=True),  # patience in epochs; 0: off
    "restore_best": Bool(True),
    "normalize": Text("unit", choices=["unit", "symmetric"]),  # x/255, or (x/255 - 0.5) * 2
    "seed": SEED,
    "workers": Num(1, lo=1, hi=256, integer=True),  # processes augmenting batches; results do not depend on it
    "max_samples": Num(0, lo=0, hi=10**8, integer=True),  # at most this many training faces per network; 0: all
}, default={})

# undo the resampling's prior shift at prediction, then (temperature, vector, isotonic) a map fitted on validation
_calibrate = Text("prior", choices=["prior", "none", "temperature", "vector", "isotonic"])
BALANCE = Tagged("strategy", {
    "oversample": {"ratio": Num(0.8, lo=0, hi=4, lo_open=True), "calibrate": _calibrate},
    "one_vs_rest": {"calibrate": _calibrate},
    "class_weight": {"calibrate": _calibrate},
    "none": {"calibrate": _calibrate},
}, default={"strategy": "oversample"})

SECTIONS = {"model": MODEL, "augment": AUGMENT, "train": TRAIN, "balance": BALANCE}

SPLIT = Tagged("scheme", {
    # train on one split or several (VGGNet's final fit on Training + PublicTest); never on a test split
    "usage": {"train": Either(Text(), ListOf(Text(), min_len=1, max_len=16, unique=True), default="Training",
                              expected="a split name or a list of split names"), "test": ListOf(Text(), ["PublicTest", "PrivateTest"], min_len=1, unique=True)},
    "random": {"test_fraction": Num(0.2, lo=0, hi=1, lo_open=True), "seed": SEED},
    "kfold": {"folds": Num(5, lo=2, hi=100, integer=True), "fold": Num(0, lo=0, hi=99, integer=True),
              "group_regex": Text(None, nullable=True), "seed": SEED},
}, default={"scheme": "usage"})

DATA = Obj({
    "path": Text("sample"),
    "split": SPLIT,
    "validation": Obj({"from": Text("Training"), "fraction": Num(0.1, lo=0, hi=1, lo_open=True)}, default={}),
    "drop": ListOf(Text(), [], unique=True),
    "label_map": MapOf(Text(), {}),
    "skip_bad": Bool(False),
}, default={})

# A tree or ensemble may start from a trained flat classifier: a model folder, an MLflow run id, or a
# single-network spec (trained first); its networks then start from that network's trunk.
INIT = Obj({"from": Text(None, nullable=True, max_len=4096)}, default={})
# Joint fine-tuning of a tree after its nodes trained: one model whose output is the soft path product,
# trained on the natural class mix; the loss weighs the path NLL, each node's own cross-entropy and,
# over a shared trunk, the cross-entropy of a flat head on that trunk (NBDT's flat loss).
FINETUNE = Obj({
    "epochs": Num(0, lo=0, hi=1000, integer=True),  # 0: no joint fine-tuning
    "lr": Num(1e-4, lo=0, hi=10, lo_open=True),
    "batch_size": Num(64, lo=1, hi=4096, integer=True),
    "loss": Obj({"path": Num(1.0, lo=0, hi=100), "nodes": Num(0.5, lo=0, hi=100), "flat": Num(0.0, lo=0, hi=100)},
                default={}),
    "freeze_trunk": Bool(False),  # train the heads only (every layer below each network's output layer frozen)
    "trunk_lr": Num(1.0, lo=0, hi=1, lo_open=True),  # a shared trunk's rate as a fraction of lr (the heads take lr)
    "batchnorm": Text("train", choices=["train", "frozen"]),  # frozen: BatchNormalization in inference mode, its
    # moving statistics fixed (standard fine-tuning)
}, default={})

# A tree whose nodes are heads on one backbone (the shared model section), trained jointly (finetune).
# heads "groups": one output per group; "classes": one per class under the node, read through the
# log-sum-exp of each group's classes, so a tree warm-started from a flat network starts as it.
# branch_at: where the trunk stops being shared (a block index of the registry model, negative from the
# end: -1 gives every node its own copy of the last block; or the name of the last shared layer); null:
# only the output layer is each node's own.
TRUNK = Obj({"shared": Bool(False), "heads": Text("groups", choices=["groups", "classes"]),
             "branch_at": Nullable(Either(Num(lo=-64, hi=64, integer=True), Text(max_len=100),
                                          expected="a block index or a layer name"))}, default={})

_class = Text(max_len=64)
_group = Either(_class, ListOf(_class, min_len=1, unique=True),
                expected="a class name, a node id or a list of class names")
NODE_KEYS = {"id": Ident(), "children": ListOf(_group, min_len=2), "description": Text(None, nullable=True),
             "label": Text(None, nullable=True, max_len=100)}  # the node's name in hierarchical answers
MEMBER_KEYS = {"id": Ident(), "description": Text(None, nullable=True)}

TOP = {
    "name": Ident(), "kind": Text("tree", choices=list(KINDS)), "description": Text(None, nullable=True),
    "classes": ListOf(_class, list(FER2013_CLASSES), min_len=2, max_len=MAX_CLASSES, unique=True),
    "data": DATA, "defaults": Obj(SECTIONS, default={}),
    "nodes": ListOf(Passthrough(), None, max_len=MAX_NETWORKS),
    "members": ListOf(Passthrough(), None, max_len=MAX_NETWORKS),
    "voting": Text(None, choices=["hard", "soft", "weighted"], nullable=True),
    "init": INIT, "finetune": FINETUNE, "trunk": TRUNK,
}
