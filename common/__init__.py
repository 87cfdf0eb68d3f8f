"""What every package shares: the error a user can fix, and math with the same bits on
every CPU."""
