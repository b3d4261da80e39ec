"""The demo: bundled real data, a synthetic ledger, and the report built from them."""
