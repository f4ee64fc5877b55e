"""The combining family: how the networks' outputs become one answer. Routing along a tree's
paths and voting in an ensemble, calibration, hierarchical answers (conformal climbing), the
checks at the estimator's edges, and a model folder's parts read back."""
