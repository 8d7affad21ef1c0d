"""The API server's job: the UI plugin's web app (``app.py``) and the previews it shows (``preview.py``).

Loaded only by the API server, on the plugin's first request; a task process never imports it.
"""
