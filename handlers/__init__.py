"""mailcheck handlers package."""
