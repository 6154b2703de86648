"""A throw-away PostgreSQL server on loopback, from Debian's ``postgresql`` package."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = found[-1] if found else shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """``initdb`` + ``pg_ctl start`` in a temporary folder; as the ``postgres`` user when run as
    root (PostgreSQL refuses to run as root)."""

    def __init__(self, port: int, database: str = "mlflow", user: str = "llmb"):
        self.bin = postgres_bin()
        self.port, self.database, self.user = port, database, user
        self.folder = Path(tempfile.mkdtemp(prefix="llmb-postgres-"))
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.folder, "postgres", "postgres")
        self.uri = f"postgresql://{user}@127.0.0.1:{port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_owner, str(self.bin / tool), *args], check=True, capture_output=True,
                       text=True, cwd=self.folder)

    def start(self) -> "Postgres":
        data = self.folder / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", self.user, "--no-sync")
        self._run("pg_ctl", "-D", str(data), "-l", str(self.folder / "postgres.log"), "-w", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database)
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
