"""The README's no-Docker commands end to end: `up` serves the UI with both DAGs, `demo` runs them
and lists the stored objects, the UI plugin shows what they stored (in headless Chromium), `down`
leaves no process behind. The tests share one `up` and run in file order."""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from localdev.airflow_api import call as api
from localdev.airflow_api import unpause
from tests.integration.localrun import LocalRun, processes_mentioning, started

pytestmark = pytest.mark.integration
CHROMIUM = os.environ.get("XCOM_CHROMIUM", "/usr/bin/chromium")
# Headless Chromium as root in a closed network (see docs/troubleshooting.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]
POKEMON = "fetch_pokemon_data_dag"


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    with started(tmp_path_factory.mktemp("local-run")) as run:
        yield run


def test_up_serves_airflow_with_dags_and_connections(local_run: LocalRun) -> None:
    assert local_run.url in local_run.up_output
    assert "XCom backend:     include.xcom_backends.S3PandasXComBackend" in local_run.up_output
    token = local_run.token()
    dags = api(local_run.ports["airflow"], "/api/v2/dags", token)
    assert {"simple_xcom_dag", POKEMON} <= {d["dag_id"] for d in dags["dags"]}
    conns = api(local_run.ports["airflow"], "/api/v2/connections", token)
    wanted = {
        "s3_xcom_backend_conn",
        "gcs_xcom_backend_conn",
        "azure_xcom_backend_conn",
        "minio_xcom_backend_conn",
        "pokeapi",
    }
    assert wanted <= {c["connection_id"] for c in conns["connections"]}
    plugins = api(local_run.ports["airflow"], "/api/v2/plugins", token)
    assert "xcom_storage" in {p["name"] for p in plugins["plugins"]}


def test_demo_runs_both_dags_and_lists_objects(local_run: LocalRun) -> None:
    demo = local_run.localdev("demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    referenced = [line for line in demo.stdout.splitlines() if line.endswith("[referenced]")]
    assert len(referenced) == 3, demo.stdout  # random number, Pokémon dict, Pokémon DataFrame
    assert any(".parquet" in line for line in referenced)
    log = (local_run.state / "logs" / f"demo-{POKEMON}.log").read_text()
    assert "pikachu has a base xp to height ratio of 28.0" in log


def test_plugin_pages_need_a_login(local_run: LocalRun) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", local_run.ports["airflow"], timeout=30)
    for path in ("/xcom-storage/", f"/xcom-storage/ti?dag_id={POKEMON}&run_id=x&task_id=extract_data"):
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 303 and "/auth/login?next=" in resp.headers["location"], (path, resp.status)
        assert "XCom" not in body
    conn.request("GET", "/xcom-storage/", headers={"Authorization": "Bearer not-a-token"})
    assert conn.getresponse().status == 403


@contextmanager
def chromium_page(local_run: LocalRun, token: str | None = None) -> Iterator[tuple[Any, Path]]:
    """A page in headless Chromium (logged in with ``token`` as Airflow's UI cookie, if given) and the
    folder for screenshots (``XCOM_SCREENSHOT_DIR``, e.g. ``docs``)."""
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("XCOM_SCREENSHOT_DIR", local_run.state / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 820})
            if token:
                context.add_cookies([{"name": "_token", "value": token, "url": local_run.url}])
            yield context.new_page(), shots
        finally:
            browser.close()


def test_stored_xcoms_in_the_browser(local_run: LocalRun) -> None:
    """Headless Chromium: log in through Airflow's form, open the task instance, click the plugin's tab."""
    from playwright.sync_api import expect

    port, token = local_run.ports["airflow"], local_run.token()
    (run,) = api(port, f"/api/v2/dags/{POKEMON}/dagRuns", token)["dag_runs"]
    run_id = run["dag_run_id"]
    entries = f"/api/v2/dags/{POKEMON}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
    frame_ref = api(port, f"{entries}/calculate_xp_per_height/xcomEntries/return_value", token)["value"]
    dict_ref = api(port, f"{entries}/extract_data/xcomEntries/return_value", token)["value"]
    ti_page = f"{local_run.url}/dags/{POKEMON}/runs/{urllib.parse.quote(run_id)}/tasks"

    with chromium_page(local_run) as (page, shots):
        # Not logged in: the plugin page sends the browser to Airflow's login, which brings it back.
        page.goto(f"{local_run.url}/xcom-storage/")
        expect(page).to_have_url(
            f"{local_run.url}/auth/login?next=" + urllib.parse.quote(f"{local_run.url}/xcom-storage/", safe="")
        )
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(local_run.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Offloaded XComs")).to_be_visible()
        listed = page.locator("table code").all_inner_texts()
        assert frame_ref["uri"] in listed and dict_ref["uri"] in listed

        # The DataFrame: the plugin's tab on the task instance, rendered in Airflow's UI.
        page.goto(f"{ti_page}/calculate_xp_per_height")
        page.get_by_role("link", name="Stored XComs").click()
        frame = page.frame_locator("iframe").first
        card = frame.locator("section.xcom[data-key='return_value']")
        expect(card.locator("dd.uri")).to_have_text(frame_ref["uri"])
        expect(card.locator("dd.size")).to_contain_text(f"({frame_ref['size']:,} bytes)")
        expect(card.locator("dd.format")).to_have_text("parquet")
        expect(card.locator("dd.rows")).to_have_text("2 × 4 columns")
        header = card.locator("table.preview th").all_inner_texts()
        columns = [h.split("\n")[0] for h in header]
        assert columns == ["(index)", "pokemon", "base_experience", "height", "xp_per_height"]
        first_row = card.locator("table.preview tbody tr").nth(0).locator("td").all_inner_texts()
        assert first_row == ["0", "pikachu", "112", "4", "28.0"]
        page.screenshot(path=str(shots / "ui_stored_xcoms_dataframe.png"))

        # The dict: pretty-printed JSON.
        page.goto(f"{ti_page}/extract_data/plugin/stored_xcoms")
        card = page.frame_locator("iframe").first.locator("section.xcom[data-key='return_value']")
        expect(card.locator("dd.uri")).to_have_text(dict_ref["uri"])
        expect(card.locator("pre.json")).to_contain_text('"pokemon": [\n    "pikachu",\n    "vulpix"\n  ]')
        page.screenshot(path=str(shots / "ui_stored_xcoms_json.png"))


def screenshot_refused_card(local_run: LocalRun, token: str, run_id: str) -> None:
    """The Stored XComs tab of the task with the crafted row, as a logged-in user sees it."""
    from playwright.sync_api import expect

    tab = f"{local_run.url}/dags/simple_xcom_dag/runs/{urllib.parse.quote(run_id)}/tasks/pick_a_random_number"
    with chromium_page(local_run, token) as (page, shots):
        page.goto(f"{tab}/plugin/stored_xcoms")
        card = page.frame_locator("iframe").first.locator("section.xcom[data-key='crafted']")
        expect(card.locator("p.error")).to_contain_text("not under that row's own location")
        page.screenshot(path=str(shots / "ui_stored_xcoms_refused.png"))


def test_crafted_reference_reads_and_deletes_nothing_of_another_dag(local_run: LocalRun) -> None:
    """Issue 11's scenario: another DAG's reference added to a task's XComs (the UI's "Add XCom" is
    this REST call) is not previewed, and clearing the task lets the scheduler re-run it without the
    other DAG's object being deleted."""
    import time

    from localdev import config
    from localdev.buckets import s3_client

    port, token = local_run.ports["airflow"], local_run.token()
    runs = f"/api/v2/dags/{POKEMON}/dagRuns"
    (pokemon_run,) = api(port, runs, token)["dag_runs"]
    pokemon_ti = f"{runs}/{urllib.parse.quote(pokemon_run['dag_run_id'], safe='')}/taskInstances"
    victim = api(port, f"{pokemon_ti}/calculate_xp_per_height/xcomEntries/return_value", token)["value"]
    s3 = s3_client(f"http://127.0.0.1:{local_run.ports['s3']}")
    victim_key = victim["uri"].split("/", 3)[3]
    victim_bytes = s3.get_object(Bucket=config.BUCKET, Key=victim_key)["Body"].read()

    (simple_run,) = api(port, "/api/v2/dags/simple_xcom_dag/dagRuns", token)["dag_runs"]
    run_id = simple_run["dag_run_id"]
    ti = f"/api/v2/dags/simple_xcom_dag/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
    api(port, f"{ti}/pick_a_random_number/xcomEntries", token, body={"key": "crafted", "value": victim})

    # The plugin page of the crafted row: the refusal in its card, the rest of the page intact.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    query = urllib.parse.urlencode(
        {"dag_id": "simple_xcom_dag", "run_id": run_id, "task_id": "pick_a_random_number", "map_index": -1}
    )
    conn.request("GET", f"/xcom-storage/ti?{query}", headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    page = resp.read().decode()
    assert resp.status == 200, page[:2000]
    crafted_card = page.split('data-key="crafted"', 1)[1].split("</section>", 1)[0]
    assert "No preview: the reference names " + victim["uri"] in crafted_card
    assert "not under that row&#39;s own location" in crafted_card
    assert "pikachu" not in page, page  # no cell of the other DAG's DataFrame
    assert 'class="preview"' not in crafted_card and 'class="json"' not in crafted_card
    assert 'data-key="return_value"' in page  # the task's own value still previews
    conn.request("GET", "/xcom-storage/", headers={"Authorization": f"Bearer {token}"})
    index = conn.getresponse().read().decode()
    crafted_line = next(line for line in index.split("<tr>") if "<td>crafted</td>" in line)
    assert "Refused: the reference names" in crafted_line and "Refused" not in index.replace(crafted_line, "")
    screenshot_refused_card(local_run, token, run_id)

    # Clear the task; the scheduler re-runs it, Airflow clears its XComs and calls our purge per key.
    unpause(port, token, "simple_xcom_dag")
    clear = {"dry_run": False, "only_failed": False, "dag_run_id": run_id, "task_ids": ["pick_a_random_number"]}
    api(port, "/api/v2/dags/simple_xcom_dag/clearTaskInstances", token, body=clear)
    deadline, state, try_number = time.monotonic() + 240, "?", 0
    while time.monotonic() < deadline:
        ti_now = api(port, f"{ti}/pick_a_random_number", token)
        state, try_number = ti_now["state"], ti_now["try_number"]
        if try_number >= 2 and state in ("failed", "up_for_retry", "success"):
            break
        time.sleep(2)
    log = api(port, f"{ti}/pick_a_random_number/logs/{try_number}?full_content=true", token)
    text = json.dumps(log)
    assert "XComReferenceError" in text and victim["uri"] in text, text[-3000:]
    assert state in ("failed", "up_for_retry"), state  # refused loudly, the crafted row left for a person to delete

    # The other DAG's object and value are untouched.
    assert s3.get_object(Bucket=config.BUCKET, Key=victim_key)["Body"].read() == victim_bytes
    query = urllib.parse.urlencode(
        {"dag_id": POKEMON, "run_id": pokemon_run["dag_run_id"], "task_id": "calculate_xp_per_height", "map_index": -1}
    )
    conn.request("GET", f"/xcom-storage/ti?{query}", headers={"Authorization": f"Bearer {token}"})
    assert "pikachu" in conn.getresponse().read().decode()


def test_down_leaves_no_process(local_run: LocalRun) -> None:
    down = local_run.localdev("down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Airflow" in down.stdout and "SeaweedFS" in down.stdout
    assert processes_mentioning(str(local_run.state)) == []
    assert local_run.localdev("down").stdout.strip() == "Nothing was running."
