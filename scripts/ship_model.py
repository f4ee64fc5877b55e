"""Ship a trained classifier inside cnntree: ``cnntree/pretrained/<name>/`` with its model card.

    python scripts/ship_model.py SOURCE --data fer2013.csv.gz [--name default]

SOURCE is a model folder (``cnntree train --out``) or the work folder of a training that is
still going or was stopped (``--work-dir``): then its best epoch so far is shipped, and the card
says how many epochs it had. The classifier is evaluated on PublicTest and PrivateTest of the
data (never used for selection), and the card records the command, spec, seed, data checksum,
epochs, wall time, the figures, per-class recall and the confusion matrix.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
from pathlib import Path


def facts_of_model(clf) -> dict:
    """Epochs of a finished model folder: trained, planned (the --epochs it trained under, or the
    spec's) and the best one (lowest validation loss, the epoch a restored best comes from)."""
    history = next(iter(clf.histories_.values()), {})
    losses = history.get("val_loss") or history.get("loss", [])
    trained = len(history.get("loss", []))
    return {"epochs_trained": trained, "finished": True,
            "epochs_planned": clf.spec_.overrides.get("epochs") or clf.spec_.root.train["epochs"],
            "best_epoch": (min(range(len(losses)), key=losses.__getitem__) + 1) if losses else trained}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tta_rows(card: dict) -> str:
    """The table rows of the test-time views measured besides the model's own setting."""
    from cnntree.pretrained import public_note

    return "".join(f"| {split} with `--test-time {mode}`{public_note(card) if prefix == 'public' else ''} | "
                   f"{card[f'{prefix}_faces']} | {figures['accuracy']:.4f} | "
                   f"{figures['macro_f1']:.4f} |\n"
                   for mode, by_split in card.get("test_time", {}).items()
                   for (split, prefix), figures in zip((("PublicTest", "public"), ("PrivateTest", "private")),
                                                       by_split.values()))


def trained_on(card: dict) -> str:
    """What the card says about the faces the model learnt from and was selected on."""
    splits = card.get("train_splits", ["Training"])
    if "PublicTest" in splits:
        return (f"Trained on {' + '.join(splits)} less a stratified 10% validation slice of Training, which chose "
                "the best epoch. PrivateTest was never used for training or selection; PublicTest was trained "
                "on, so its rows below are not test figures.")
    return ("Trained on its Training split less a stratified 10% validation slice, which chose the best epoch. "
            "PublicTest and PrivateTest were never used for training or selection.")


def card_markdown(card: dict) -> str:
    from cnntree.pretrained import public_note

    recall = " | ".join(f"{c} {r:.2f}" for c, r in card["private_recall"].items())
    classes = card["classes"]
    confusion = ["| true \\ predicted | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    confusion += [f"| {c} | " + " | ".join(str(v) for v in row) + " |" for c, row in zip(classes, card["private_confusion"])]
    weakest = sorted(card["private_recall"].items(), key=lambda kv: kv[1])[:2]
    return f"""# Model card: cnntree `{card['name']}`

A {card['kind']} classifier ({card['spec']}, {card['parameters']:,} parameters, {card['bytes'] / 1e6:.2f} MB) that
labels a grey 48x48 face with one of seven emotions: {', '.join(classes)}.

## Training

- Data: FER2013 (`{card['data']}`, sha256 `{card['data_sha256'][:16]}...`): 48x48 grey faces found by
  web image search, mostly frontal, labelled by one annotator each (the labels are noisy: human
  accuracy is about 65%). {trained_on(card)}
- Command: `{card['command']}`; seed {card['seed']}.
- Epochs: {card['epochs_trained']} of {card['epochs_planned']} planned, best epoch {card['best_epoch']}
  ({'finished' if card['finished'] else 'the training was stopped there; `--resume` continues it'}).
  Wall time: {f"{card['wall_hours']:.1f} h" if card.get('wall_hours') else 'not recorded'} on {card['machine']}.
{f"- {card['note']}" + chr(10) if card.get('note') else ''}
## Figures (measured by `scripts/ship_model.py`)

As shipped, the model averages each face's answer over the test-time views `{card['shipped_test_time']}`
(the first two rows); the rows below them are the same network with other views (`--test-time`).

| split | faces | accuracy | macro F1 |
|---|---|---|---|
| PublicTest{public_note(card)} | {card['public_faces']} | {card['public_accuracy']:.4f} | {card['public_macro_f1']:.4f} |
| PrivateTest | {card['private_faces']} | {card['private_accuracy']:.4f} | {card['private_macro_f1']:.4f} |
{tta_rows(card)}
PrivateTest recall per class: {recall}.

PrivateTest confusion (counts):

{chr(10).join(confusion)}

## Limits

- It confuses the classes it recalls least ({', '.join(f'{c} {r:.2f}' for c, r in weakest)}); disgust has
  few training faces (436 of 28,709).
- It has seen only FER2013's kind of face: web photos, cropped and aligned by the data set's
  makers, mostly frontal, adults, with the demographics of 2013 image search. Faces in profile,
  children, unusual lighting or other crops (the mirror's Haar detector crops differently) lower
  its accuracy by amounts this card does not measure.
- An expression is not an emotion, and a label is not a fact about a person: do not use it for
  decisions about people (hiring, grading, policing, health).

Regenerate: the command above (add `--resume` to continue an interrupted training), then
`python scripts/ship_model.py <model or work folder> --data <fer2013.csv.gz> --name {card['name']}`.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="a model folder, or a training's work folder")
    parser.add_argument("--data", required=True, help="the full FER2013 (.csv or .csv.gz)")
    parser.add_argument("--name", default="default")
    parser.add_argument("--wall-hours", type=float, help="the training's wall time, for the card")
    parser.add_argument("--test-time", choices=("none", "flip", "ten_crop"), help="ship the model with these "
                        "test-time views (default: its spec's); the card also measures the others")
    parser.add_argument("--note", help="a line about the training for the card (e.g. how it was resumed)")
    parser.add_argument("--command", help="the training command, for the card (default: the one that shipped "
                        "the current default)")
    parser.add_argument("--machine", help="where it trained, for the card (default: this machine)")
    args = parser.parse_args()

    from cnntree import load_model, with_overrides
    from cnntree.data import load_for_spec
    from cnntree.data.splits import training_splits
    from cnntree.estimator.storage import load_checkpoint, ship
    from cnntree.evaluation.metrics import evaluate

    source = Path(args.source)
    if (source / "meta.json").exists():
        clf = load_model(source)
        facts = facts_of_model(clf)
    else:
        clf, facts = load_checkpoint(source)
    if args.test_time:
        clf.set_params(test_time=args.test_time)
    spec = with_overrides(clf.spec_, data=args.data)
    data, splits = load_for_spec(spec)
    card = {"name": args.name, "kind": spec.kind, "spec": spec.name, "classes": list(spec.classes),
            "seed": spec.root.train["seed"], "data": Path(args.data).name, "data_sha256": sha256(Path(args.data)),
            "command": args.command or f"cnntree train trees/{spec.name}.json --data {Path(args.data).name} "
                                       "--work-dir ~/.cache/cnntree/work/default",
            "machine": args.machine or f"{platform.machine()} {platform.processor() or ''}".strip(),
            "train_splits": training_splits(spec.data["split"]),
            **facts}
    card.update(wall_hours=args.wall_hours, note=args.note)

    def measured(classifier, split):
        index = splits.tests[split]
        return evaluate(classifier, classifier.network_outputs(data.images[index]), data.labels[index])["modes"][classifier.default_mode()]

    for split, prefix in (("PublicTest", "public"), ("PrivateTest", "private")):
        index, result = splits.tests[split], measured(clf, split)
        card.update({f"{prefix}_faces": int(len(index)), f"{prefix}_accuracy": result["accuracy"],
                     f"{prefix}_macro_f1": result["macro_f1"]})
        if prefix == "private":
            card["private_recall"] = {c: result["report"][c]["recall"] for c in spec.classes}
            card["private_confusion"] = result["confusion"]
    own = clf.test_time or clf.spec_.root.augment["test_time"]
    card["shipped_test_time"] = own
    card["test_time"] = {}
    for mode in [m for m in ("none", "flip", "ten_crop") if m != own]:  # what averaging views would add, measured
        viewed = clf.set_params(test_time=mode)
        results = {split: measured(viewed, split) for split in ("PublicTest", "PrivateTest")}
        card["test_time"][mode] = {split: {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}
                                   for split, r in results.items()}
    clf.set_params(test_time=own)
    target = ship(clf, args.name)
    card["parameters"] = int(sum(m.count_params() for m in clf.keras_models().values()))
    card["bytes"] = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    (target / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (target / "MODEL_CARD.md").write_text(card_markdown(card))
    print(json.dumps({k: v for k, v in card.items() if not k.startswith("private_confusion")}, indent=2))
    print(f"shipped {target} ({card['bytes'] / 1e6:.2f} MB): PrivateTest {card['private_accuracy']:.4f}")


if __name__ == "__main__":
    main()
