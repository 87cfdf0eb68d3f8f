"""One module per `churn` subcommand: each `run()` takes params and returns a summary."""
