"""The tutorial's second DAG: a dict and then a pandas DataFrame travel through XCom.

``extract_data`` pushes a JSON dict, ``calculate_xp_per_height`` pushes a DataFrame (use a Pandas
XCom backend, e.g. ``include.xcom_backends.S3PandasXComBackend``), ``print_xp_per_height`` reads it.
The Pokémon API's base URL comes from the Airflow connection ``pokeapi`` (seeded in
``airflow_settings.yaml`` with https://pokeapi.co).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk import dag, task
from pendulum import datetime

MY_FAVORITE_POKEMON = "pikachu"
MY_OTHER_FAVORITE_POKEMON = "vulpix"
POKEAPI_CONN_ID = "pokeapi"


@dag(
    start_date=datetime(2022, 12, 20),
    schedule="@daily",
    catchup=False,
    tags=["xcom", "example", "pandas"],
    default_args={"retries": 2},
)
def fetch_pokemon_data_dag() -> None:
    @task(multiple_outputs=False)  # one XCom (the dict), as in the tutorial
    def extract_data() -> dict[str, list[Any]]:
        """Extracts data from the Pokémon API. Returns a JSON-serializable dict."""
        hook = HttpHook(method="GET", http_conn_id=POKEAPI_CONN_ID)
        names = [MY_FAVORITE_POKEMON, MY_OTHER_FAVORITE_POKEMON]
        records = [hook.run(f"api/v2/pokemon/{name}", extra_options={"timeout": 30}).json() for name in names]
        return {
            "pokemon": names,
            "base_experience": [r["base_experience"] for r in records],
            "height": [r["height"] for r in records],
        }

    @task
    def calculate_xp_per_height(pokemon_data_dict: dict[str, list[Any]]) -> pd.DataFrame:
        """Calculates base XP per height and returns a pandas DataFrame."""
        df = pd.DataFrame(pokemon_data_dict)
        df["xp_per_height"] = df["base_experience"] / df["height"]
        return df

    @task
    def print_xp_per_height(pokemon_data_df: pd.DataFrame) -> None:
        """Reads the DataFrame back from the XCom backend and prints each Pokémon's ratio."""
        for i in pokemon_data_df.index:
            pokemon = pokemon_data_df.loc[i, "pokemon"]
            xph = pokemon_data_df.loc[i, "xp_per_height"]
            print(f"{pokemon} has a base xp to height ratio of {xph}")

    print_xp_per_height(calculate_xp_per_height(extract_data()))


fetch_pokemon_data_dag()
