"""cnntree: hierarchical ensembles of convolutional networks for facial expression recognition."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users

__version__ = "0.1.0"
