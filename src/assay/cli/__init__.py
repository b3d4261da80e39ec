"""The command line: Typer commands that call the audit layer and print through the renderers."""
