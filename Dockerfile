# Astro Runtime 3.3 = Apache Airflow 3.3.x with the Amazon, Google and Azure providers.
FROM astrocrpublic.azurecr.io/runtime:3.3-2
