"""Replica targets: where sealed objects are written once and read back.

`ReplicaTarget` is the contract (its docstrings are the specification); `FileTarget`
(a folder, e.g. on another disk or a NAS mount) and `S3Target` (any S3-compatible object
storage) implement it and pass the same suite in `tests/replication/test_targets.py`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from homeport.errors import ConfigError
from homeport.replication.crypto import Readable
from homeport.replication.errors import (
    ObjectExists,
    ObjectMissing,
    TargetUnavailable,
)
from homeport.replication.settings import TargetSettings

log = logging.getLogger("homeport.replication")

CHUNK = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key (relative to the target's root), size and upload time."""

    key: str
    size: int
    modified: float  # seconds since the Unix epoch


@dataclass(frozen=True)
class Removal:
    """What `ReplicaTarget.remove` did to one object."""

    outcome: str  # "removed", "missing", "locked" (retention or legal hold), "refused"
    retain_until: float | None = None  # for "locked": the retention date, if known
    detail: str | None = None

    @property
    def removed(self) -> bool:
        return self.outcome in ("removed", "missing")


class ReplicaTarget(Protocol):
    """A place that keeps replica objects. The replicator's only way to reach storage.

    Keys are relative, '/'-separated names made of lowercase letters, digits, '.', '-'
    (see `homeport.replication.format`); a target maps them under its root or prefix.

    The contract every implementation keeps:

    - **Write once.** `put_bytes`/`put_file` never replace an existing object: if the key
      exists they raise `ObjectExists` and leave it untouched, whatever its content.
    - **All or nothing, verified.** When a put returns, the object exists under its key
      with exactly the given bytes, and this was checked (read back and hashed, or the
      storage verified the SHA-256 we sent and echoed it). When a put raises, the key
      either does not exist or holds a complete object from an earlier attempt.
    - **No overwrite; delete only what retention allows.** An object is never modified.
      `remove` exists for the replica's retention (`homeport.replication.prune`) only,
      which removes objects that no kept restore point needs: it never overrides S3
      Object Lock (an object whose retention has not expired, or under legal hold, is
      left and reported `locked`), and a storage that refuses the deletion (credentials
      without delete permission) leaves the object and reports `refused`.
    - **Errors are typed.** A missing object is `ObjectMissing`; a target that cannot be
      reached, refuses the credentials or fails is `TargetUnavailable` (the replicator
      retries those); nothing else escapes except `ConfigError` for a bad setting.
    - **Listings see completed writes** (read-after-write), in no particular order.
    - Thread-safe: several uploads may run at once.
    """

    @property
    def url(self) -> str:
        """Where this target is, for people and logs. Never contains a secret."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store a small object (a manifest, a segment) once; see the class contract."""

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        """Store the file at `path` (whose SHA-256 is `sha256`) once, streaming it."""

    def open(self, key: str) -> contextlib.AbstractContextManager[Readable]:
        """A readable stream of the object's bytes. Raises ObjectMissing if absent."""

    def get_bytes(self, key: str) -> bytes:
        """The whole object (for small ones). Raises ObjectMissing if absent."""

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size and time, or None if it does not exist."""

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, at any depth."""

    def children(self, prefix: str = "") -> list[str]:
        """The names one level below `prefix` (e.g. the generations of a replica)."""

    def remove(self, key: str) -> Removal:
        """Delete the object (every stored version of it) unless it is locked; see the
        class contract. Never raises for a locked or refused object."""

    def close(self) -> None:
        """Release connections. The target must not be used afterwards."""


# -- a folder ---------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FileTarget:
    """`ReplicaTarget` on a folder: a local disk, a NAS mount, a USB drive.

    The folder must exist: a missing folder usually means an unmounted disk, and writing
    into the empty mount point would put the "replica" on the server's own disk.
    Objects are written to `.tmp/`, fsynced, linked into place (`link` fails if the name
    exists: write-once without a race), read back and hashed, and made read-only.
    """

    def __init__(self, root: Path, create: bool = False) -> None:
        self.root = root
        self._create = create

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def __repr__(self) -> str:
        return f"FileTarget({self.url})"

    def _ready(self) -> None:
        if not self.root.is_dir():
            if self._create:
                self.root.mkdir(parents=True, exist_ok=True)
                return
            raise TargetUnavailable(
                f"the replica folder {self.root} does not exist (is the disk mounted?); "
                "create it to start replicating"
            )

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ConfigError(f"not a replica key: {key!r}")
        return self.root / key

    def _store(self, key: str, write: Any, sha256: str) -> None:
        self._ready()
        final = self._path(key)
        tmpdir = self.root / ".tmp"
        try:
            tmpdir.mkdir(exist_ok=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = tmpdir / secrets.token_hex(12)
            try:
                with open(tmp, "wb") as fh:
                    write(fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                try:
                    os.link(tmp, final)
                except FileExistsError as exc:
                    raise ObjectExists(f"{key} already exists on {self.url}", key) from exc
            finally:
                tmp.unlink(missing_ok=True)
            _fsync_dir(final.parent)
            if _sha256_file(final) != sha256:
                raise TargetUnavailable(f"{key} reads back different from what was written")
            os.chmod(final, 0o444)
        except OSError as exc:
            raise TargetUnavailable(f"cannot write {key} to {self.url}: {exc.strerror}") from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        self._store(key, lambda fh: fh.write(data), hashlib.sha256(data).hexdigest())

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        def copy(fh: Any) -> None:
            with open(path, "rb") as src:
                while chunk := src.read(CHUNK):
                    fh.write(chunk)

        self._store(key, copy, sha256)

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[Readable]:
        try:
            fh = open(self._path(key), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError as exc:
            raise ObjectMissing(f"{key} is missing from {self.url}", key) from exc
        except OSError as exc:
            raise TargetUnavailable(f"cannot read {key} from {self.url}: {exc.strerror}") from exc
        with fh:
            yield fh

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def head(self, key: str) -> ObjectInfo | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TargetUnavailable(f"cannot read {self.url}: {exc.strerror}") from exc
        return ObjectInfo(key, st.st_size, st.st_mtime)

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            return
        base, _, _ = prefix.rpartition("/")
        start = self._path(base) if base else self.root
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            if Path(dirpath) == self.root and ".tmp" in dirnames:
                dirnames.remove(".tmp")
            for fname in filenames:
                full = Path(dirpath) / fname
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        st = full.stat()
                    except FileNotFoundError:
                        continue
                    yield ObjectInfo(key, st.st_size, st.st_mtime)

    def children(self, prefix: str = "") -> list[str]:
        start = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not start.is_dir():
            return []
        return sorted(p.name for p in start.iterdir() if p.is_dir() and p.name != ".tmp")

    def remove(self, key: str) -> Removal:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return Removal("missing")
        except PermissionError as exc:
            return Removal("refused", detail=exc.strerror)
        except OSError as exc:
            raise TargetUnavailable(f"cannot remove {key} from {self.url}: {exc.strerror}") from exc
        parent = path.parent
        with contextlib.suppress(OSError):
            _fsync_dir(parent)
            # Empty folders (a blob fan-out folder, a whole generation) go too.
            while parent != self.root and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        return Removal("removed")

    def close(self) -> None:
        pass


# -- S3-compatible object storage -------------------------------------------------


class _LockPolicy:
    """Object Lock retention applied to every upload, decided once per target."""

    def __init__(self, mode: str | None, days: int) -> None:
        self.mode = mode  # "GOVERNANCE", "COMPLIANCE" or None
        self.days = days

    def args(self) -> dict[str, Any]:
        if self.mode is None:
            return {}
        until = datetime.now(UTC) + timedelta(days=self.days)
        return {"ObjectLockMode": self.mode, "ObjectLockRetainUntilDate": until}


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


class S3Target:
    """`ReplicaTarget` on S3-compatible storage (AWS, SeaweedFS, MinIO, Garage, Ceph).

    Uploads use `If-None-Match: *` (write-once) and carry `x-amz-checksum-sha256`, which
    the storage verifies; the echoed checksum must equal ours (else, or with
    `verify = "read"`, the object is read back and hashed). With Object Lock on the bucket
    (`lock = "auto"` detects it), each upload carries a retention date.
    """

    MULTIPART_THRESHOLD = 4 * 1024 * 1024 * 1024
    PART_SIZE = 64 * 1024 * 1024

    def __init__(self, settings: TargetSettings, client: Any = None) -> None:
        parts = urlsplit(settings.url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self._settings = settings
        self._verify_read = settings.verify == "read"
        self._lock: _LockPolicy | None = None
        self._versioning: bool | None = None
        self._lock_mutex = threading.Lock()
        endpoint = (
            query.get("endpoint")
            or settings.endpoint
            or os.environ.get("HOMEPORT_S3_ENDPOINT")
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )
        region = query.get("region") or settings.region or os.environ.get("HOMEPORT_S3_REGION")
        self._client = client if client is not None else self._make_client(endpoint, region)

    def _make_client(self, endpoint: str | None, region: str | None) -> Any:
        import boto3
        from botocore.config import Config as BotoConfig

        key = self._settings.access_key_id or os.environ.get("HOMEPORT_S3_ACCESS_KEY_ID")
        secret = self._settings.secret_access_key or os.environ.get("HOMEPORT_S3_SECRET_ACCESS_KEY")
        config = BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint else "auto"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=16,
        )
        session = boto3.session.Session()
        return session.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region or "us-east-1",
            aws_access_key_id=key or None,
            aws_secret_access_key=secret or None,
            config=config,
        )

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def __repr__(self) -> str:
        return f"S3Target({self.url})"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _unavailable(self, exc: Exception, action: str) -> TargetUnavailable:
        code = _error_code(exc)
        what = f"{code}" if code else type(exc).__name__
        return TargetUnavailable(f"{self.url}: cannot {action} ({what})")

    def lock_policy(self) -> _LockPolicy:
        """Detect (once) whether and how uploads carry Object Lock retention."""
        with self._lock_mutex:
            if self._lock is not None:
                return self._lock
            wanted = self._settings.lock
            days = self._settings.lock_days
            if wanted == "off":
                self._lock = _LockPolicy(None, days)
                return self._lock
            enabled, default_mode = False, None
            try:
                conf = self._client.get_object_lock_configuration(Bucket=self.bucket)
                lock_conf = conf.get("ObjectLockConfiguration", {})
                enabled = lock_conf.get("ObjectLockEnabled") == "Enabled"
                default_mode = lock_conf.get("Rule", {}).get("DefaultRetention", {}).get("Mode")
            except Exception as exc:
                code = _error_code(exc)
                if code not in (
                    "ObjectLockConfigurationNotFoundError",
                    "ObjectLockConfigurationNotFound",
                    "NoSuchObjectLockConfiguration",
                    "NotImplemented",
                    "InvalidRequest",
                ):
                    raise self._unavailable(exc, "read the bucket's Object Lock setting") from exc
            if not enabled:
                if wanted != "auto":
                    raise ConfigError(
                        f"{self.url}: lock = {wanted!r} but the bucket has no Object Lock "
                        '(create it with Object Lock enabled, or set lock = "auto" or "off")'
                    )
                self._lock = _LockPolicy(None, days)
            else:
                mode = wanted.upper() if wanted != "auto" else (default_mode or "GOVERNANCE")
                self._lock = _LockPolicy(mode, days)
            return self._lock

    def _put(self, key: str, body: Any, sha256: str) -> dict[str, Any]:
        try:
            return dict(
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=body,
                    ChecksumSHA256=_b64(sha256),
                    IfNoneMatch="*",
                    ContentType="application/octet-stream",
                    **self.lock_policy().args(),
                )
            )
        except Exception as exc:
            if isinstance(exc, ConfigError | TargetUnavailable):
                raise
            code = _error_code(exc)
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                raise ObjectExists(f"{key} already exists on {self.url}", key) from exc
            if code in ("BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest"):
                raise TargetUnavailable(f"{self.url}: {key} arrived damaged ({code})") from exc
            raise self._unavailable(exc, f"write {key}") from exc

    def _verify(self, key: str, sha256: str, response: dict[str, Any]) -> None:
        echoed = response.get("ChecksumSHA256")
        if echoed and not self._verify_read:
            if echoed != _b64(sha256):
                raise TargetUnavailable(f"{self.url}: the stored checksum of {key} differs")
            return
        digest = hashlib.sha256()
        with self.open(key) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            raise TargetUnavailable(f"{self.url}: {key} reads back different from what was sent")

    def put_bytes(self, key: str, data: bytes) -> None:
        sha256 = hashlib.sha256(data).hexdigest()
        self._verify(key, sha256, self._put(key, data, sha256))

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        if path.stat().st_size > self.MULTIPART_THRESHOLD:
            self._put_multipart(key, path)
            self._verify_read_back(key, sha256)
            return
        with open(path, "rb") as fh:
            response = self._put(key, fh, sha256)
        self._verify(key, sha256, response)

    def _verify_read_back(self, key: str, sha256: str) -> None:
        digest = hashlib.sha256()
        with self.open(key) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            raise TargetUnavailable(f"{self.url}: {key} reads back different from what was sent")

    def _put_multipart(self, key: str, path: Path) -> None:
        """Bodies over 4 GiB: parts with their own checksums, completed write-once."""
        full = self._key(key)
        if self.head(key) is not None:
            raise ObjectExists(f"{key} already exists on {self.url}", key)
        try:
            upload = self._client.create_multipart_upload(
                Bucket=self.bucket,
                Key=full,
                ChecksumAlgorithm="SHA256",
                ContentType="application/octet-stream",
                **self.lock_policy().args(),
            )
            upload_id = upload["UploadId"]
            parts = []
            with open(path, "rb") as fh:
                number = 1
                while chunk := fh.read(self.PART_SIZE):
                    part_sha = _b64(hashlib.sha256(chunk).hexdigest())
                    resp = self._client.upload_part(
                        Bucket=self.bucket,
                        Key=full,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                        ChecksumSHA256=part_sha,
                    )
                    parts.append(
                        {"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": part_sha}
                    )
                    number += 1
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except Exception as exc:
            if isinstance(exc, ConfigError | TargetUnavailable | ObjectExists):
                raise
            code = _error_code(exc)
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ObjectExists(f"{key} already exists on {self.url}", key) from exc
            raise self._unavailable(exc, f"write {key}") from exc

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[Readable]:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise ObjectMissing(f"{key} is missing from {self.url}", key) from exc
            raise self._unavailable(exc, f"read {key}") from exc
        body = response["Body"]
        try:
            yield _SafeBody(body, self, key)
        finally:
            body.close()

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._unavailable(exc, f"look up {key}") from exc
        return ObjectInfo(key, int(response["ContentLength"]), response["LastModified"].timestamp())

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        obj["Key"][strip:], int(obj["Size"]), obj["LastModified"].timestamp()
                    )
        except Exception as exc:
            raise self._unavailable(exc, "list objects") from exc

    def children(self, prefix: str = "") -> list[str]:
        full = self._key(prefix.strip("/") + "/" if prefix.strip("/") else "")
        if not prefix.strip("/") and self.prefix:
            full = self.prefix + "/"
        out: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full, Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    out.append(common["Prefix"][len(full) :].rstrip("/"))
        except Exception as exc:
            raise self._unavailable(exc, "list objects") from exc
        return sorted(out)

    def _versioned(self) -> bool:
        with self._lock_mutex:
            if self._versioning is None:
                try:
                    status = self._client.get_bucket_versioning(Bucket=self.bucket).get("Status")
                except Exception as exc:
                    raise self._unavailable(exc, "read the bucket's versioning") from exc
                self._versioning = status in ("Enabled", "Suspended")
            return self._versioning

    def remove(self, key: str) -> Removal:
        """Delete every version of the object, after checking each one's Object Lock
        retention and legal hold (never bypassed); with versioning, no delete marker is
        ever created (it would hide the object without freeing anything)."""
        full = self._key(key)
        if not self._versioned():
            try:
                self._client.delete_object(Bucket=self.bucket, Key=full)
            except Exception as exc:
                if _error_code(exc) in ("AccessDenied", "403"):
                    return Removal("refused", detail=_error_code(exc))
                raise self._unavailable(exc, f"remove {key}") from exc
            return Removal("removed")
        try:
            versions: list[tuple[str, bool]] = []
            pages = self._client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:
                for v in page.get("Versions", []):
                    if v["Key"] == full:
                        versions.append((v["VersionId"], False))
                for m in page.get("DeleteMarkers", []):
                    if m["Key"] == full:
                        versions.append((m["VersionId"], True))
        except Exception as exc:
            raise self._unavailable(exc, f"list the versions of {key}") from exc
        if not versions:
            return Removal("missing")
        now = datetime.now(UTC)
        for version_id, marker in versions:
            if marker:
                continue
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=full, VersionId=version_id)
            except Exception as exc:
                raise self._unavailable(exc, f"look up {key}") from exc
            until = head.get("ObjectLockRetainUntilDate")
            if head.get("ObjectLockLegalHoldStatus") == "ON":
                return Removal("locked", detail="legal hold")
            if until is not None and until > now:
                return Removal("locked", retain_until=until.timestamp())
        # Data versions first, delete markers last: an interruption never leaves a
        # marker hiding a version that is still there.
        for version_id, _marker in sorted(versions, key=lambda v: v[1]):
            try:
                self._client.delete_object(Bucket=self.bucket, Key=full, VersionId=version_id)
            except Exception as exc:
                code = _error_code(exc)
                if code in ("AccessDenied", "403"):
                    return Removal("refused", detail=code)
                raise self._unavailable(exc, f"remove {key}") from exc
        return Removal("removed")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()


class _SafeBody:
    """A response body whose transport errors become TargetUnavailable."""

    def __init__(self, body: Any, target: S3Target, key: str) -> None:
        self._body = body
        self._target = target
        self._key = key

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._body.read(None if size is None or size < 0 else size))
        except Exception as exc:
            raise self._target._unavailable(exc, f"read {self._key}") from exc

    def readable(self) -> bool:
        return True


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return None


def open_target(settings: TargetSettings, create: bool = False) -> ReplicaTarget:
    """The target a URL names: `file:///path` (or a plain path) or `s3://bucket/prefix`."""
    parts = urlsplit(settings.url)
    if parts.scheme == "s3":
        return S3Target(settings)
    if parts.scheme == "file":
        return FileTarget(Path(parts.path), create=create)
    if parts.scheme == "":
        return FileTarget(Path(settings.url).expanduser().resolve(), create=create)
    raise ConfigError(f"unknown replica URL scheme in {settings.display_url!r}")
