"""Registry search at a million applications: an index for every filter and the default sort.

* patronymic, certificate status and application type get their (insurer, …) indexes, like the
  other filters; the certificate-status, type and status ones end in (created_at,
  application_id), so a filtered default listing reads them in order however rare the value;
* (insurer, created_at) becomes (insurer, created_at, application_id): the default listing's
  whole ORDER BY on SQLite, the leading keys on PostgreSQL (persistence.tables);
* the range filters' indexes (surname, name, patronymic prefixes; SSN date) carry
  (created_at, application_id) too, so their matches are sorted from the index alone; so do
  FIN and SSN, whose index then gives the listing's order outright (at 1 M rows SQLite, with
  sampled statistics, walked the insurer's whole date index for an SSN instead).

``persistence.migrate.upgrade`` refreshes the planner statistics after this step.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_NAMES = (('surname', 'surname_folded'), ('name', 'name_folded'),
          ('patronymic', 'patronymic_folded'))
_EXACT_AND_RANGES = (('fin', 'fin'), ('ssn', 'ssn'), ('ssn_date', 'ssn_date'))


def upgrade() -> None:
    op.create_index('ix_applications_insurer_created_id', 'applications',
                    ['insurer_voen', 'created_at', 'application_id'], unique=False)
    op.drop_index('ix_applications_insurer_created', table_name='applications')
    for name, column in _NAMES:
        if name != 'patronymic':
            op.drop_index(f'ix_applications_insurer_{name}', table_name='applications')
        op.create_index(f'ix_applications_insurer_{name}', 'applications',
                        ['insurer_voen', column, 'created_at', 'application_id'], unique=False,
                        postgresql_ops={column: 'text_pattern_ops'})
    for name, column in _EXACT_AND_RANGES:
        op.drop_index(f'ix_applications_insurer_{name}', table_name='applications')
        op.create_index(f'ix_applications_insurer_{name}', 'applications',
                        ['insurer_voen', column, 'created_at', 'application_id'], unique=False)
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
    for name, column in _EXACT_AND_RANGES:
        op.drop_index(f'ix_applications_insurer_{name}', table_name='applications')
        op.create_index(f'ix_applications_insurer_{name}', 'applications',
                        ['insurer_voen', column], unique=False)
    for name, column in _NAMES:
        op.drop_index(f'ix_applications_insurer_{name}', table_name='applications')
        if name != 'patronymic':
            op.create_index(f'ix_applications_insurer_{name}', 'applications',
                            ['insurer_voen', column], unique=False,
                            postgresql_ops={column: 'text_pattern_ops'})
    op.create_index('ix_applications_insurer_created', 'applications',
                    ['insurer_voen', 'created_at'], unique=False)
    op.drop_index('ix_applications_insurer_created_id', table_name='applications')
