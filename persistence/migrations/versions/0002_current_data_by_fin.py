"""The person's current data by FIN: an index for the latest registered application of a FIN,
whichever insurer sent it (GetInsuredPerson, SubmitCorrection).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_applications_fin_status_created', 'applications',
                    ['fin', 'status', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_applications_fin_status_created', table_name='applications')
