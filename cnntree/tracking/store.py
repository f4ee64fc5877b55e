"""The MLflow store: where runs go (``sqlite:///runs/mlflow.db`` unless ``MLFLOW_TRACKING_URI`` says
otherwise), checked before any work, and the experiment every run lands in."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import mlflow

from ..data.load import cache_dir
from ..errors import CnnTreeError
from ..files import check_output_file, lock_file, open_regular, write_atomically

RUNS = Path("runs")
DEFAULT_URI = f"sqlite:///{RUNS}/mlflow.db"
SERVER_TIMEOUT = 5.0  # seconds an HTTP tracking server has to answer its health check
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, or the local store ``sqlite:///runs/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def absolute_uri(uri: str) -> str:
    """A sqlite URI with an absolute path: MLflow caches a store per URI, so a relative one would
    keep writing where the process stood first, and a worker in another folder would miss it."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def check_server(uri: str) -> None:
    """Fail at once, before any training, when an HTTP tracking server does not answer.

    cnntree does not fall back to the local store: runs logged where the user did not look are
    as good as lost. MLflow itself would retry for minutes first.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=SERVER_TIMEOUT):
            pass
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CnnTreeError(f"MLflow server {uri}: unreachable ({reason}); start it, or unset MLFLOW_TRACKING_URI "
                           f"to log to the local store {DEFAULT_URI}") from None


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for a server or another scheme)."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "mysql", "mssql", "databricks")  # what MLflow opens


def check_uri(uri: str) -> None:
    """Fail at once on a tracking URI MLflow would refuse late, retry on for minutes or answer with
    tracebacks: an unknown scheme, ``sqlite://`` without a file path, a bad port, Databricks
    without credentials."""
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    scheme = "databricks" if uri.split(":")[0] == "databricks" else parsed.scheme.split("+")[0]
    if scheme not in SCHEMES:
        raise CnnTreeError(f"MLflow store {uri}: unknown scheme {parsed.scheme!r}; use sqlite:///path/to/mlflow.db "
                           "or http(s)://host:port of an MLflow server (MLFLOW_TRACKING_URI)")
    if scheme == "sqlite" and not uri.startswith("sqlite:///"):
        raise CnnTreeError(f"MLflow store {uri}: a sqlite store is sqlite:///relative/path.db or "
                           "sqlite:////absolute/path.db (three or four slashes)")
    if scheme in ("http", "https"):
        if not _valid_port(parsed):
            raise CnnTreeError(f"MLflow store {uri}: the port is not a number from 0 to 65535")
        if not parsed.hostname:
            raise CnnTreeError(f"MLflow store {uri}: no host")
    if scheme == "databricks" and not (os.environ.get("DATABRICKS_HOST") or Path("~/.databrickscfg").expanduser().exists()):
        raise CnnTreeError(f"MLflow store {uri}: no Databricks credentials (DATABRICKS_HOST and DATABRICKS_TOKEN, "
                           "or ~/.databrickscfg)")


def _valid_port(parsed) -> bool:
    try:
        return parsed.port is None or parsed.port >= 0
    except ValueError:
        return False


def check_store(uri: str) -> None:
    """Fail at once, in one line, when the store cannot work: a URI MLflow would refuse, an HTTP
    server that does not answer, or a sqlite path that is a folder, a file that is not an SQLite
    database, read-only, or in a folder that cannot be created."""
    check_uri(uri)
    check_server(uri)
    database = sqlite_file(uri)
    if database is None:
        return
    if database.is_dir():
        raise CnnTreeError(f"MLflow store {uri}: {database} is a folder, not an SQLite database file")
    if database.exists() and (not os.access(database, os.W_OK) or not database.stat().st_mode & 0o222):
        raise CnnTreeError(f"MLflow store {uri}: {database} is read-only; cnntree logs runs there")
    check_output_file(database, f"MLflow store {uri}:")
    if database.exists() and database.stat().st_size:
        with open_regular(database, "MLflow store") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise CnnTreeError(f"MLflow store {uri}: {database} is not an SQLite database; point "
                                   "MLFLOW_TRACKING_URI at another file or move this one away")


def connect() -> str:
    """Check the store (see :func:`check_store`) and point MLflow at it; returns its URI."""
    uri = tracking_uri()
    check_store(uri)
    if uri == DEFAULT_URI:
        RUNS.mkdir(exist_ok=True)
    given = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(absolute_uri(uri))  # MLflow also exports it to the environment; keep the
    if given is None:                            # user's setting there: tracking_uri() reads it
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = given
    return uri


def use_experiment(name: str) -> str:
    """Point MLflow at the store and the experiment ``name`` (created on first use, tagged as model
    training so the MLflow UI opens on its runs); returns the experiment id."""
    uri = connect()
    with _store_lock(uri):
        database = sqlite_file(absolute_uri(uri))
        if database is not None and not (database.exists() and database.stat().st_size):
            _seed(database)
        return _use_experiment(uri, name)


def _seed(database: Path) -> None:
    """Start a new sqlite store as a copy of an empty one MLflow has already migrated, kept in the
    cache once per MLflow version: MLflow's migrations take 1.5-3 s in every new folder. The copy
    holds no experiment; MLflow adds its Default one, with this folder's artifact root, on opening
    it. Where the cache cannot be written, MLflow creates the store itself."""
    template = cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"
    try:
        if not template.is_file():
            template.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=template.parent) as scratch:
                fresh = Path(scratch) / "mlflow.db"
                with quiet_mlflow():
                    mlflow.MlflowClient(f"sqlite:///{fresh}").search_experiments()
                with contextlib.closing(sqlite3.connect(fresh)) as db, db:
                    db.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
                    db.execute("DELETE FROM experiments WHERE experiment_id = 0")
                os.replace(fresh, template)
        write_atomically(database, lambda copy: shutil.copyfile(template, copy))
    except (OSError, sqlite3.Error, mlflow.exceptions.MlflowException):
        return


@contextlib.contextmanager
def _store_lock(uri: str):
    """Serialise the first touch of a sqlite store across processes: MLflow creates and migrates its
    tables then, and two processes doing it at once fail ("duplicate column")."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    database = Path(uri[len("sqlite:///"):])
    handle = lock_file(database.parent / f".{database.name}.lock", wait=True)
    try:
        yield
    finally:
        handle.close()


def artifact_folder(name: str) -> str:
    """The folder under ``runs/artifacts`` of the experiment ``name``: the name itself when it is a
    plain folder name, else its letters and digits with a digest (an absolute path or ``..`` as an
    experiment name must not put artifacts outside ``runs``)."""
    import hashlib
    import re

    plain = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:64] or "experiment"
    return plain if plain == name else f"{plain}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _use_experiment(uri: str, name: str) -> str:
    try:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            location = (RUNS / "artifacts" / artifact_folder(name)).resolve().as_uri() if uri == DEFAULT_URI else None
            experiment_id = mlflow.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND: MODEL_TRAINING})
        else:
            experiment_id = experiment.experiment_id
            if EXPERIMENT_KIND not in experiment.tags:
                mlflow.MlflowClient().set_experiment_tag(experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
        mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id
    except mlflow.exceptions.MlflowException as error:
        raise CnnTreeError(f"MLflow store {uri}: {str(error).splitlines()[0]}") from None


@contextlib.contextmanager
def quiet_mlflow():
    """MLflow's advice on type hints and pickling, and its copy progress bars, are not for cnntree's
    users: their console shows cnntree's progress and results only."""
    import logging
    import warnings

    logger = logging.getLogger("mlflow")
    level, bar = logger.level, os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    logger.setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar
