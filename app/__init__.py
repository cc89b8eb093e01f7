"""The studio's Gradio UI (thin: every signal operation is a foley_core call).

`app.serve` is what `python launch.py` runs; `app.studio.build_app()` builds the Blocks from
the panels in `app.panels` (one module per panel: its components and its events);
`app.session.Session` is one browser session's state and operations (testable without gradio).
"""
