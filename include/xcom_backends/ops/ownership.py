"""Which Airflow deployment a bucket and prefix belong to: one marker object per store location.

gc can only tell a live object from an orphan by the XCom rows of its own metadata database. Two
deployments configured with the same bucket and prefix would each see the other's live objects as
orphans, so a location belongs to exactly one deployment:

- The deployment's id is the Airflow Variable ``xcom_storage_deployment_id`` of its metadata database
  (created with a random value by the first ``doctor``; ``AIRFLOW_VAR_XCOM_STORAGE_DEPLOYMENT_ID`` or a
  secrets backend can pin it).
- ``doctor`` writes ``<prefix>/_xcom_storage_owner.json`` with that id where there is none (it claims
  the location), and fails when the marker names another deployment. ``make run`` runs ``doctor``.
- ``gc`` refuses to list or delete anything at a location whose marker is missing or names another
  deployment.

The marker is not an object the backend writes for an XCom row (it does not have that shape), so no
gc ever deletes it.
"""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from include.xcom_backends.errors import XComStorageConfigError
from include.xcom_backends.keys import prefix_of

if TYPE_CHECKING:
    from include.xcom_backends.backend import StoreRuntime

VARIABLE = "xcom_storage_deployment_id"
MARKER_NAME = "_xcom_storage_owner.json"
MARKER_MAX_BYTES = 64 * 1024  # a marker is a few hundred bytes; more is not one of ours
TAKE_OVER = "doctor --take-over"


class OwnershipError(XComStorageConfigError):
    """The location belongs to another deployment, or nobody has claimed it yet."""


@dataclass(frozen=True)
class Marker:
    deployment: str
    claimed_at: str = ""
    claimed_by: str = ""

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "deployment": self.deployment,
                "claimed_at": self.claimed_at,
                "claimed_by": self.claimed_by,
                "about": "The XCom values under this prefix belong to the Airflow deployment with this id "
                f"(its Airflow Variable {VARIABLE}). Clean-up (gc) of any other deployment refuses to run here.",
            },
            indent=2,
        ).encode()

    def describe(self) -> str:
        when = f", claimed {self.claimed_at}" if self.claimed_at else ""
        by = f" from host {self.claimed_by}" if self.claimed_by else ""
        return f"deployment {self.deployment!r}{when}{by}"


def deployment_id() -> str | None:
    """This deployment's id, from its metadata database (Airflow Variable ``VARIABLE``), or None."""
    from airflow.models.variable import Variable

    value = Variable.get(VARIABLE, default_var=None)
    return None if value is None else str(value)


def ensure_deployment_id() -> str:
    """This deployment's id, stored with a new random value when there is none yet (doctor)."""
    from airflow.models.variable import Variable

    value = deployment_id()
    if value is None:
        value = uuid.uuid4().hex
        Variable.set(
            VARIABLE,
            value,
            description="Identifies this Airflow deployment to the XCom storage backends: the bucket prefixes "
            "it has claimed carry this id in _xcom_storage_owner.json. Do not change it.",
        )
    return value


def marker_key(rt: StoreRuntime) -> str:
    return prefix_of(rt.settings.prefix) + MARKER_NAME


def read_marker(rt: StoreRuntime) -> Marker | None:
    """The marker at ``rt``'s location, None when there is none. A marker that is not one of ours
    raises OwnershipError."""
    key = marker_key(rt)
    try:
        data = rt.store.get_range(key, 0, MARKER_MAX_BYTES)
    except FileNotFoundError:
        return None
    try:
        fields = json.loads(data)
        return Marker(str(fields["deployment"]), str(fields.get("claimed_at", "")), str(fields.get("claimed_by", "")))
    except (ValueError, KeyError, TypeError):
        raise OwnershipError(
            f"{rt.store.uri(key)} is not an ownership marker this backend wrote ({len(data)} bytes, not the JSON "
            "it writes). Find out who wrote it; if it is safe, delete it and run doctor to claim the location."
        ) from None


def claim(rt: StoreRuntime, deployment: str, *, take_over: bool = False) -> str:
    """Make ``rt``'s location this deployment's: write the marker where there is none (or, with
    ``take_over``, where it names another deployment). Returns what was done; raises OwnershipError
    when another deployment owns the location."""
    uri = rt.store.uri(marker_key(rt))
    found = read_marker(rt)
    if found is not None and found.deployment == deployment:
        return f"{rt.location} belongs to this deployment ({deployment!r})"
    if found is not None and not take_over:
        raise another_owner(rt, found, deployment)
    marker = Marker(deployment, datetime.now(UTC).isoformat(timespec="seconds"), socket.gethostname())
    rt.store.put(marker_key(rt), marker.to_json())
    # Claiming is not atomic (not every store offers a conditional write): of two deployments claiming
    # at the same moment, the one whose marker is read back last wins, and the other's next doctor fails.
    back = read_marker(rt)
    if back is None or back.deployment != deployment:
        raise another_owner(rt, back or marker, deployment)
    taken = f", taken over from {found.describe()}" if found is not None else ""
    return f"claimed {rt.location} for this deployment ({deployment!r}): wrote {uri}{taken}"


def check(rt: StoreRuntime, deployment: str | None) -> None:
    """Raise OwnershipError unless ``rt``'s location is claimed by ``deployment`` (gc's guard)."""
    found = read_marker(rt)
    if deployment is None or found is None:
        raise OwnershipError(
            f"{rt.location} has not been claimed by this deployment (no {MARKER_NAME} there"
            f"{'' if deployment else ', and no Airflow Variable ' + VARIABLE + ' in this metadata database'}); "
            "gc deletes only where this deployment has claimed the location. Run `python -m include.xcom_backends "
            "doctor` (`make doctor` locally) once, then gc again."
        )
    if found.deployment != deployment:
        raise another_owner(rt, found, deployment)


def another_owner(rt: StoreRuntime, found: Marker, deployment: str) -> OwnershipError:
    return OwnershipError(
        f"{rt.location} belongs to another Airflow deployment ({found.describe()}; this one is {deployment!r}, "
        f"Airflow Variable {VARIABLE}). Two deployments must not share a bucket and prefix: each would see the "
        "other's live XCom objects as orphans. Give this deployment its own bucket or [xcom_storage] prefix. Only "
        "if the other deployment no longer exists (for example, this deployment's metadata database was "
        f"recreated), run `python -m include.xcom_backends {TAKE_OVER}`."
    )
