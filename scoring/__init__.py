"""Weekly scoring: who is at risk now, how sure, what they are worth, why, and what to do."""
