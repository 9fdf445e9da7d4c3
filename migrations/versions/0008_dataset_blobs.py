"""Dataset arrays in blob files: where each upload's npz is stored, and its file's SHA-256.

Existing rows keep their bytes in `datasets.data` (storage "database"). Downgrading copies
the bytes of "file" rows back into the column (read and checked from the data dir's blob
store), so no upload is lost; it stops at the first file that is missing or altered.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 10:00:00.000000

"""

import hashlib
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("storage", sa.String(length=16), server_default="database", nullable=False)
        )
        batch_op.add_column(sa.Column("data_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_datasets_data_sha256"), ["data_sha256"])
        batch_op.create_check_constraint("storage", "storage IN ('database', 'file')")


def downgrade() -> None:
    _inline_file_rows()
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_datasets_storage"), type_="check")
        batch_op.drop_index(batch_op.f("ix_datasets_data_sha256"))
        batch_op.drop_column("data_sha256")
        batch_op.drop_column("storage")


def _inline_file_rows() -> None:
    """Copy each "file" row's blob into `data` (the files stay; delete them by hand)."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, data_sha256, size_bytes FROM datasets WHERE storage = 'file'")
    ).all()
    if not rows:
        return
    root = _blob_root()
    for dataset_id, digest, size in rows:
        path = root / digest[:2] / digest
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RuntimeError(f"dataset {dataset_id}: cannot read {path} ({exc})") from None
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeError(f"dataset {dataset_id}: {path} was altered; cannot downgrade")
        connection.execute(
            sa.text("UPDATE datasets SET data = :data WHERE id = :id"),
            {"data": data, "id": dataset_id},
        )


def _blob_root() -> Path:
    """The data dir's blob store, as service/dataset_blobs.py had it at this revision."""
    settings = op.get_context().config.attributes.get("settings")
    if settings is None:
        raise RuntimeError("downgrading 0008 needs the service settings (the data dir)")
    return Path(settings.data_dir).absolute() / "blobs"
