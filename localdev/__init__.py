"""The no-Docker local setup: local stand-ins for the object stores, settings loader, Airflow runner.

Not part of the Astro image (see .dockerignore): ``include/`` holds the product, this holds tooling.
"""
