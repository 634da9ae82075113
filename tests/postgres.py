"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temp directory, on a free port, as `postgres`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql


def bindir() -> Path | None:
    """Where initdb and pg_ctl are (`pg_config --bindir`, else Debian's newest), or None when PostgreSQL is absent."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            candidates.append(Path(done.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((path for path in candidates if (path / "initdb").exists() and (path / "pg_ctl").exists()), None)


WITHOUT_POSTGRES_VARIABLE = "REBATES_TESTS_WITHOUT_POSTGRES"
"""Set to 1 to skip the PostgreSQL tests on a machine that cannot have PostgreSQL's server; never honoured under CI."""


def server_binaries() -> Path:
    """`bindir()`; where PostgreSQL's server is missing, fail the test that needs it.

    Skip it only when REBATES_TESTS_WITHOUT_POSTGRES=1 asks for that outside CI (`CI` set): a silent skip leaves
    REBATES_STATE_URL's code untested without anyone noticing.
    """
    found = bindir()
    if found is not None:
        return found
    missing = (
        "no PostgreSQL server binaries (initdb, pg_ctl) under `pg_config --bindir` or /usr/lib/postgresql/*/bin: "
        "run `make postgres` (apt-get install postgresql) to run these tests"
    )
    if os.environ.get(WITHOUT_POSTGRES_VARIABLE) == "1" and not os.environ.get("CI"):
        pytest.skip(f"{missing}; skipped because {WITHOUT_POSTGRES_VARIABLE}=1")
    opt_out = f"or set {WITHOUT_POSTGRES_VARIABLE}=1 to skip them on this machine (not under CI)"
    pytest.fail(f"{missing}, {opt_out}", pytrace=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    """Run the cluster's commands as `postgres` when the tests run as root (initdb refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _run(argv: list[str]) -> None:
    done = subprocess.run(_as_owner(argv), capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr or done.stdout}")


PASSWORD_ROLE = "rebates_pw"
"""The one role that must give its password (scram-sha-256); every other connects on trust."""


@dataclass
class Cluster:
    """A running PostgreSQL cluster on 127.0.0.1, trust authentication but for PASSWORD_ROLE, removed by `stop`."""

    bindir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rebates-pg-")))
    port: int = field(default_factory=_free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def start(self) -> Cluster:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        _run([str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
              "-E", "UTF8", "--locale=C"])  # fmt: skip
        hba = self.data / "pg_hba.conf"
        first = "".join(f"host all {PASSWORD_ROLE} {net} scram-sha-256\n" for net in ("127.0.0.1/32", "::1/128"))
        hba.write_text(first + hba.read_text())  # the first matching line decides
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        _run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l", str(self.root / "log"),
              "start"])  # fmt: skip
        return self

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def password_database(self, password: str) -> str:
        """A fresh database owned by PASSWORD_ROLE, which now logs in with `password` only; its URL, without it."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [PASSWORD_ROLE]).fetchone()
            verb = sql.SQL("ALTER" if exists else "CREATE")
            role = sql.Identifier(PASSWORD_ROLE)
            admin.execute(sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(verb, role, sql.Literal(password)))
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), role))
        return f"postgresql://{PASSWORD_ROLE}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            _as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)
