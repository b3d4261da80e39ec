"""The HTTP service behind ``assay serve``: the FastAPI app, API keys, limits, batches, stores."""
