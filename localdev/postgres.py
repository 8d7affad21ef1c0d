"""A throwaway PostgreSQL cluster on 127.0.0.1 (Debian's ``postgresql`` package: ``initdb`` + ``pg_ctl``),
the metadata database of the Celery deployment and of the at-scale benchmark.

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user. It listens on
the loopback address only. Without a password it trusts every local connection (the benchmarks); with
one (the Celery deployment) every connection, TCP and Unix socket alike, must give it (SCRAM), so a
process that is not given the password (a Celery worker) cannot log in even if it finds the port.
A local development database either way, never a real one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

PG_BIN = Path(os.environ.get("XCOM_PG_BIN", "/usr/lib/postgresql/15/bin"))


class Postgres:
    def __init__(self, root: Path, port: int, password: str | None = None) -> None:
        self.root, self.port, self.password = root, port, password
        self.data, self.sock, self.log = root / "pgdata", root / "pgsock", root / "postgres.log"

    def _as_postgres(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(argv[0]).name} failed (exit code {done.returncode}): {(done.stderr or done.stdout)[-1500:]} "
                f"(server log: {self.log})"
            )

    def start(self) -> None:
        """initdb when the data directory is new (kept across restarts), then start on 127.0.0.1:port."""
        if not (PG_BIN / "initdb").exists():
            raise SystemExit(
                f"FAILED: PostgreSQL is needed and {PG_BIN}/initdb is missing: `make postgres` (Debian's "
                "postgresql package), or set XCOM_PG_BIN to the directory of initdb and pg_ctl."
            )
        fresh = not (self.data / "PG_VERSION").exists()
        for d in (self.root, self.data, self.sock):
            d.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(d, "postgres", "postgres")
        if os.geteuid() == 0:
            for parent in self.root.parents:  # the postgres user must be able to reach its directory
                if parent.exists() and not os.stat(parent).st_mode & 0o001:
                    os.chmod(parent, os.stat(parent).st_mode | 0o005)
        os.chmod(self.data, 0o700)
        if fresh:
            initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--no-sync"]
            if self.password is None:
                self._as_postgres(*initdb, "-A", "trust")
            else:
                pwfile = self.root / "initdb-password"  # read by initdb (as postgres), removed right after
                pwfile.write_text(self.password + "\n")
                os.chmod(pwfile, 0o600)
                if os.geteuid() == 0:
                    shutil.chown(pwfile, "postgres", "postgres")
                try:
                    self._as_postgres(*initdb, "-A", "scram-sha-256", f"--pwfile={pwfile}")
                finally:
                    pwfile.unlink()
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sock} -c fsync=off -c max_connections=300"
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, db: str) -> str:
        login = "postgres" if self.password is None else f"postgres:{quote(self.password, safe='')}"
        return f"postgresql+psycopg2://{login}@127.0.0.1:{self.port}/{db}"

    def sql(self, db: str, query: str) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=db, password=self.password)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(query)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def ensure_database(self, db: str) -> None:
        if not self.sql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{db}'"):
            self.sql("postgres", f"CREATE DATABASE {db}")
