"""`homeport serve --cert --key` serves HTTPS itself (for setups without a reverse proxy)."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import PASSWORD, homeport, start_server


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_with_cert_and_key(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    srv = start_server(tmp_path / "d", extra=("--cert", str(cert), "--key", str(key)))
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        url = srv.url.replace("http://", "https://")
        with httpx.Client(base_url=url, auth=("alice", PASSWORD), verify=ctx) as c:
            r = c.request("PROPFIND", "/dav/alice/", headers={"Depth": "0"})
            assert r.status_code == 207
    finally:
        srv.stop()


def test_cert_without_key_is_a_usage_error(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    r = homeport("serve", "--data", str(tmp_path / "d"), "--cert", str(cert), check=False)
    assert r.returncode == 2 and "--cert and --key go together" in r.stderr
