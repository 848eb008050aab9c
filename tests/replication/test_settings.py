"""`[replication]` and `[replica.NAME]` tables, environment and flags; secrets stay out."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeport.errors import ConfigError
from homeport.replication.settings import find_target, from_document, load


def test_tables_flags_and_environment(tmp_path: Path) -> None:
    creds = tmp_path / "s3.toml"
    creds.write_text('access_key_id = "AKIA-X"\nsecret_access_key = "very-secret"\n')
    config = tmp_path / "homeport.toml"
    config.write_text(
        '[server]\ndata = "/srv/homeport"\n'
        '[replication]\nrecipients = ["age1aaa"]\ninterval = 0.5\n'
        'drill_identity = "/etc/k.txt"\n'
        '[replica.offsite]\nurl = "s3://b/p"\nregion = "eu-1"\n'
        f'credentials_file = "{creds}"\nlock = "governance"\nlock_days = 7\n'
        '[replica.nas]\nurl = "file:///mnt/nas/hp"\nrecipients = ["age1bbb"]\n'
    )
    s = load(
        config,
        urls=["file:///media/usb"],
        recipients=["age1ccc"],
        environ={"HOMEPORT_REPLICA_RECIPIENTS": "age1ddd, age1eee"},
    )
    assert [t.name for t in s.targets] == ["offsite", "nas", "file:///media/usb"]
    offsite = find_target(s, "offsite")
    assert offsite.secret_access_key == "very-secret" and offsite.lock_days == 7
    assert "very-secret" not in repr(offsite) and "very-secret" not in repr(s)
    assert s.recipients == ("age1aaa", "age1ddd", "age1eee", "age1ccc")
    assert s.recipients_for(find_target(s, "nas")) == ("age1bbb",)
    assert s.interval == 0.5 and s.drill_identity == "/etc/k.txt"
    assert find_target(s, "s3://other/x").url == "s3://other/x"
    with pytest.raises(ConfigError, match="no replica target named"):
        find_target(s, "nowhere")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"replica": {"x": {}}}, "url is required"),
        ({"replica": {"x": {"url": "ftp://h/p"}}}, "file:///PATH or s3://"),
        ({"replica": {"x": {"url": "s3://k:s@b/p"}}}, "credentials do not go"),
        ({"replica": {"x": {"url": "file://relative"}}}, "absolute path"),
        ({"replica": {"x": {"url": "s3://b/p", "lock": "maybe"}}}, "lock must be"),
        ({"replica": {"x": {"url": "s3://b/p", "colour": "red"}}}, "unknown setting"),
        ({"replica": {"bad name": {"url": "s3://b/p"}}}, "replica names"),
        ({"replication": {"interval": "soon"}}, "number of seconds"),
        ({"replication": {"speed": 1}}, "unknown setting"),
    ],
)
def test_bad_settings_are_explained(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_document(doc)
