"""Statistics on arrays: pure NumPy/SciPy, no storage, no rendering."""
