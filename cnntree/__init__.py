"""cnntree: hierarchical ensembles of convolutional networks for facial expression recognition."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter is not for users
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # nor MLflow's notes on creating its tables

__version__ = "0.1.0"
