"""Learning and scoring: splits, baselines, LightGBM, calibration, evaluation, the registry."""
