"""The chaos driver's scenarios and the toolkit they share (`tests/chaos/chaos.py` runs them)."""
