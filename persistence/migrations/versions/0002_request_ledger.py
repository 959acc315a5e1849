"""One request, one transaction: the request ledger replaces the idempotency table; worker
leases let one background finisher run at a time across processes and hosts.

The ledger row of (sender, X-Road id) is written in the request's own transaction, with the
final answer only for requests that changed state; the old table kept every answer (reads too)
and was written after the business commit. Stored answers are short-lived (the idempotency TTL),
so they are not carried over.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('request_ledger',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('content_digest', sa.String(length=64), nullable=False),
    sa.Column('response', sa.LargeBinary(), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_request_ledger'))
    )
    op.create_index(op.f('ix_request_ledger_expires_at'), 'request_ledger', ['expires_at'],
                    unique=False)
    op.drop_index(op.f('ix_idempotency_created_at'), table_name='idempotency')
    op.drop_table('idempotency')
    op.create_table('worker_leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_worker_leases'))
    )


def downgrade() -> None:
    op.drop_table('worker_leases')
    op.create_table('idempotency',
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=128), nullable=False),
    sa.Column('response', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_idempotency'))
    )
    op.create_index(op.f('ix_idempotency_created_at'), 'idempotency', ['created_at'], unique=False)
    op.drop_index(op.f('ix_request_ledger_expires_at'), table_name='request_ledger')
    op.drop_table('request_ledger')
