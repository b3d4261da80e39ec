"""Renderers for audits: HTML (self-contained), JSON (re-runnable) and the terminal (Rich)."""
