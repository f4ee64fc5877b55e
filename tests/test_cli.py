import json
import subprocess
import sys

import numpy as np
import pytest

from cnntree.cli.registry import REGISTRY

from .helpers import FULL_FER2013, MORAVCIK, ROOT, run_cli, run_cli_process


def test_validate_ok_and_misspelt_class(tmp_path):
    code, out, err = run_cli("validate", MORAVCIK)
    assert code == 0 and "ok (tree \"moravcik\"" in out
    bad = tmp_path / "x.json"
    bad.write_text((ROOT / "trees" / "moravcik.json").read_text().replace('"fear", "NN2"', '"feer", "NN2"'))
    code, out, err = run_cli("validate", bad)
    assert code == 2
    assert err.strip() == (f'cnntree: error: {bad}: nodes[0].children[0]: unknown class or node "feer" '
                           '(did you mean "fear"?)')
    assert "Traceback" not in err and out == ""


def test_every_shipped_spec_validates(capsys):
    from cnntree.cli import main

    paths = sorted((ROOT / "trees").glob("*.json"))
    assert len(paths) >= 10
    for path in paths:
        assert main(["validate", str(path)]) == 0, capsys.readouterr().err
        assert capsys.readouterr().out.startswith(f"{path}: ok")


def test_show_prints_tree_and_draws_png(tmp_path):
    png = tmp_path / "tree.png"
    code, out, err = run_cli("show", MORAVCIK, "--png", png)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].startswith("NN1  [vgg(blocks=3) | balance one_vs_rest]")
    assert "├── fear" in lines[2] and "└── NN2" in lines[3]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import cv2

    picture = cv2.imread(str(png))
    assert picture.shape[0] > 300 and picture.shape[1] > 600 and picture.std() > 10


def test_data_json_contract_on_the_sample():
    code, out, err = run_cli("data", MORAVCIK, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["splits"] == {"Training": 1134, "Validation": 126, "PublicTest": 245, "PrivateTest": 245}
    nodes = {n["id"]: n for n in report["nodes"]}
    assert list(nodes) == ["NN1", "NN2", "NN3", "NN4"]
    assert nodes["NN1"]["groups"] == [["fear"], ["angry", "disgust", "happy", "sad", "surprise", "neutral"]]
    assert nodes["NN1"]["before"] == [162, 972] and nodes["NN1"]["after"] == [162, 162]
    assert nodes["NN2"]["after"] == [389, 389]


def test_data_reports_bad_rows_with_skip(tmp_path, sample):
    from .helpers import rows_from, write_csv

    rows = rows_from(sample, 20)
    rows[3] = (rows[3][0], "1 2 3", rows[3][2])
    csv = write_csv(tmp_path / "d.csv", rows)
    spec = tmp_path / "s.json"
    spec.write_text('{"name": "s", "kind": "single", "data": {"split": "random"}}')
    code, out, err = run_cli("data", spec, "--data", csv)
    assert code == 2 and err.strip() == f"cnntree: error: {csv}: line 5: 3 pixel values, expected 2304 (48x48) " \
                                        "(use --skip-bad to skip bad rows)"
    code, out, err = run_cli("data", spec, "--data", csv, "--skip-bad", "--json")
    assert code == 0 and "skipped 1 bad input(s); first: line 5" in err
    assert sum(json.loads(out)["splits"].values()) == 139


def test_unexpected_arguments_exit_2():
    code, out, err = run_cli("validate")
    assert code == 2 and "usage:" in err


def test_console_script_is_installed():
    exe = "cnntree.exe" if sys.platform == "win32" else "cnntree"
    path = subprocess.run([sys.executable, "-c", "import shutil,sys,os;"
                           "print(shutil.which('cnntree', path=os.path.dirname(sys.executable)) or '')"],
                          capture_output=True, text=True).stdout.strip()
    assert path.endswith(exe)


@pytest.mark.slow
@pytest.mark.skipif(not FULL_FER2013.exists(), reason="full FER2013 not available")
def test_data_on_full_fer2013():
    code, out, err = run_cli("data", MORAVCIK, "--data", FULL_FER2013, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["splits"] == {"Training": 25837, "Validation": 2872, "PublicTest": 3589, "PrivateTest": 3589}
    nodes = {n["id"]: n for n in report["nodes"]}
    assert nodes["NN1"]["before"] == [3687, 22150] and nodes["NN1"]["after"] == [3687, 3687]
    assert nodes["NN4"]["before"] == [392, 6493, 2854] and nodes["NN4"]["after"] == [5194] * 3


@pytest.mark.slow
def test_augment_preview_grid(tmp_path):
    import cv2

    out = tmp_path / "grid.png"
    code, stdout, err = run_cli("augment", MORAVCIK, "--node", "NN3", "--out", out, "--scale", "1")
    assert code == 0, err
    assert "rotation=40.0" in stdout and "rows: angry, sad, neutral" in stdout
    grid = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    # each engine: 2 faces per group x 3 groups, 8 columns, 2-pixel frames; a 6-pixel bar between them
    assert grid.shape == (2 * 6 * 52 + 6, 8 * 52)
    for top in (0, 6 * 52 + 6):  # albumentations above, the batch engine below
        first, second = grid[top + 2:top + 50, 2:50], grid[top + 2:top + 50, 54:102]
        assert not (first == second).all()  # augmented copies differ from the original
    np.testing.assert_array_equal(grid[2:50, 2:50], grid[6 * 52 + 8:6 * 52 + 56, 2:50])  # the same originals
    code, _, err = run_cli("augment", MORAVCIK, "--node", "NN9", "--out", out)
    assert code == 2 and 'no node "NN9" (did you mean "NN4"?)' in err


def test_every_option_of_every_command_is_described():
    import argparse

    from cnntree.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}"
               for name, sub in commands.choices.items() for action in sub._actions
               if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()]
    assert missing == []
    assert len(commands.choices) == 20


def test_only_the_chosen_commands_module_is_imported():
    """``cnntree validate`` reads its spec without loading the modules of the other 19 commands
    (nor Keras, MLflow or OpenCV); ``cnntree --help`` lists every command all the same."""
    code = ("import sys; from cnntree.cli import main\n"
            f"code = main(['validate', {str(MORAVCIK)!r}])\n"
            "loaded = sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.endswith('_commands'))\n"
            "print(code, loaded, [m for m in ('keras', 'mlflow', 'cv2') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines()[-1] == "0 ['spec_commands'] []", proc.stderr
    listed = subprocess.run([sys.executable, "-m", "cnntree.cli", "--help"], capture_output=True, text=True,
                            timeout=60).stdout
    assert all(command.name in listed for command in REGISTRY) and "serve" in listed


def test_a_fresh_validate_prints_only_its_own_line():
    code, out, err = run_cli_process("validate", MORAVCIK)
    assert code == 0 and err == "" and out.count("\n") == 1


@pytest.mark.slow
def test_a_command_that_loads_the_backend_is_quiet_and_ends_promptly_losing_nothing(tmp_path, tiny_model, sample):
    """No CUDA probes or absl notices on standard error, only how the image was read. ``cnntree``
    (``cli.run``) ends with ``os._exit`` once the backend is loaded: the exit status is the command's
    (143 after SIGTERM: tests/hostile/test_faults.py), a thread still writing finishes, an idle thread
    pool (MLflow downloads with one) does not hold the exit, exit handlers run and what they print arrives."""
    import cv2

    cv2.imwrite(str(tmp_path / "face.png"), sample.images[0])
    code = ("import atexit, sys, threading, time\nfrom pathlib import Path\nfrom cnntree import cli\n"
            "atexit.register(lambda: print('exit handler ran'))\n"
            "threading.Thread(target=lambda: (time.sleep(1), Path('late.txt').write_text('done'))).start()\n"
            "from concurrent.futures import ThreadPoolExecutor\npool = ThreadPoolExecutor(1)\npool.submit(int).result()\n"
            f"sys.argv = ['cnntree', 'predict', {str(tiny_model)!r}, 'face.png', '--json']\ncli.run()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "face.png: whole image (a face crop: 48x48)\n", proc.stderr
    assert json.loads(proc.stdout.rsplit("exit handler ran", 1)[0])[0]["image"] == "face.png"
    assert proc.stdout.endswith("exit handler ran\n") and (tmp_path / "late.txt").read_text() == "done"


def test_an_internal_error_is_one_line_and_debug_shows_its_traceback(monkeypatch):
    from cnntree.cli import spec_commands

    def broken(args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(spec_commands.Validate, "run", staticmethod(broken))
    code, _, err = run_cli("validate", MORAVCIK)
    assert code == 1 and err == ("cnntree: internal error: RuntimeError: disk on fire (run with --debug for the "
                                 "traceback)\n")
    code, _, err = run_cli("--debug", "validate", MORAVCIK)
    assert code == 1 and err.startswith("Traceback (most recent call last):") and "disk on fire" in err
