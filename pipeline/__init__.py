"""The edge: the CLI, params, stage folders, engines, MLflow tracking, one module per stage."""
