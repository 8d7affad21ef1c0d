"""The operator's job: the command line (``python -m include.xcom_backends.ops``), the preflight
check (``doctor.py``) and the clean-up of orphaned objects (``gc.py``). Runs outside a task."""
