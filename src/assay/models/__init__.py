"""Registered models: artefacts stored by fingerprint, scoring through the ledger, replay."""
