"""The run store's database: an engine from PIPELINE_DATABASE_URL, migrated at start.

Three kinds of URL (SQLAlchemy's syntax):

- ``sqlite:////path/runs.sqlite3``: the embedded default. Several processes on one
  machine may share the file (WAL journal, a busy timeout), which is how two local
  pipeline instances behave like two Cloud Run instances sharing Cloud SQL.
- ``postgresql+pg8000://USER:PASSWORD@HOST:PORT/DB``: a PostgreSQL server reached
  directly (the tests' container).
- ``postgresql+pg8000://IAM_USER@/DB?cloud_sql_instance=PROJECT:REGION:INSTANCE``:
  Cloud SQL through the Cloud SQL Python Connector with IAM database authentication
  (the connector signs in as the service's own identity: no password exists) over the
  instance's private IP (``ip_type=public`` or ``psc`` to change that).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
# Alembic narrates every step at INFO; the store logs the one line that matters.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS = Path(__file__).parent / "migrations"
CLOUD_SQL_INSTANCE = "cloud_sql_instance"
# Any constant: the key of the PostgreSQL advisory lock that serialises migrations
# when ten instances start at once ("runs" in ASCII).
MIGRATION_LOCK_KEY = 0x72756E73
# The newest migration (migrations/versions): a store already there starts without
# importing Alembic. A test checks it equals Alembic's head.
SCHEMA_REVISION = "0001"


class DatabaseUrlError(ValueError):
    """PIPELINE_DATABASE_URL cannot be used; the message says why."""


@dataclass(frozen=True)
class CloudSqlTarget:
    instance: str  # PROJECT:REGION:INSTANCE
    user: str  # the IAM user: a service account's email without .gserviceaccount.com
    database: str
    ip_type: str  # private | public | psc


def parse_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except sa.exc.ArgumentError:
        raise DatabaseUrlError(
            "is not a SQLAlchemy URL (e.g. sqlite:////data/runs.sqlite3)"
        ) from None
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise DatabaseUrlError(
            f"names the {url.get_backend_name()!r} backend; the run store supports sqlite "
            "and postgresql"
        )
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise DatabaseUrlError(
            "names an in-memory SQLite database, which no other instance or restart can see; "
            "give a file (sqlite:////data/runs.sqlite3)"
        )
    if url.get_backend_name() == "postgresql" and url.get_driver_name() != "pg8000":
        raise DatabaseUrlError("must use the pg8000 driver: postgresql+pg8000://…")
    if CLOUD_SQL_INSTANCE in url.query:
        cloud_sql_target(url)  # raises on a malformed one
    return url


def cloud_sql_target(url: URL) -> CloudSqlTarget:
    instance = str(url.query[CLOUD_SQL_INSTANCE])
    if instance.count(":") != 2 or not all(instance.split(":")):
        raise DatabaseUrlError(
            f"{CLOUD_SQL_INSTANCE}={instance!r} is not an instance connection name "
            "(PROJECT:REGION:INSTANCE)"
        )
    if not url.username or url.password:
        raise DatabaseUrlError(
            "a Cloud SQL URL names the IAM user and no password "
            "(postgresql+pg8000://SA@PROJECT.iam@/runs?cloud_sql_instance=…)"
        )
    if url.host:
        raise DatabaseUrlError("a Cloud SQL URL has no host: the connector finds the instance")
    ip_type = str(url.query.get("ip_type", "private")).lower()
    if ip_type not in {"private", "public", "psc"}:
        raise DatabaseUrlError(f"ip_type={ip_type!r} must be private, public or psc")
    return CloudSqlTarget(instance, url.username, url.database or "runs", ip_type)


def describe(url: URL) -> str:
    """The URL for logs and messages, password hidden."""
    return url.render_as_string(hide_password=True)


def create_engine(url: URL, timeout_s: float) -> Engine:
    """An engine whose connect attempts give up after ``timeout_s``."""
    if url.get_backend_name() == "sqlite":
        assert url.database is not None  # parse_url refused the rest
        # A folder that cannot be made shows up as the connect error, with the path.
        with contextlib.suppress(OSError):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": timeout_s, "check_same_thread": False}
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if CLOUD_SQL_INSTANCE in url.query:
        return _cloud_sql_engine(cloud_sql_target(url), timeout_s)
    return sa.create_engine(
        url, connect_args={"timeout": timeout_s}, pool_pre_ping=True, pool_recycle=1800
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never wait for the writer, and a second process can share the file.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _cloud_sql_engine(target: CloudSqlTarget, timeout_s: float) -> Engine:
    # Imported here: only Cloud Run pays for the connector (and its aiohttp) at start.
    from google.cloud.sql.connector import Connector, IPTypes

    connector = Connector(refresh_strategy="lazy", timeout=max(1, int(timeout_s)))
    ip_type = {"private": IPTypes.PRIVATE, "public": IPTypes.PUBLIC, "psc": IPTypes.PSC}

    def connect() -> Any:
        return connector.connect(
            target.instance,
            "pg8000",
            user=target.user,
            db=target.database,
            enable_iam_auth=True,
            ip_type=ip_type[target.ip_type],
        )

    return sa.create_engine(
        "postgresql+pg8000://", creator=connect, pool_pre_ping=True, pool_recycle=1800
    )


# --- migrations -----------------------------------------------------------------
# Alembic is imported inside these: it costs a second of start-up on a busy core, and
# an instance needs it once, after the port is bound.


def _alembic_config(connection: sa.Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def stored_revision(engine: Engine) -> str | None:
    """The revision in Alembic's version table, read with plain SQL (None: empty)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest revision; safe when many instances start at once.

    One instance migrates while the others wait on a lock, then find nothing to do.
    An empty database (a fresh instance's SQLite file, a new Cloud SQL database) gets
    the declared schema and Alembic's version row directly, without importing Alembic
    (~100 ms of a cold start, ADR 0026); a store with tables goes through Alembic.
    Returns the revision the database is at.
    """
    if stored_revision(engine) == SCHEMA_REVISION:
        return SCHEMA_REVISION  # the usual start: nothing to do, Alembic never imported
    with _migration_lock(engine) as connection:
        if not sa.inspect(connection).get_table_names():
            _create_declared_schema(connection)
            log.info("created the run store's schema at revision %s", SCHEMA_REVISION)
            return SCHEMA_REVISION
    return migrate_with_alembic(engine)


def _create_declared_schema(connection: sa.Connection) -> None:
    """schema.py's tables and Alembic's version table at SCHEMA_REVISION, one transaction
    (PostgreSQL's DDL is transactional: a failure leaves the database empty)."""
    from .schema import metadata

    metadata.create_all(connection)
    version = sa.Table(
        "alembic_version",
        sa.MetaData(),
        # As Alembic makes it, so its later upgrades find their own table.
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(connection)
    connection.execute(version.insert().values(version_num=SCHEMA_REVISION))
    connection.commit()


def migrate_with_alembic(engine: Engine) -> str:
    """Alembic's upgrade to head under the migration lock (stores that have tables)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    head = head_revision()
    with _migration_lock(engine) as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current != head:
            log.info("migrating the run store from %s to %s", current or "empty", head)
            command.upgrade(_alembic_config(connection), "head")
            connection.commit()
    return head


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[sa.Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            # Session-level lock: held across the migration's own transactions.
            connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY}
                )
                connection.commit()
        return
    # SQLite is shared only by processes on one machine: a lock file beside it.
    assert engine.url.database is not None
    lock_path = Path(engine.url.database + ".migrate-lock")
    with lock_path.open("a") as lock, engine.connect() as connection:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield connection
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
