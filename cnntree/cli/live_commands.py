"""Commands on live video: mirror (label every face of a webcam, video or photo), rehearse, and
serve (the mirror as a web page)."""

from __future__ import annotations

from pathlib import Path

from ..compose.answers import node_answers
from ..errors import CnnTreeError
from ..files import check_output_file
from ..live.configure import make_mirror
from ..live.mirror import check_outputs, open_source, run_mirror
from ..live.rehearse import rehearse
from ..models import load_model
from .model_args import chosen_hierarchy, model_argument, test_time_argument
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


def mirror_for(args, clf):
    """The mirror the shared options describe."""
    return make_mirror(clf, args.model_dir, args.runtime, args.mode, args.smoothing, args.detect_width, args.min_face,
                       args.explain, getattr(args, "coverage", None), chosen_hierarchy(args))


class MirrorCommand:
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
        args.opened = open_source(args.source)
        check_outputs(args.opened, args.out, args.show)
        for option in ("out", "timeline", "jsonl"):
            if getattr(args, option):
                check_output_file(getattr(args, option), f"--{option}")

    @staticmethod
    def run(args) -> dict:
        clf = load_model(args.model_dir, args.test_time)
        run = run_mirror(mirror_for(args, clf), args.opened, out=args.out, jsonl=args.jsonl, timeline=args.timeline,
                         show=args.show, max_frames=args.max_frames, printer=info)
        return {**run.summary(), "runtime": clf.runtime}

    @staticmethod
    def text(summary) -> str:
        lines = [f"{summary['source']}: {summary['frames']} frame(s), {summary['faces']} face(s) in "
                 f"{summary['frames_with_faces']} frame(s), {summary['fps'] or 0:.1f} frames/s on the "
                 f"{summary['runtime']} runtime"]
        for face in summary["tracks"]:
            x, y, w, h = face["box"]
            seen = "" if summary["frames"] == 1 else f", {face['frames']} frame(s), mean over them"
            lines.append(f"face {face['track']} at {x},{y} {w}x{h}: {face['label']} {face['probability']:.2f}{seen}")
        lines += [f"wrote {path} ({name})" for name, path in summary["outputs"].items()]
        return "\n".join(lines)


class Rehearse:
    @staticmethod
    def add_arguments(p):
        model_argument(p, optional=True)
        p.add_argument("--script", required=True, metavar="JSON", help="segments: start, end, line, expected")
        p.add_argument("--source", required=True, help="the rehearsal video (or webcam / a camera index)")
        p.add_argument("--out", required=True, metavar="REPORT", help="report.md or report.html")
        p.add_argument("--timeline", metavar="PNG", help="detected curves over expected bands")
        add_mirror_options(p)

    @staticmethod
    def run(args) -> dict:
        clf = load_model(args.model_dir)
        rows = rehearse(mirror_for(args, clf), args.script, args.source, args.out, args.timeline, args.max_frames)
        return {"segments": rows, "out": args.out, "timeline": args.timeline}

    @staticmethod
    def text(found) -> str:
        lines = []
        for i, r in enumerate(found["segments"], 1):
            score = f"{r['score']:.2f}" if r["score"] is not None else "  - "
            lines.append(f"{i:2d} {r['start']:6.1f}-{r['end']:<6.1f} expected {r['expected']:9s} dominant "
                         f"{r['dominant'] or '-':9s} score {score}  {r['verdict']}")
        return "\n".join([*lines, f"wrote {found['out']}" + (f" and {found['timeline']}" if found["timeline"] else "")])


class Serve:
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
    def run(args) -> None:
        import uvicorn  # the web server loads only for this command

        from ..live.serve import Served, create_app

        clf = load_model(args.model_dir)
        answers = node_answers(clf, args.coverage, chosen_hierarchy(args)) if args.coverage else None
        served = Served(clf, Path(str(args.model_dir)).name, args.max_clients, answers, args.smoothing)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"cnntree mirror: http://{host}:{args.port}/  (Ctrl-C stops it)", flush=True)
        uvicorn.run(create_app(served), host=args.host, port=args.port, log_level="warning")


COMMANDS = {"mirror": MirrorCommand, "rehearse": Rehearse, "serve": Serve}
