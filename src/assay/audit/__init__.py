"""The one layer that joins storage and statistics: evidence, audits, monitors, reports."""
