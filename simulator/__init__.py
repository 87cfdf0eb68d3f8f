"""The built-in SMS-panel business: its world, its export and the truth behind it.

config.py (the `simulate` section, checked), engine.py (the day loop), rules.py (the laws
the loop and the truth share), activity.py (a day of sending, top-ups, tickets, NPS),
truth.py (the re-simulated truth), export.py (Arrow tables for the sink).
"""

from simulator.config import ChannelConfig, PlanConfig, SimulateConfig, WorldConfig
from simulator.engine import SimSummary, simulate
from simulator.export import Sink

__all__ = ["ChannelConfig", "PlanConfig", "SimSummary", "SimulateConfig", "Sink", "WorldConfig",
           "simulate"]
