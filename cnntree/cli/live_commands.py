"""Commands on live video: mirror (label every face of a webcam, video or photo), rehearse, and
serve (the mirror as a web page)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CnnTreeError
from ..models import load_model
from .model_args import model_argument, test_time_argument
from .options import FRACTION, add_coverage, add_json, count, info


def add_mirror_options(p) -> None:
    """The options the mirror and rehearsal share (runtime, mode, smoothing, detection)."""
    p.add_argument("--runtime", choices=("keras", "onnx", "tflite"),
                   help="check the model directory runs on this runtime (default: whatever it holds)")
    p.add_argument("--mode", help="combining mode (tree: soft or hard; ensemble: soft, weighted or hard)")
    p.add_argument("--smoothing", type=FRACTION, default=0.6,
                   help="weight of the past in the per-face moving average, 0 = none (0-0.99, default 0.6)")
    p.add_argument("--detect-width", type=count(32, 8192), default=320,
                   help="detect on frames downscaled to this width (32-8192, default 320)")
    p.add_argument("--min-face", type=count(8, 4096), default=40, help="smallest face in pixels (8-4096, default 40)")
    p.add_argument("--max-frames", type=count(1, 10**9), help="stop after this many frames")
    p.add_argument("--explain", nargs="?", const="gradcam", choices=("gradcam", "saliency"),
                   help="overlay the main face's heat map (Grad-CAM, or saliency); Keras model folders only")


def make_mirror(args, clf):
    """The mirror for a loaded classifier, its settings checked before any frame."""
    from ..live.detect import FaceDetector, FaceTracker
    from ..live.mirror import Mirror

    if args.runtime and clf.runtime != args.runtime:
        raise CnnTreeError(f"--runtime {args.runtime}: {args.model_dir} holds {clf.runtime} networks; make a "
                           f"{args.runtime} copy with: cnntree export {args.model_dir} --format {args.runtime} --out DIR")
    clf.combiner(args.mode)  # an unknown mode fails before any frame
    detector = FaceDetector(detect_width=args.detect_width, min_face=args.min_face)
    return Mirror(clf, detector, FaceTracker(smoothing=args.smoothing), mode=args.mode, explain=args.explain,
                  answers=node_answers(args, clf))


def node_answers(args, clf):
    """With ``--coverage``: faces are named by the hierarchy's node at that coverage (and the
    guarantee is said once); None otherwise."""
    if not getattr(args, "coverage", None):
        return None
    from ..compose import answers
    from .model_args import chosen_hierarchy

    hierarchy = answers.hierarchy_for(clf, chosen_hierarchy(args))
    info(f"hierarchy {hierarchy.name}, coverage {args.coverage:g}: " + answers.guarantee(clf, hierarchy, args.coverage))
    return answers.NodeAnswers(hierarchy, answers.threshold(clf, hierarchy, args.coverage)["threshold"])


class MirrorCommand:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "mirror", "label the faces of a webcam, video or photo with their emotion"

    @staticmethod
    def add_arguments(p):
        model_argument(p, optional=True)
        p.add_argument("--source", required=True, help="webcam, a camera index, a video or an image file")
        p.add_argument("--out", metavar="FILE", help="the annotated video (.mp4/.avi/.mkv) or image")
        p.add_argument("--show", action="store_true", help="open a window (needs a display); q quits")
        p.add_argument("--timeline", metavar="PNG", help="the main face's emotions over time")
        p.add_argument("--jsonl", metavar="FILE", help="one JSON line per frame")
        test_time_argument(p)
        add_coverage(p)
        add_json(p)
        add_mirror_options(p)

    @staticmethod
    def check(args):
        """A bad source or output fails at once, before the model and the backend load."""
        from ..files import check_output_file
        from ..live.mirror import check_outputs, open_source

        args.opened = open_source(args.source)
        check_outputs(args.opened, args.out, args.show)
        for option in ("out", "timeline", "jsonl"):
            if getattr(args, option):
                check_output_file(getattr(args, option), f"--{option}")

    @staticmethod
    def run(args) -> int:
        from ..live.mirror import run_mirror

        source = args.opened
        clf = load_model(args.model_dir, args.test_time)
        run = run_mirror(make_mirror(args, clf), source, out=args.out, jsonl=args.jsonl, timeline=args.timeline,
                         show=args.show, max_frames=args.max_frames, printer=info)
        summary = run.summary()
        if args.json:
            print(json.dumps(summary, indent=2))
            return 0
        print(f"{summary['source']}: {summary['frames']} frame(s), {summary['faces']} face(s) in "
              f"{summary['frames_with_faces']} frame(s), {summary['fps'] or 0:.1f} frames/s on the {clf.runtime} runtime")
        for face in summary["tracks"]:
            x, y, w, h = face["box"]
            seen = "" if summary["frames"] == 1 else f", {face['frames']} frame(s), mean over them"
            print(f"face {face['track']} at {x},{y} {w}x{h}: {face['label']} {face['probability']:.2f}{seen}")
        for name, path in summary["outputs"].items():
            print(f"wrote {path} ({name})")
        return 0


class Rehearse:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "rehearse", "score a rehearsal video against a script of expected emotions"

    @staticmethod
    def add_arguments(p):
        model_argument(p, optional=True)
        p.add_argument("--script", required=True, metavar="JSON", help="segments: start, end, line, expected")
        p.add_argument("--source", required=True, help="the rehearsal video (or webcam / a camera index)")
        p.add_argument("--out", required=True, metavar="REPORT", help="report.md or report.html")
        p.add_argument("--timeline", metavar="PNG", help="detected curves over expected bands")
        add_mirror_options(p)

    @staticmethod
    def run(args) -> int:
        from ..files import check_output_file
        from ..live.mirror import open_source, run_mirror
        from ..live.rehearse import check_report_path, load_script, report, score_segments
        from ..plots import draw_timeline

        check_report_path(args.out)
        check_output_file(args.out, "--out")
        if args.timeline:
            check_output_file(args.timeline, "--timeline")
        clf = load_model(args.model_dir)
        classes = list(clf.spec_.classes)
        segments = load_script(args.script, classes)
        source = open_source(args.source)
        if source.kind == "image":
            raise CnnTreeError(f"--source {args.source}: rehearsal needs a video or a camera, not an image")
        run = run_mirror(make_mirror(args, clf), source, max_frames=args.max_frames, printer=info)
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


class Serve:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "serve", "the live mirror as a local web page: webcam, labels, timeline, rehearsal, uploads"

    @staticmethod
    def add_arguments(p):
        model_argument(p, optional=True)
        p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this "
                       "machine only; from another machine, use an SSH tunnel: browsers give the camera to "
                       "localhost and https pages only)")
        p.add_argument("--port", type=count(1, 65535), default=8000, help="the port (default 8000)")
        p.add_argument("--max-clients", type=count(1, 64), default=4, help="browsers served at once (1-64, default 4)")
        p.add_argument("--smoothing", type=FRACTION, default=0.6,
                       help="weight of the past in the per-face moving average, 0 = none (0-0.99, default 0.6)")
        add_coverage(p)

    @staticmethod
    def check(args):
        """The address must be free before the model loads."""
        import socket

        with socket.socket() as probe:
            try:
                probe.bind((args.host, args.port))
            except OSError as error:
                raise CnnTreeError(f"--host {args.host} --port {args.port}: cannot listen there ({error.strerror}); "
                                   "give another --host or --port") from None

    @staticmethod
    def run(args) -> int:
        import uvicorn

        from ..live.serve import Served, create_app

        clf = load_model(args.model_dir)
        served = Served(clf, Path(str(args.model_dir)).name, args.max_clients, node_answers(args, clf), args.smoothing)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"cnntree mirror: http://{host}:{args.port}/  (Ctrl-C stops it)", flush=True)
        uvicorn.run(create_app(served), host=args.host, port=args.port, log_level="warning")
        return 0


COMMANDS = [MirrorCommand, Rehearse, Serve]
