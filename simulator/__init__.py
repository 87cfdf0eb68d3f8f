"""The built-in SMS-panel business: its world, its export and the truth behind it."""
