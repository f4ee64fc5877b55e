"""The evaluation family: metrics on a labelled split (flat, calibration, hierarchical, per
network), the reports and pictures written from them, and explanations of a prediction."""
