"""Dataset lineage: each upload's SHA-256 (and its test file's), how it was read, and the
hashes copied onto the jobs trained from it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("test_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("n_test_rows", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("file_info", sa.JSON(), nullable=True))
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dataset_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("test_dataset_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("test_dataset_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("test_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.drop_column("test_sha256")
        batch_op.drop_column("test_dataset_name")
        batch_op.drop_column("test_dataset_id")
        batch_op.drop_column("dataset_sha256")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("file_info")
        batch_op.drop_column("n_test_rows")
        batch_op.drop_column("test_sha256")
        batch_op.drop_column("sha256")
