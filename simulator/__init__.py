"""The built-in SMS-panel business: its world, its export and the truth behind it.

config.py (the `simulate` section, checked), engine.py (the day loop), rules.py (the laws
the loop and the truth share), activity.py (a day of sending, top-ups, tickets, NPS),
truth.py (the re-simulated truth), export.py (Arrow tables for the sink).

Imports nothing itself: reading params.yaml loads the config, not the engine.
"""
