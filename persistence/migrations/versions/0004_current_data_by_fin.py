"""Issue #11's schema: the person's current data by FIN (the latest registered application of
a FIN, whichever insurer sent it); authorities bound to the holder's card when they first sign
(``bound_at``, ``holder_not_after``: the certificate's expiry ends the authority); the seal
holders the e-Gov portal may act for (``seal_holders``); the address code list (``regions``,
``districts``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_applications_fin_status_created', 'applications',
                    ['fin', 'status', 'created_at'], unique=False)
    with op.batch_alter_table('authorities') as batch:
        batch.add_column(sa.Column('bound_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('holder_not_after', sa.DateTime(timezone=True),
                                   nullable=True))
    op.create_index('ix_authorities_fin', 'authorities', ['fin'], unique=False)
    op.create_table('regions',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_folded', sa.String(length=100), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_regions')),
    sa.UniqueConstraint('name', name=op.f('uq_regions_name')),
    sa.UniqueConstraint('name_folded', name=op.f('uq_regions_name_folded'))
    )
    op.create_table('districts',
    sa.Column('code', sa.String(length=24), nullable=False),
    sa.Column('region_code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_folded', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['region_code'], ['regions.code'], name=op.f('fk_districts_region_code_regions')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_districts')),
    sa.UniqueConstraint('region_code', 'name_folded', name=op.f('uq_districts_region_code'))
    )
    op.create_index(op.f('ix_districts_region_code'), 'districts', ['region_code'], unique=False)
    op.create_table('seal_holders',
    sa.Column('insurer_voen', sa.String(length=10), nullable=False),
    sa.Column('fin', sa.String(length=7), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['insurer_voen'], ['insurers.voen'], name=op.f('fk_seal_holders_insurer_voen_insurers')),
    sa.PrimaryKeyConstraint('insurer_voen', 'fin', name=op.f('pk_seal_holders'))
    )


def downgrade() -> None:
    op.drop_table('seal_holders')
    op.drop_index(op.f('ix_districts_region_code'), table_name='districts')
    op.drop_table('districts')
    op.drop_table('regions')
    op.drop_index('ix_authorities_fin', table_name='authorities')
    with op.batch_alter_table('authorities') as batch:
        batch.drop_column('holder_not_after')
        batch.drop_column('bound_at')
    op.drop_index('ix_applications_fin_status_created', table_name='applications')
