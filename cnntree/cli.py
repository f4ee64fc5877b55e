"""The ``cnntree`` command: one sub-command per job, one-line errors, exit status 2 on bad input."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from .errors import CnnTreeError


def _spec(args):
    from .spec import load_spec

    return load_spec(args.spec)


def cmd_validate(args) -> int:
    spec = _spec(args)
    print(f"{args.spec}: ok ({spec.kind} \"{spec.name}\", {len(spec.classes)} classes, "
          f"{len(spec.nodes)} network{'s' if len(spec.nodes) != 1 else ''})")
    return 0


def text_tree(spec) -> str:
    """The hierarchy as indented text, each network with its model and balance settings."""
    from .spec import summarize

    nodes = {n.id: n for n in spec.nodes}

    def label(name):
        if name not in nodes:
            return name
        node = nodes[name]
        return f"{name}  [{summarize('model', node.model)} | balance {summarize('balance', node.balance)}]"

    def walk(name, prefix):
        lines = []
        children = list(spec.graph.successors(name))
        for i, child in enumerate(children):
            last = i == len(children) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{label(child)}")
            lines.extend(walk(child, prefix + ("    " if last else "│   ")))
        return lines

    head = f"{spec.name}: {spec.kind} over {len(spec.classes)} classes ({', '.join(spec.classes)})"
    if spec.voting:
        head += f", {spec.voting} voting"
    roots = [n.id for n in spec.nodes if spec.graph.in_degree(n.id) == 0]
    lines = [head]
    for root in roots:
        lines += [label(root), *walk(root, "")]
    return "\n".join(lines)


def cmd_show(args) -> int:
    spec = _spec(args)
    print(text_tree(spec))
    if args.png:
        from .plots import draw_hierarchy

        print(f"wrote {draw_hierarchy(spec, args.png)}")
    return 0


def data_report(spec, path=None, skip_bad=None) -> dict:
    """Split sizes and every network's groups with counts before and after balancing."""
    from .data import load_for_spec
    from .nodedata import node_dataset

    data, splits = load_for_spec(spec, path, skip_bad)
    nodes = []
    for node in spec.nodes:
        train = node_dataset(node, data.labels, data.classes, splits.train)
        nodes.append({"id": node.id, "groups": [list(g) for g in node.groups], "before": list(train.before),
                      "after": list(train.after), "balance": node.balance})
    return {"source": data.source, "classes": list(data.classes), "splits": splits.sizes(),
            "validation_from": splits.validation_source, "skipped": len(data.skipped),
            "skipped_first": data.skipped[0] if data.skipped else None, "nodes": nodes}


def cmd_data(args) -> int:
    from .spec import summarize

    spec = _spec(args)
    report = data_report(spec, args.data, True if args.skip_bad else None)
    if report["skipped"]:
        print(f"warning: skipped {report['skipped']} bad input(s); first: {report['skipped_first']}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"data: {report['source']}")
    print("splits: " + ", ".join(f"{k} {v}" for k, v in report["splits"].items())
          + f" (Validation carved from {report['validation_from']})")
    for node in report["nodes"]:
        print(f"{node['id']}  balance {summarize('balance', node['balance'])}")
        for group, before, after in zip(node["groups"], node["before"], node["after"]):
            print(f"  {'+'.join(group):40s} {before:7d} -> {after:7d}")
    return 0


def _evaluation_table(rows) -> str:
    """Metrics per split and mode as a fixed-width table."""
    lines = [f"{'split':12s} {'mode':9s} {'accuracy':>9s} {'macro F1':>9s} {'weighted F1':>12s}"]
    for split, result in rows:
        for mode, m in result["modes"].items():
            star = "*" if mode == result["default_mode"] else " "
            lines.append(f"{split:12s} {mode + star:9s} {m['accuracy']:9.4f} {m['macro_f1']:9.4f} {m['weighted_f1']:12.4f}")
    return "\n".join(lines)


def cmd_train(args) -> int:
    from .experiment import run_experiment

    spec = _spec(args)
    outcome = run_experiment(spec, data_path=args.data, epochs=args.epochs, quick=args.quick, seed=args.seed,
                             experiment=args.experiment, work_dir=args.work_dir, resume=args.resume,
                             skip_bad=True if args.skip_bad else None, out=args.out, jobs=args.jobs, ray=args.ray,
                             workers=args.workers)
    print(_evaluation_table(outcome.results.items()))
    print(f"MLflow run {outcome.run_id} in {outcome.tracking_uri} (experiment {outcome.experiment})")
    if args.out:
        print(f"classifier saved to {args.out}")
    return 0


def cmd_augment(args) -> int:
    import cv2
    import numpy as np

    from .augment import build_augmenter, preview_grid
    from .data import load_for_spec
    from .files import write_atomically
    from .nodedata import node_targets
    from .spec import summarize

    spec = _spec(args)
    node = spec.node(args.node)
    data, splits = load_for_spec(spec, args.data)
    index, groups = node_targets(node, data.labels, list(spec.classes), splits.train)
    rng = np.random.default_rng(args.seed)
    faces = [rng.choice(index[groups == g]) for g in range(len(node.groups)) for _ in range(args.rows)]
    grid = preview_grid(build_augmenter(node.augment, seed=args.seed), data.images[faces], columns=args.columns)
    grid = cv2.resize(grid, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_NEAREST)
    _, encoded = cv2.imencode(".png", grid)
    write_atomically(args.out, lambda tmp: encoded.tofile(tmp))
    print(f"{node.id}: augmentation {summarize('augment', node.augment)}")
    print(f"wrote {args.out}: {len(faces)} faces (rows: {', '.join('+'.join(g) for g in node.groups)}), "
          "first column original")
    return 0


def _load_classifier(path):
    from .classifier import CnnTreeClassifier

    return CnnTreeClassifier.load(path)


def cmd_evaluate(args) -> int:
    import numpy as np

    from .data import load_faces, load_for_spec
    from .evaluate import evaluate, headline
    from .transfer import align, parse_label_map

    clf = _load_classifier(args.model_dir)
    alignment = None
    if args.data is None:
        data, splits = load_for_spec(clf.spec, None, True if args.skip_bad else None)
    else:  # another data set: its classes meet the model's through the label map
        data, alignment = align(load_faces(args.data, skip_bad=args.skip_bad), clf.spec.classes,
                                parse_label_map(args.label_map))
        splits = None
    if splits is not None or args.split in set(data.splits.tolist()):
        tests = splits.tests if splits is not None else {args.split: np.flatnonzero(data.splits == args.split)}
        if args.split not in tests:
            raise CnnTreeError(f"--split: no test split \"{args.split}\"; test splits: {', '.join(tests)}")
        split, index = args.split, tests[args.split]
    else:
        split, index = "all", np.arange(len(data.labels))  # a folder without that split: every image
    result = evaluate(clf, data.images[index], data.labels[index])
    if alignment is not None:
        result["alignment"] = alignment.as_dict()
    if args.json:
        print(json.dumps({"split": split, "metrics": headline(result, split), "result": result}, indent=2))
        return 0
    if alignment is not None:
        print(f"{args.data}: {len(index)} images of {len(alignment.mapped)} classes mapped to the model's "
              f"({', '.join(f'{a}->{b}' if a != b else a for a, b in alignment.mapped.items())})")
        if alignment.excluded:
            print(f"excluded (no model class): {', '.join(alignment.excluded)}")
        if alignment.missing:
            print(f"model classes this data never shows: {', '.join(alignment.missing)}")
    print(_evaluation_table([(split, result)]))
    return 0


def cmd_transfer(args) -> int:
    import mlflow
    import numpy as np

    from . import tracking
    from .data import load_faces
    from .plots import draw_confusion
    from .transfer import cross_validate, folds_of, parse_label_map, problem, transferred

    clf = _load_classifier(args.model_dir)
    label_map = parse_label_map(args.label_map)
    data = load_faces(args.data, skip_bad=args.skip_bad)
    target, _, labels = problem(clf, data, label_map)  # bad classes, folds or groups fail before any run starts
    folds_of(labels, args.folds, target.names, args.group_regex, args.seed)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731  (stdout: the result)
    tracking.use_experiment(args.experiment)
    with mlflow.start_run(run_name=f"transfer {Path(args.model_dir).name} -> {Path(args.data).name}") as parent:
        mlflow.set_tags({"cnntree.kind": "transfer", "cnntree.spec": clf.spec.name, "cnntree.source_kind": clf.spec.kind})
        mlflow.log_params({"model_dir": str(Path(args.model_dir).resolve()), "data": str(args.data), "mode": args.mode,
                           "folds": args.folds, "epochs": args.epochs, "group_regex": args.group_regex,
                           "label_map": json.dumps(label_map), "seed": args.seed})
        result = cross_validate(args.model_dir, data, label_map, args.mode, args.folds, args.epochs, args.group_regex,
                                args.seed, log, fold_run=tracking.fold_run)
        mlflow.log_metrics({k: result[k] for k in ("accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std")})
        mlflow.log_dict(result, "transfer.json")
        work = Path(tracking.RUNS) / "transfer" / parent.info.run_id
        mlflow.log_artifact(str(draw_confusion(result["confusion"], result["classes"], work / "confusion.png",
                                               f"{args.folds} folds, summed: counts")), "evaluation")
        mlflow.log_artifact(str(draw_confusion(result["confusion"], result["classes"], work / "confusion_normalized.png",
                                               f"{args.folds} folds, summed: recall per class", normalize=True)),
                            "evaluation")
        if args.out:
            log(f"[final] retraining ({args.mode}) on all {len(data.labels)} faces")
            final = transferred(args.model_dir, target, np.arange(len(labels)),
                                {} if clf.spec.kind == "tree" else label_map, args.mode, args.epochs, args.seed)
            saved = final.save(args.out)
            mlflow.log_artifacts(str(saved), "classifier")
            result["out"] = str(saved)
        result["run_id"] = parent.info.run_id
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for row in result["folds"]:
        print(f"fold {row['fold']}: train {row['train']:5d}  test {row['test']:5d}  accuracy {row['accuracy']:.4f}  "
              f"macro-F1 {row['macro_f1']:.4f}" + (f"  subjects {','.join(row['subjects'])}" if "subjects" in row else ""))
    print(f"{args.mode}: accuracy {result['accuracy_mean']:.4f} +- {result['accuracy_std']:.4f}, macro-F1 "
          f"{result['macro_f1_mean']:.4f} +- {result['macro_f1_std']:.4f} over {args.folds} "
          f"{'subject-independent ' if result['grouped'] else ''}folds")
    print(f"MLflow run {result['run_id']} in {tracking.tracking_uri()} (experiment {args.experiment})")
    if args.out:
        print(f"classifier retrained on all folds saved to {result['out']}")
    return 0


def cmd_suggest_labels(args) -> int:
    from .data import load_faces, load_for_spec
    from .transfer import suggest_labels

    clf = _load_classifier(args.model_dir)
    target = load_faces(args.data, skip_bad=args.skip_bad)
    source, _ = load_for_spec(clf.spec, args.source_data)
    rows = suggest_labels(clf, target, source)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'target class':16s} {'images':>6s}  {'model assigns':>18s}  {'nearest mean face':>22s}  "
          f"{'nearest histogram':>22s}")
    for r in rows:
        print(f"{r['target']:16s} {r['images']:6d}  {r['model']:>11s} ({r['model_share']:.2f})  "
              f"{r['pixels']:>13s} ({r['pixels_distance']:.3f})  {r['histogram']:>13s} ({r['histogram_distance']:.3f})")
    print("nothing is applied: pass the mapping you choose as --label-map target=model,...")
    return 0


def cmd_predict(args) -> int:
    import numpy as np

    from .data import read_face

    clf = _load_classifier(args.model_dir)
    proba = clf.predict_proba(np.stack([read_face(path)[0] for path in args.images]))
    rows = [{"image": str(p), "label": clf.spec.classes[int(q.argmax())],
             "probabilities": dict(zip(clf.spec.classes, map(float, q)))} for p, q in zip(args.images, proba)]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['image']}: {row['label']} ({row['probabilities'][row['label']]:.2f})")
    return 0


def _mirror(args, clf):
    from .detect import FaceDetector, FaceTracker
    from .mirror import Mirror

    if args.runtime and clf.runtime != args.runtime:
        raise CnnTreeError(f"--runtime {args.runtime}: {args.model_dir} holds {clf.runtime} networks; make a "
                           f"{args.runtime} copy with: cnntree export {args.model_dir} --format {args.runtime} --out DIR")
    clf.combiner(args.mode)  # an unknown mode fails before any frame
    detector = FaceDetector(detect_width=args.detect_width, min_face=args.min_face)
    return Mirror(clf, detector, FaceTracker(smoothing=args.smoothing), mode=args.mode)


def cmd_mirror(args) -> int:
    from .mirror import open_source, run_mirror

    clf = _load_classifier(args.model_dir)
    mirror = _mirror(args, clf)
    source = open_source(args.source)
    run = run_mirror(mirror, source, out=args.out, jsonl=args.jsonl, timeline=args.timeline, show=args.show,
                     max_frames=args.max_frames, printer=lambda line: print(line, file=sys.stderr, flush=True))
    summary = run.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['source']}: {summary['frames']} frame(s), {summary['faces']} face(s) in "
              f"{summary['frames_with_faces']} frame(s), {summary['fps'] or 0:.1f} frames/s on the {clf.runtime} runtime")
        for name, path in summary["outputs"].items():
            print(f"wrote {path} ({name})")
    return 0


def cmd_rehearse(args) -> int:
    from .mirror import open_source, run_mirror
    from .plots import draw_timeline
    from .rehearse import check_report_path, load_script, report, score_segments

    clf = _load_classifier(args.model_dir)
    classes = list(clf.spec.classes)
    segments = load_script(args.script, classes)
    check_report_path(args.out)
    source = open_source(args.source)
    if source.kind == "image":
        raise CnnTreeError(f"--source {args.source}: rehearsal needs a video or a camera, not an image")
    run = run_mirror(_mirror(args, clf), source, max_frames=args.max_frames,
                     printer=lambda line: print(line, file=sys.stderr, flush=True))
    rows = score_segments(segments, run.times, run.main, classes)
    if args.timeline:
        draw_timeline(run.times, run.main, classes, args.timeline, bands=[(s.start, s.end, s.expected) for s in segments],
                      title=f"{Path(args.source).name}: detected (curves) vs expected (bands)")
    report(rows, args.out, f"Rehearsal of {Path(args.script).name} on {Path(args.source).name}", args.timeline)
    for i, r in enumerate(rows, 1):
        score = f"{r['score']:.2f}" if r["score"] is not None else "  - "
        print(f"{i:2d} {r['start']:6.1f}-{r['end']:<6.1f} expected {r['expected']:9s} dominant "
              f"{r['dominant'] or '-':9s} score {score}  {r['verdict']}")
    print(f"wrote {args.out}" + (f" and {args.timeline}" if args.timeline else ""))
    return 0


def cmd_export(args) -> int:
    clf = _load_classifier(args.model_dir)
    out = clf.export(args.out, args.format)
    print(f"wrote {out} ({args.format}: {len(clf.spec.nodes)} network(s) with the routing metadata; "
          f"run it with cnntree mirror {out})")
    return 0


def _model_or_run(reference: str) -> Path:
    """A model directory, or the classifier logged by an MLflow run (``cnntree train``) with that id."""
    if Path(reference).exists():
        return Path(reference)
    import mlflow

    from . import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri())
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=reference, artifact_path="classifier"))
    except Exception as error:  # MLflow raises several types for an unknown run or a missing artifact
        raise CnnTreeError(f"{reference}: neither a model directory nor a run with a classifier in "
                           f"{tracking.tracking_uri()} ({type(error).__name__})") from None


def cmd_suggest(args) -> int:
    from .data import load_for_spec
    from .files import write_text_atomically
    from .plots import draw_hierarchy
    from .spec import parse_spec
    from .suggest import confusion_affinity, suggest_hierarchy, tree_spec

    source = _model_or_run(args.model)
    clf = _load_classifier(source)
    if clf.spec.kind == "tree":
        raise CnnTreeError(f"{args.model}: a tree; suggest reads the confusions of a flat classifier "
                           "(a single network or a voting ensemble)")
    data, splits = load_for_spec(clf.spec, args.data)
    index = splits.validation if args.split == "Validation" else splits.tests.get(args.split)
    if index is None:
        raise CnnTreeError(f"--split: no split \"{args.split}\"; use Validation or one of {', '.join(splits.tests)}")
    from sklearn.metrics import confusion_matrix

    classes = list(clf.spec.classes)
    confusion = confusion_matrix(data.labels[index], clf.predict(data.images[index]), labels=range(len(classes)))
    hierarchy = suggest_hierarchy(confusion, classes, args.method, args.max_children)
    out = Path(args.out)
    raw = tree_spec(hierarchy, out.stem, clf.spec.raw,
                    f"Suggested by cnntree suggest ({args.method}, at most {args.max_children} children) from the "
                    f"confusions of {clf.spec.name} on {args.split} ({len(index)} faces of {data.source}).")
    spec = parse_spec(raw, source=str(out), base_dir=out.parent)  # what is written must validate
    write_text_atomically(out, json.dumps(raw, indent=2) + "\n")
    affinity = confusion_affinity(confusion)
    pairs = sorted(((affinity[i, j], classes[i], classes[j]) for i in range(len(classes))
                    for j in range(i + 1, len(classes))), reverse=True)[:5]
    print("most confused pairs: " + ", ".join(f"{a}-{b} {v:.3f}" for v, a, b in pairs))
    print(text_tree(spec))
    print(f"wrote {out} and {draw_hierarchy(spec, out.with_suffix('.png'))}")
    return 0


def cmd_compare_trees(args) -> int:
    from .compare import compare_specs, ranking_table
    from .spec import load_spec

    specs = [load_spec(path) for path in args.specs]
    result = compare_specs(specs, args.data, args.seeds, args.epochs, args.quick, args.experiment,
                           jobs=args.jobs, ray=args.ray, printer=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    budget = "quick" if args.quick else f"{args.epochs} epochs per network" if args.epochs else "each spec's own epochs"
    print(f"{len(specs)} specs x {args.seeds} seed(s), {budget}, ranked on {result['test_faces']} PrivateTest faces "
          f"(MLflow experiment {args.experiment}):")
    print(ranking_table(result))
    return 0


def cmd_compare(args) -> int:
    from . import tracking

    runs = tracking.finished_runs(args.experiment)
    columns = ("public_accuracy", "private_accuracy", "private_accuracy_hard", "private_accuracy_soft",
               "private_macro_f1", "train_seconds")
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    print(f"{'run':8s} {'status':8s} {'kind':7s} {'spec':24s} " + " ".join(f"{c:>13s}" for c in
                                                                       ("public acc", "private acc", "private hard",
                                                                        "private soft", "private mF1", "train s")))
    for r in runs:
        values = [r["metrics"].get(c) for c in columns]
        cells = " ".join(f"{v:13.4f}" if v is not None and c != "train_seconds" else
                         f"{v:13.0f}" if v is not None else f"{'-':>13s}" for c, v in zip(columns, values))
        print(f"{r['run_id'][:8]:8s} {r['status'][:8]:8s} {r['kind']:7s} {r['spec'][:24]:24s} {cells}")
    if not runs:
        print("(no cnntree runs yet: run cnntree train SPEC)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnntree", description="Hierarchical ensembles of CNNs for facial "
                                     "expression recognition.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a spec; exit 0 when valid, 2 otherwise")
    p.add_argument("spec")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("show", help="print the hierarchy as text, optionally draw it as a picture")
    p.add_argument("spec")
    p.add_argument("--png", metavar="FILE", help="also write a picture of the hierarchy")
    p.set_defaults(run=cmd_show)

    p = sub.add_parser("data", help="split sizes and every node's balanced training-set counts")
    p.add_argument("spec")
    p.add_argument("--data", metavar="PATH", help="a FER2013 .csv/.csv.gz or an image folder (default: the spec's)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad rows/files and report their count")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=cmd_data)

    p = sub.add_parser("augment", help="a preview grid of one node's training augmentation")
    p.add_argument("spec")
    p.add_argument("--node", required=True, help="node or member id (a single network's is \"net\")")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--data", metavar="PATH")
    p.add_argument("--rows", type=_positive, default=2, help="faces per output group")
    p.add_argument("--columns", type=_positive, default=8)
    p.add_argument("--scale", type=_positive, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_augment)

    p = sub.add_parser("train", help="train every network, evaluate on the test splits, log to MLflow")
    p.add_argument("spec")
    p.add_argument("--data", metavar="PATH", help="data instead of the spec's (e.g. path/to/fer2013.csv)")
    p.add_argument("--epochs", type=_positive, help="override every network's epochs")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 epoch, <= 512 faces per network, "
                   "filters x0.25")
    p.add_argument("--experiment", help="MLflow experiment (default: the spec's name)")
    p.add_argument("--seed", type=int, help="override every network's seed")
    p.add_argument("--out", metavar="DIR", help="also keep the trained classifier in DIR")
    p.add_argument("--resume", action="store_true", help="continue an interrupted training from its checkpoints")
    p.add_argument("--work-dir", help="checkpoints and outputs (default runs/work/<spec name>)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad rows/files and report their count")
    p.add_argument("--workers", type=_positive, help="processes augmenting each network's batches (default: the "
                   "spec's train.workers, 1); results do not depend on it")
    _parallel_arguments(p)
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a trained classifier on a test split or another data set")
    p.add_argument("model_dir")
    p.add_argument("--data", metavar="PATH", help="another data set (e.g. a CK+48 class folder); its classes are "
                   "matched to the model's by name and --label-map")
    p.add_argument("--label-map", metavar="T=M,...", help="rename target classes to model classes, e.g. anger=angry")
    p.add_argument("--split", default="PrivateTest", help="the test split (data without it: every image)")
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("transfer", help="retrain heads on another data set, with K-fold cross-validation")
    p.add_argument("model_dir")
    p.add_argument("--data", required=True, metavar="FOLDER")
    p.add_argument("--label-map", metavar="T=M,...", help="rename (or merge) target classes, e.g. anger=angry")
    p.add_argument("--mode", choices=("head", "last_dense", "full"), default="head",
                   help="head: output layer only; last_dense: and the layer before; full: all, at lr x0.1")
    p.add_argument("--folds", type=_positive, default=5)
    p.add_argument("--group-regex", metavar="REGEX", help="subject id from file names, e.g. '^(S\\d+)_': "
                   "no subject in two folds")
    p.add_argument("--epochs", type=_positive, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="keep the classifier retrained on all folds")
    p.add_argument("--experiment", default="transfer", help="MLflow experiment (default: transfer)")
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_transfer)

    p = sub.add_parser("suggest-labels", help="which model class each target class resembles (nothing applied)")
    p.add_argument("model_dir")
    p.add_argument("--data", required=True, metavar="FOLDER")
    p.add_argument("--source-data", metavar="PATH", help="the model's training data for the mean faces "
                   "(default: the spec's, the bundled sample unless told otherwise)")
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_suggest_labels)

    p = sub.add_parser("predict", help="emotion of face images (each resized to grey 48x48)")
    p.add_argument("model_dir")
    p.add_argument("images", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_predict)

    for name, help_text in (("mirror", "label the faces of a webcam, video or photo with their emotion"),
                            ("rehearse", "score a rehearsal video against a script of expected emotions")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("model_dir")
        if name == "mirror":
            p.add_argument("--source", required=True, help="webcam, a camera index, a video or an image file")
            p.add_argument("--out", metavar="FILE", help="the annotated video (.mp4/.avi) or image")
            p.add_argument("--show", action="store_true", help="open a window (needs a display); q quits")
            p.add_argument("--timeline", metavar="PNG", help="the main face's emotions over time")
            p.add_argument("--jsonl", metavar="FILE", help="one JSON line per frame")
            p.add_argument("--json", action="store_true", help="print the run summary as JSON")
            p.set_defaults(run=cmd_mirror)
        else:
            p.add_argument("--script", required=True, metavar="JSON", help="segments: start, end, line, expected")
            p.add_argument("--source", required=True, help="the rehearsal video (or webcam / a camera index)")
            p.add_argument("--out", required=True, metavar="REPORT", help="report.md or report.html")
            p.add_argument("--timeline", metavar="PNG", help="detected curves over expected bands")
            p.set_defaults(run=cmd_rehearse)
        p.add_argument("--runtime", choices=("keras", "onnx", "tflite"),
                       help="check the model directory runs on this runtime (default: whatever it holds)")
        p.add_argument("--mode", help="combining mode (tree: soft or hard; ensemble: soft, weighted or hard)")
        p.add_argument("--smoothing", type=_fraction, default=0.6,
                       help="weight of the past in the per-face moving average, 0 = none (default 0.6)")
        p.add_argument("--detect-width", type=_positive, default=320, help="detect on frames downscaled to this width")
        p.add_argument("--min-face", type=_positive, default=40, help="smallest face in pixels (default 40)")
        p.add_argument("--max-frames", type=_positive, help="stop after this many frames")

    p = sub.add_parser("export", help="write a trained classifier as ONNX, TFLite or SavedModel networks")
    p.add_argument("model_dir")
    p.add_argument("--format", required=True, choices=("onnx", "tflite", "savedmodel"))
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("suggest", help="propose a class hierarchy from a flat classifier's confusions")
    p.add_argument("model", metavar="MODEL_DIR|RUN_ID")
    p.add_argument("--data", metavar="PATH")
    p.add_argument("--split", default="Validation", help="where the confusions are counted (default Validation)")
    p.add_argument("--method", choices=("agglomerative", "spectral"), default="agglomerative")
    p.add_argument("--max-children", type=_positive, default=2)
    p.add_argument("--out", required=True, metavar="trees/NAME.json")
    p.set_defaults(run=cmd_suggest)

    p = sub.add_parser("compare-trees", help="train specs under one budget and rank them with a paired test")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--data", metavar="PATH")
    p.add_argument("--seeds", type=_positive, default=1, help="seeds 0..N-1 for every spec (default 1)")
    p.add_argument("--epochs", type=_positive, help="the same epochs for every network of every spec")
    p.add_argument("--quick", action="store_true", help="smoke budget: 1 epoch, <= 512 faces per network")
    p.add_argument("--experiment", default="compare-trees", help="the one MLflow experiment holding every run")
    p.add_argument("--json", action="store_true")
    _parallel_arguments(p)
    p.set_defaults(run=cmd_compare_trees)

    p = sub.add_parser("compare", help="cnntree runs in the MLflow store as a table")
    p.add_argument("--experiment")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_compare)
    return parser


def _parallel_arguments(p) -> None:
    p.add_argument("--jobs", type=_positive, default=1, metavar="N",
                   help="train up to N networks at once in local processes, sharing the cores")
    p.add_argument("--ray", metavar="ADDRESS", help="train the networks as tasks on a Ray cluster (an address, "
                   "'auto', or 'local' to start one here); needs pip install 'cnntree[ray]'")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value}")
    return value


def _quiet_libraries() -> None:
    """Library chatter (TensorFlow retracing notes, MLflow hints) is not for cnntree's users."""
    import logging
    import warnings

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow\..*")


def main(argv=None) -> int:
    _quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("CNNTREE_DEBUG") == "1"
    try:
        return args.run(args)
    except CnnTreeError as error:
        print(f"cnntree: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnntree: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # an internal error: one line, traceback on request
        if debug:
            traceback.print_exc()
        print(f"cnntree: internal error: {type(error).__name__}: {error} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
