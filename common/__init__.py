"""What every package shares: the error a user can fix."""
