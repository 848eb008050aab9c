"""Metadata snapshots: a consistent copy of the database, shipped after its blobs.

Order (docs/replica-format.md, "Ordering guarantees"): copy the database with `VACUUM
INTO`; ship the log segments up to the copy's last entry, read from the copy itself (so
that one segment ends exactly at the snapshot); upload every external body the copy
names; upload the sealed database; upload its manifest last.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from homeport.replication import format as fmt
from homeport.replication.errors import ObjectExists
from homeport.replication.source import SqliteSource
from homeport.store.model import now_us

if TYPE_CHECKING:
    from homeport.replication.shipper import Shipper, ShipReport

log = logging.getLogger("homeport.replication")


class SnapshotShipper:
    """Takes and ships the snapshots of one shipper's target."""

    def __init__(self, shipper: Shipper) -> None:
        self.shipper = shipper

    def ship(self, report: ShipReport, initial: bool) -> None:
        """Ship a snapshot as of now. `initial` starts a generation: its position becomes
        the snapshot's sequence."""
        sh = self.shipper
        st = sh.state
        sh.tmp_dir.mkdir(parents=True, exist_ok=True)
        copy_path = sh.tmp_dir / "snapshot.sqlite3"
        sealed_path = sh.tmp_dir / "snapshot.sealed"
        try:
            copy = sh.source.snapshot_to(copy_path)
            if not initial and copy.seq == st.snapshot_seq:
                self._done(None)
                return
            copy_src = SqliteSource(copy_path)
            try:
                if not initial:
                    while st.shipped_seq < copy.seq:
                        batch = copy_src.read_batch(
                            st.shipped_seq,
                            upto_seq=copy.seq,
                            known_collections=sh.tracker.collections.keys(),
                            **sh.batch_limits(),
                        )
                        if not batch.log:
                            break
                        sh.ship_batch(batch, report)
                refs = [sh.blob_ref(h, size) for h, size in copy_src.external_blobs()]
                if initial and refs:
                    log.info(
                        "replica %s: uploading %d bodies (%d bytes) for the first snapshot",
                        sh.tsettings.display_url,
                        len(refs),
                        sum(r.size for r in refs),
                    )
                uploaded, nbytes = sh.uploader.ensure(sh.prefix, refs)
                report.blobs_uploaded += uploaded
                report.bytes_uploaded += nbytes
                image = copy_src.state_image()
            finally:
                copy_src.close()
            with open(copy_path, "rb") as src, open(sealed_path, "wb") as dst:
                sealed = sh.sealer.seal_stream(src, dst)
            try:
                sh.target.put_file(
                    f"{sh.prefix}/{fmt.snapshot_db_name(copy.seq)}",
                    sealed_path,
                    sealed.sealed_sha256,
                )
            except ObjectExists:
                # An interrupted earlier attempt: its database object cannot be described
                # without reading it back, so this snapshot is skipped (left incomplete).
                log.warning(
                    "replica %s: snapshot %d was started before and is left incomplete",
                    sh.tsettings.display_url,
                    copy.seq,
                )
                if initial:
                    raise
                self._done(None)
                return
            manifest = fmt.SnapshotManifest(
                generation=sh.prefix,
                seq=copy.seq,
                at_us=copy.at_us,
                taken_at_us=now_us(),
                schema_version=copy.schema_version,
                db_object=fmt.snapshot_db_name(copy.seq),
                db_size=sealed.plain_size,
                db_sha256=sealed.plain_sha256,
                blobs=tuple(refs),
                state_seq=st.state_seq,
            )
            report.bytes_uploaded += sealed.sealed_size + sh.put_sealed(
                fmt.snapshot_manifest_name(copy.seq), fmt.encode_json(manifest.to_json())
            )
            sh.tracker.reset_to(image)
            if initial:
                st.shipped_seq, st.shipped_at_us = copy.seq, copy.at_us
                st.shipped_wall_us = now_us()
            report.snapshot_seq = copy.seq
            self._done(copy.seq)
        finally:
            copy_path.unlink(missing_ok=True)
            sealed_path.unlink(missing_ok=True)

    def _done(self, seq: int | None) -> None:
        st = self.shipper.state
        if seq is not None:
            st.snapshot_seq = seq
        st.snapshot_wall_us = now_us()
        st.segments_since_snapshot = 0
        self.shipper.states.save()
