"""``[core] hostname_callable`` of the local Celery workers: each reports its own name (``worker-N``,
from XCOM_LOCAL_WORKER_NAME) as the host of the task instances it runs, as separate machines would."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("XCOM_LOCAL_WORKER_NAME") or socket.getfqdn()
