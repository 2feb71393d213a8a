"""A real redis-server speaking only TLS, with a throwaway CA, for tests.

``make_certificates`` runs ``openssl`` to write, into a directory: a CA, a
server certificate signed by it (SAN IP:127.0.0.1 and DNS:localhost,
serverAuth), a client certificate and key signed by it (clientAuth), and a
second, unrelated CA with a client certificate of its own (for "wrong CA"
tests in either direction). Keys are P-256 EC (fast to make); the
certificates carry the key-usage and key-identifier extensions that strict
verifiers (Python 3.13's default context) insist on. Valid for 2 days.

``RedisTLSServer`` starts redis-server with ``--port 0`` (no plaintext port) and
``--tls-port <free port>``; ``auth_clients`` is ``--tls-auth-clients``:
``"yes"`` (a client certificate signed by the CA is required), ``"optional"``
(verified if sent) or ``"no"``. Debian's redis-server 7.0 is built with TLS
(``BUILD_TLS=yes``, linked to libssl3): no other package is needed.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import redis

from tests.support.redis_process import (
    HOST,
    RedisNode,
    no_retry,
    track_topology,
    untrack_topology,
)
from tests.support.redis_server import free_port

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
AuthClients = Literal["yes", "optional", "no"]

_CA_EXTENSIONS = """\
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""
_LEAF_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = {usage}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""
_SERVER_SAN = "subjectAltName = IP:127.0.0.1, DNS:localhost\n"


@dataclass(frozen=True)
class TlsFiles:
    """Paths (as strings, as redis-py and redis-server take them) of the generated files."""

    ca_certs: str
    ca_key: str
    server_cert: str
    server_key: str
    certfile: str
    keyfile: str
    wrong_ca_certs: str
    wrong_certfile: str
    wrong_keyfile: str


def _openssl(directory: Path, *args: str) -> None:
    result = subprocess.run(
        [OPENSSL, *args], cwd=directory, capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr[-2000:]}")


def _make_ca(directory: Path, name: str, common_name: str) -> tuple[Path, Path]:
    config = directory / f"{name}.cnf"
    config.write_text(_CA_EXTENSIONS)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        directory,
        "req", "-x509", "-new", "-nodes",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(cert),
        "-days", "2", "-subj", f"/CN={common_name}",
        "-config", str(config), "-extensions", "v3_ca",
    )  # fmt: skip
    return cert, key


def _make_leaf(
    directory: Path, name: str, common_name: str, ca: tuple[Path, Path], extensions: str
) -> tuple[Path, Path]:
    cert, key, csr = (directory / f"{name}{ext}" for ext in (".crt", ".key", ".csr"))
    extfile = directory / f"{name}.ext"
    extfile.write_text(extensions)
    _openssl(
        directory,
        "req", "-new", "-nodes",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={common_name}",
    )  # fmt: skip
    _openssl(
        directory,
        "x509", "-req", "-in", str(csr),
        "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-sha256", "-extfile", str(extfile),
    )  # fmt: skip
    csr.unlink()
    return cert, key


def make_certificates(directory: Path) -> TlsFiles:
    """Write a CA, server and client certificates, and an unrelated CA + client, to
    ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _make_ca(directory, "ca", "salescast test CA")
    server_extensions = _LEAF_EXTENSIONS.format(usage="serverAuth") + _SERVER_SAN
    client_extensions = _LEAF_EXTENSIONS.format(usage="clientAuth")
    server = _make_leaf(directory, "server", "127.0.0.1", ca, server_extensions)
    client = _make_leaf(directory, "client", "salescast test client", ca, client_extensions)
    wrong_ca = _make_ca(directory, "wrong-ca", "unrelated test CA")
    wrong_client = _make_leaf(
        directory, "wrong-client", "client of the unrelated CA", wrong_ca, client_extensions
    )
    return TlsFiles(
        ca_certs=str(ca[0]),
        ca_key=str(ca[1]),
        server_cert=str(server[0]),
        server_key=str(server[1]),
        certfile=str(client[0]),
        keyfile=str(client[1]),
        wrong_ca_certs=str(wrong_ca[0]),
        wrong_certfile=str(wrong_client[0]),
        wrong_keyfile=str(wrong_client[1]),
    )


def client_ssl_context(files: TlsFiles, *, client_cert: bool = True) -> ssl.SSLContext:
    """A client-side context trusting ``files``' CA (and presenting its client certificate)."""
    context = ssl.create_default_context(cafile=files.ca_certs)
    if client_cert:
        context.load_cert_chain(files.certfile, files.keyfile)
    return context


def client_tls_options(files: TlsFiles) -> dict[str, Any]:
    """redis-py's keyword arguments for a TLS connection with ``files``' CA and client
    certificate."""
    return {
        "ssl": True,
        "ssl_ca_certs": files.ca_certs,
        "ssl_certfile": files.certfile,
        "ssl_keyfile": files.keyfile,
    }


def server_tls_settings(
    files: TlsFiles, auth_clients: AuthClients = "yes"
) -> list[tuple[str, str]]:
    """The tls-* settings of a redis-server (or sentinel) serving with ``files``.

    Its outgoing TLS connections (cluster bus, replication, a sentinel's links) present
    the *client* certificate (``tls-client-cert-file``): the server certificate is for
    serverAuth only, and a peer with ``tls-auth-clients yes`` verifies the client purpose.
    """
    return [
        ("tls-cert-file", files.server_cert),
        ("tls-key-file", files.server_key),
        ("tls-client-cert-file", files.certfile),
        ("tls-client-key-file", files.keyfile),
        ("tls-ca-cert-file", files.ca_certs),
        ("tls-auth-clients", auth_clients),
    ]


def server_tls_args(files: TlsFiles, auth_clients: AuthClients = "yes") -> list[str]:
    """``server_tls_settings`` as redis-server command-line arguments."""
    return [
        arg
        for name, value in server_tls_settings(files, auth_clients)
        for arg in (f"--{name}", value)
    ]


class TlsFileProperties:
    """The certificate files of a topology started with ``tls=True`` (mixed into the
    Cluster and Sentinel fixtures, which set ``files``)."""

    files: TlsFiles | None

    @property
    def tls(self) -> bool:
        return self.files is not None

    def _tls_files(self) -> TlsFiles:
        if self.files is None:
            raise RuntimeError(f"this {type(self).__name__} was made without tls=True")
        return self.files

    @property
    def ca_certs(self) -> str:
        return self._tls_files().ca_certs

    @property
    def certfile(self) -> str:
        return self._tls_files().certfile

    @property
    def keyfile(self) -> str:
        return self._tls_files().keyfile

    @property
    def wrong_ca_certs(self) -> str:
        return self._tls_files().wrong_ca_certs

    def tls_options(self) -> dict[str, Any]:
        """redis-py's TLS keyword arguments (CA, client certificate); ``{}`` without TLS."""
        return {} if self.files is None else client_tls_options(self.files)


class RedisTLSServer:
    """One redis-server with only a TLS port; its certificates in its own temp dir.

    ``start`` / ``stop`` / ``kill`` / ``freeze`` / ``thaw`` / ``restart``; ``url``;
    the client-side files ``ca_certs``, ``certfile``, ``keyfile``, ``wrong_ca_certs``
    (and ``wrong_certfile``/``wrong_keyfile``, a client certificate of the wrong CA);
    ``client(**kwargs)`` a redis-py client set up for it. Context manager or ``stop``.
    """

    def __init__(self, *, auth_clients: AuthClients = "yes", password: str | None = None) -> None:
        self.host = HOST
        self.port = free_port()
        self.auth_clients = auth_clients
        self.password = password
        self._dir = Path(tempfile.mkdtemp(prefix="salescast-redis-tls-"))
        self._started = False
        try:
            self.files = make_certificates(self._dir / "certs")
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        args = [
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", self.files.server_cert,
            "--tls-key-file", self.files.server_key,
            "--tls-ca-cert-file", self.files.ca_certs,
            "--tls-auth-clients", auth_clients,
            "--save", "",
            "--appendonly", "no",
            "--loglevel", "notice",
        ]  # fmt: skip
        if password:
            args += ["--requirepass", password]
        self.node = RedisNode(
            self._dir / "data", self.port, args, password=password, tls=self.ssl_context()
        )

    # -- addresses and files ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """``rediss://[:password@]127.0.0.1:<tls port>/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"rediss://{auth}{self.host}:{self.port}/0"

    @property
    def ca_certs(self) -> str:
        return self.files.ca_certs

    @property
    def certfile(self) -> str:
        return self.files.certfile

    @property
    def keyfile(self) -> str:
        return self.files.keyfile

    @property
    def wrong_ca_certs(self) -> str:
        return self.files.wrong_ca_certs

    @property
    def wrong_certfile(self) -> str:
        return self.files.wrong_certfile

    @property
    def wrong_keyfile(self) -> str:
        return self.files.wrong_keyfile

    @property
    def pid(self) -> int | None:
        return self.node.pid

    def ssl_context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        """A client-side context trusting the CA (and presenting the client cert)."""
        return client_ssl_context(self.files, client_cert=client_cert)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A redis-py client over TLS: the CA, the client certificate, 1 s timeouts, no
        retries (a failed handshake fails at once, not after 3 backed-off retries).
        Keyword arguments override (e.g. ``ssl_ca_certs=server.wrong_ca_certs``)."""
        options: dict[str, Any] = {
            "ssl": True,
            "ssl_ca_certs": self.ca_certs,
            "ssl_certfile": self.certfile,
            "ssl_keyfile": self.keyfile,
            "socket_timeout": 1.0,
            "socket_connect_timeout": 1.0,
            "password": self.password,
            "retry": no_retry(),
            **kwargs,
        }
        return redis.Redis(host=self.host, port=self.port, **options)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> RedisTLSServer:
        if self._started:
            raise RuntimeError("already started")
        self._started = True
        track_topology(self)
        try:
            self.node.start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (by pid) and remove its directory, certificates included."""
        self.node.stop()
        untrack_topology(self)
        shutil.rmtree(self._dir, ignore_errors=True)

    def kill(self) -> None:
        self.node.kill()

    def freeze(self) -> None:
        self.node.freeze()

    def thaw(self) -> None:
        self.node.thaw()

    def restart(self, timeout: float = 10.0) -> None:
        self.node.restart(timeout)

    def __enter__(self) -> RedisTLSServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
