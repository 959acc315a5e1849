"""Registry search at a million applications: an index for every filter and the default sort.

* patronymic, certificate status and application type get their (insurer, …) indexes, like the
  other filters; the certificate-status, type and status ones end in (created_at,
  application_id), so a filtered default listing reads them in order however rare the value;
* (insurer, created_at) becomes (insurer, created_at, application_id): the default listing's
  whole ORDER BY on SQLite, the leading keys on PostgreSQL (persistence.tables).

``persistence.migrate.upgrade`` refreshes the planner statistics after this step.

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
    op.create_index('ix_applications_insurer_created_id', 'applications',
                    ['insurer_voen', 'created_at', 'application_id'], unique=False)
    op.drop_index('ix_applications_insurer_created', table_name='applications')
    op.create_index('ix_applications_insurer_patronymic', 'applications',
                    ['insurer_voen', 'patronymic_folded'], unique=False,
                    postgresql_ops={'patronymic_folded': 'text_pattern_ops'})
    op.create_index('ix_applications_insurer_certificate', 'applications',
                    ['insurer_voen', 'certificate_status', 'created_at', 'application_id'],
                    unique=False)
    op.create_index('ix_applications_insurer_type', 'applications',
                    ['insurer_voen', 'application_type', 'created_at', 'application_id'],
                    unique=False)
    op.create_index('ix_applications_insurer_status_created', 'applications',
                    ['insurer_voen', 'status', 'created_at', 'application_id'], unique=False)
    op.drop_index('ix_applications_insurer_status', table_name='applications')


def downgrade() -> None:
    op.create_index('ix_applications_insurer_status', 'applications',
                    ['insurer_voen', 'status', 'created_at'], unique=False)
    op.drop_index('ix_applications_insurer_status_created', table_name='applications')
    op.drop_index('ix_applications_insurer_type', table_name='applications')
    op.drop_index('ix_applications_insurer_certificate', table_name='applications')
    op.drop_index('ix_applications_insurer_patronymic', table_name='applications')
    op.create_index('ix_applications_insurer_created', 'applications',
                    ['insurer_voen', 'created_at'], unique=False)
    op.drop_index('ix_applications_insurer_created_id', table_name='applications')
