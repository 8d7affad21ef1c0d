# Astro Runtime 3.3-2 = Apache Airflow 3.3.2 (Python 3.12) with the celery, common-compat, common-io,
# common-sql, elasticsearch, openlineage, smtp and standard providers; no Amazon, Google, Azure or
# HTTP provider: requirements.txt adds them. Its ONBUILD steps apt-get install packages.txt, then run
# plain `pip install --no-cache-dir -r requirements.txt`, then copy the project (.dockerignore applies).
# `python -m localdev.astro_image` replays the build, `astro dev pytest` and `astro dev parse` without Docker.
FROM astrocrpublic.azurecr.io/runtime:3.3-2
