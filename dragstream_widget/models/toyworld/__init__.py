"""The embedded toy world model."""
