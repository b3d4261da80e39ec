"""A throwaway PostgreSQL cluster from Debian's server binaries (tests and benchmarks)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


class PostgresCluster:
    """initdb + pg_ctl on a loopback port; the app connects as a non-superuser role."""

    def __init__(self, bin_dir: Path, *, fsync: bool = False) -> None:
        """``fsync=False`` (tests) trades durability for speed; benchmarks keep it on."""
        self.bin, self.root = bin_dir, Path(tempfile.mkdtemp(prefix="assay-pg-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.root, "postgres")
        data = self.root / "data"
        self._run(
            "initdb", "-D", str(data), "-A", "trust", "-U", "admin", "-E", "UTF8", "--no-sync"
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        options += "" if fsync else " -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(data), "-o", options, "-l", str(self.root / "log"), "-w", "start"
        )
        self.admin_dsn = f"postgresql://admin@127.0.0.1:{self.port}/postgres"
        self._admin("CREATE ROLE assay_app LOGIN")
        self.count = 0

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.prefix, str(self.bin / tool), *args], check=True, capture_output=True)

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as con:
            con.execute(statement)

    def fresh_database(self) -> str:
        """A new empty database owned by the app role; its DSN."""
        self.count += 1
        name = f"assay_{self.count}"
        self._admin(f"CREATE DATABASE {name} OWNER assay_app")
        return f"postgresql://assay_app@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
