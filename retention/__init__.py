"""The classic retention report as a pure library: periods, CRR / churn / NRR / NPS per period,
cohort curves, the shifted-beta-geometric projection and the two customer values.

No files, no CLI, no tracking: the `churn report` stage reads the tables and writes the outputs.
"""
