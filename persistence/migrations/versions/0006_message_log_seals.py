"""Sealed message log: batch seals (Merkle tree heads with RFC 3161 tokens) instead of one
global hash chain, and append-only enforced by the database.

* ``message_log`` loses ``prev_hash``/``chain_hash`` (an append no longer reads the previous
  entry) and gains ``erased_at`` (retention). Entries logged before this revision are sealed by
  the first run of the sealer like any new entry.
* ``message_log_seals``, ``message_log_leaves``, ``message_log_subjects``, ``message_log_crls``:
  the seals, which seal covers which entry, which applications an entry mentions, and the CRLs
  configured when the seals were made.
* Triggers (PostgreSQL and SQLite) refuse UPDATE and DELETE on the log, its seals and leaves,
  except the retention procedure's erasure of a sealed payload: ``payload`` emptied,
  ``erased_at`` set, nothing else changed (on PostgreSQL only inside a transaction that set
  ``dsmf.message_log_retention`` = ``on``). TRUNCATE is refused on PostgreSQL too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KEPT = ("id", "at", "direction", "message_id", "correlation_id", "actor_fin", "voen",
         "operation", "payload_sha256")
_SEALED = ("message_log_seals", "message_log_leaves", "message_log_subjects",
           "message_log_crls")

_PG_GUARD = f"""
CREATE FUNCTION message_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'message_log'
     AND current_setting('dsmf.message_log_retention', true) = 'on'
     AND OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL
     AND NEW.payload = ''::bytea
     AND ({", ".join("NEW." + c for c in _KEPT)})
         IS NOT DISTINCT FROM ({", ".join("OLD." + c for c in _KEPT)})
     AND EXISTS (SELECT 1 FROM message_log_leaves l WHERE l.entry_id = OLD.id)
  THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'the message log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$
"""

_SQLITE_ERASURE = " AND ".join(
    ["OLD.erased_at IS NULL", "NEW.erased_at IS NOT NULL", "length(NEW.payload) = 0",
     "EXISTS (SELECT 1 FROM message_log_leaves l WHERE l.entry_id = OLD.id)"]
    + [f"NEW.{c} IS OLD.{c}" for c in _KEPT]
)


def upgrade() -> None:
    with op.batch_alter_table("message_log") as batch:
        batch.drop_constraint("uq_message_log_chain_hash", type_="unique")
        batch.drop_column("prev_hash")
        batch.drop_column("chain_hash")
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "message_log_seals",
        sa.Column("number", _ID, autoincrement=False, nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_entry_id", _ID, nullable=True),
        sa.Column("last_entry_id", _ID, nullable=True),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("tree_head", sa.String(length=64), nullable=False),
        sa.Column("seal_xml", sa.LargeBinary(), nullable=False),
        sa.Column("seal_sha256", sa.String(length=64), nullable=False),
        sa.Column("tsa_token", sa.LargeBinary(), nullable=False),
        sa.Column("tsa_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_message_log_seals")),
        sa.UniqueConstraint("seal_sha256", name=op.f("uq_message_log_seals_seal_sha256")),
    )
    op.create_index(op.f("ix_message_log_seals_sealed_at"), "message_log_seals", ["sealed_at"])
    op.create_table(
        "message_log_leaves",
        sa.Column("entry_id", _ID, autoincrement=False, nullable=False),
        sa.Column("seal_number", _ID, nullable=False),
        sa.Column("leaf_index", sa.Integer(), nullable=False),
        sa.Column("leaf_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["message_log.id"],
                                name=op.f("fk_message_log_leaves_entry_id_message_log")),
        sa.ForeignKeyConstraint(
            ["seal_number"], ["message_log_seals.number"],
            name=op.f("fk_message_log_leaves_seal_number_message_log_seals")),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_message_log_leaves")),
    )
    op.create_index(op.f("ix_message_log_leaves_seal_number"), "message_log_leaves",
                    ["seal_number"])
    op.create_table(
        "message_log_subjects",
        sa.Column("application_id", sa.String(length=64), nullable=False),
        sa.Column("entry_id", _ID, autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["message_log.id"],
                                name=op.f("fk_message_log_subjects_entry_id_message_log")),
        sa.PrimaryKeyConstraint("application_id", "entry_id",
                                name=op.f("pk_message_log_subjects")),
    )
    op.create_table(
        "message_log_crls",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("crl", sa.LargeBinary(), nullable=False),
        sa.Column("first_seal", _ID, nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_message_log_crls")),
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        for table in ("message_log", *_SEALED):
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION message_log_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION message_log_append_only()")
    else:
        op.execute("CREATE TRIGGER message_log_no_update BEFORE UPDATE ON message_log "
                   f"WHEN NOT ({_SQLITE_ERASURE}) BEGIN "
                   "SELECT RAISE(ABORT, 'the message log is append-only: UPDATE refused'); END")
        for table in ("message_log", *_SEALED):
            op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} BEGIN "
                       "SELECT RAISE(ABORT, 'the message log is append-only: DELETE refused'); "
                       "END")
        for table in _SEALED:
            op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN "
                       "SELECT RAISE(ABORT, 'the message log is append-only: UPDATE refused'); "
                       "END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("message_log", *_SEALED):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS message_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS message_log_no_update")
        for table in ("message_log", *_SEALED):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        for table in _SEALED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
    op.drop_table("message_log_crls")
    op.drop_table("message_log_subjects")
    op.drop_index(op.f("ix_message_log_leaves_seal_number"), table_name="message_log_leaves")
    op.drop_table("message_log_leaves")
    op.drop_index(op.f("ix_message_log_seals_sealed_at"), table_name="message_log_seals")
    op.drop_table("message_log_seals")
    # The old chain cannot be rebuilt here: the columns come back empty-valued.
    with op.batch_alter_table("message_log") as batch:
        batch.drop_column("erased_at")
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("chain_hash", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_message_log_chain_hash", ["chain_hash"])
