"""Gradio-side helpers of the studio: input fetching and decoding, errors, UI and API glue."""
