"""The no-Docker local setup: local stand-ins for the object stores, settings loader, Airflow runner.

Tooling, not product: ``include/`` holds the product. Astro's image build copies the whole project,
this folder included (``.dockerignore`` only leaves out its ``node/node_modules`` and ``.local``),
but nothing in the image imports it.
"""
