"""The workflows family: what a command does from start to end, as library functions that return
their results: train a spec (and log it), transfer a model, compare specs under one budget, refit a
model's calibration or answer thresholds."""
