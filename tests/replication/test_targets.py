"""The `ReplicaTarget` contract, one suite for every implementation (a folder, S3)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from homeport.errors import ConfigError
from homeport.replication.errors import ObjectExists, ObjectMissing, TargetUnavailable
from homeport.replication.settings import TargetSettings
from homeport.replication.targets import FileTarget, S3Target, open_target
from tests.replication.conftest import Replica, new_bucket, s3_settings
from tests.replication.seaweed import SeaweedFS


def test_write_once_read_back_list(replica: Replica, tmp_path: Path) -> None:
    target = replica.open()
    target.put_bytes("g1/segments/a.age", b"first")
    with pytest.raises(ObjectExists):
        target.put_bytes("g1/segments/a.age", b"second")
    assert target.get_bytes("g1/segments/a.age") == b"first"

    big = tmp_path / "big"
    data = os.urandom(3 << 20)
    big.write_bytes(data)
    target.put_file("g1/blobs/ab/abc.age", big, hashlib.sha256(data).hexdigest())
    with target.open("g1/blobs/ab/abc.age") as fh:
        assert fh.read() == data
    with pytest.raises(ObjectExists):
        target.put_file("g1/blobs/ab/abc.age", big, hashlib.sha256(data).hexdigest())

    info = target.head("g1/blobs/ab/abc.age")
    assert info is not None and info.size == len(data)
    assert target.head("g1/nothing") is None
    with pytest.raises(ObjectMissing):
        target.get_bytes("g1/nothing")
    with pytest.raises(ObjectMissing), target.open("g1/nothing"):
        pass

    target.put_bytes("g2/generation.json.zst.age", b"x")
    assert sorted(i.key for i in target.list_objects("g1/")) == [
        "g1/blobs/ab/abc.age",
        "g1/segments/a.age",
    ]
    assert sorted(i.key for i in target.list_objects("")) == [
        "g1/blobs/ab/abc.age",
        "g1/segments/a.age",
        "g2/generation.json.zst.age",
    ]
    assert target.children("") == ["g1", "g2"]
    assert target.children("g1") == ["blobs", "segments"]
    assert "secret" not in repr(target).lower()
    target.close()


def test_a_missing_folder_is_an_unmounted_disk(tmp_path: Path) -> None:
    target = FileTarget(tmp_path / "not-mounted")
    with pytest.raises(TargetUnavailable, match="is the disk mounted"):
        target.put_bytes("g/x", b"x")
    assert not (tmp_path / "not-mounted").exists()
    assert list(target.list_objects("")) == []


def test_an_unreachable_server_is_unavailable() -> None:
    settings = TargetSettings(
        name="down",
        url="s3://bucket/p?endpoint=http://127.0.0.1:9",
        access_key_id="k",
        secret_access_key="s",
    )
    target = open_target(settings)
    with pytest.raises(TargetUnavailable):
        target.put_bytes("g/x", b"x")
    with pytest.raises(TargetUnavailable):
        list(target.list_objects(""))


def test_wrong_credentials_are_unavailable_and_not_echoed(seaweed: SeaweedFS) -> None:
    bucket = new_bucket(seaweed)
    settings = TargetSettings(
        name="bad",
        url=f"s3://{bucket}/p?endpoint={seaweed.endpoint}",
        access_key_id="homeport-test",
        secret_access_key="wrong-secret-value",
    )
    target = open_target(settings)
    with pytest.raises(TargetUnavailable) as info:
        target.put_bytes("g/x", b"x")
    assert "wrong-secret-value" not in str(info.value)
    assert "wrong-secret-value" not in repr(settings)


def test_object_lock_retention_is_set_when_the_bucket_has_it(seaweed: SeaweedFS) -> None:
    locked = new_bucket(seaweed, lock=True)
    settings = s3_settings(seaweed, locked, lock_days=2)
    prefix = settings.url.split("/")[3].split("?")[0]
    target = open_target(settings)
    _retrying(lambda: target.put_bytes("g/segments/x.age", b"keep me"))
    client = seaweed.client()
    head = client.head_object(Bucket=locked, Key=f"{prefix}/g/segments/x.age")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"].timestamp() > head["LastModified"].timestamp() + 86400
    with pytest.raises(Exception, match=r"AccessDenied|Access Denied|retention|locked"):
        client.delete_object(
            Bucket=locked, Key=f"{prefix}/g/segments/x.age", VersionId=head["VersionId"]
        )
    assert target.get_bytes("g/segments/x.age") == b"keep me"

    plain = new_bucket(seaweed)
    settings = s3_settings(seaweed, plain)
    prefix = settings.url.split("/")[3].split("?")[0]
    target = open_target(settings)
    target.put_bytes("g/x", b"x")  # auto: no lock on a bucket without it
    assert "ObjectLockMode" not in client.head_object(Bucket=plain, Key=f"{prefix}/g/x")
    strict = open_target(s3_settings(seaweed, plain, lock="compliance"))
    with pytest.raises(ConfigError, match="no Object Lock"):
        strict.put_bytes("g/y", b"y")


def _retrying(action: Callable[[], None], attempts: int = 10) -> None:
    """TargetUnavailable is retryable by contract (SeaweedFS may answer 500 for a moment
    after a locked bucket is created, under load)."""
    for _ in range(attempts - 1):
        try:
            action()
            return
        except TargetUnavailable:
            time.sleep(0.5)
    action()


def test_large_bodies_go_in_parts(seaweed: SeaweedFS, tmp_path: Path) -> None:
    target = open_target(s3_settings(seaweed, new_bucket(seaweed)))
    assert isinstance(target, S3Target)
    target.MULTIPART_THRESHOLD = 6 << 20
    target.PART_SIZE = 5 << 20
    data = os.urandom(12 << 20)
    path = tmp_path / "large"
    path.write_bytes(data)
    target.put_file("g/blobs/aa/large.age", path, hashlib.sha256(data).hexdigest())
    assert target.get_bytes("g/blobs/aa/large.age") == data
    with pytest.raises(ObjectExists):
        target.put_file("g/blobs/aa/large.age", path, hashlib.sha256(data).hexdigest())


def test_read_back_verification(seaweed: SeaweedFS) -> None:
    target = open_target(s3_settings(seaweed, new_bucket(seaweed), verify="read"))
    target.put_bytes("g/x", b"verified by reading")
    assert target.get_bytes("g/x") == b"verified by reading"
