import subprocess

from .helpers import ROOT


def readme_commands():
    out = subprocess.run(["awk", '/^```sh$/{inside=1; next} inside && /^```/{exit} inside', "README.md"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return out.splitlines()


def test_readme_has_one_install_and_one_test_command():
    install, test = readme_commands()
    assert install == 'pip install -e ".[test]"'
    assert test.startswith("python -m pytest")


def test_ci_runs_the_readme_commands_and_fails_on_no_tests():
    script = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in script and 'eval "$install"' in script and 'eval "$test"' in script
    assert '"$status" -eq 5' in script and "exit 1" in script


def test_runs_folder_is_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "runs/" in ignored and ".cache/" in ignored
