"""The service's TLS certificate: self-signed for loopback, made at ``init``.

Clients pin this certificate (they trust it, and only it, for the service), so no public
certificate authority is involved on a laptop. An operator who runs the service for a
department gives their own certificate and key instead (``--certfile``/``--keyfile``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from alpr_workbench._fsutil import atomic_write_bytes
from alpr_workbench.errors import WorkbenchError

__all__ = ["TLS_DIR", "TlsFiles", "make_loopback_certificate", "tls_files"]

#: Where the certificate and key live, relative to the data directory.
TLS_DIR = Path("service") / "tls"
_VALID_FOR = dt.timedelta(days=825)


@dataclass(frozen=True)
class TlsFiles:
    """The certificate (public: hand it to clients) and its private key (0600)."""

    certfile: Path
    keyfile: Path


def tls_files(home: Path) -> TlsFiles:
    """Where the service's certificate and key live for data directory ``home``."""
    folder = Path(home) / TLS_DIR
    return TlsFiles(certfile=folder / "service-cert.pem", keyfile=folder / "service-key.pem")


def make_loopback_certificate(home: Path) -> TlsFiles:
    """Make a self-signed P-256 certificate for ``127.0.0.1``, ``::1`` and ``localhost``.

    Parameters
    ----------
    home
        The data directory; the files go to ``<home>/service/tls/``.

    Returns
    -------
    TlsFiles
        The certificate (0644) and the key (0600).

    Raises
    ------
    WorkbenchError
        If a certificate is already there (it is never replaced silently: clients pin it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> files = make_loopback_certificate(pathlib.Path(tempfile.mkdtemp()))
    >>> oct(files.keyfile.stat().st_mode & 0o777)
    '0o600'
    """
    files = tls_files(home)
    if files.certfile.exists() or files.keyfile.exists():
        raise WorkbenchError(f"a service certificate already exists in {files.certfile.parent}")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ALPR Workbench"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALID_FOR)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    files.certfile.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_bytes(
        files.keyfile,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        mode=0o600,
    )
    atomic_write_bytes(files.certfile, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return files
