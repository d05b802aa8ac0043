"""A real PostgreSQL with TLS and password auth for the tests: Debian's server binaries, started here.

pgserver is built without TLS, so the TLS tests need another server: the
distribution's (``/usr/lib/postgresql/*/bin``). This module makes a throw-away
certificate authority and a server certificate for ``localhost`` (only: 127.0.0.1 is a wrong host name for it) with
`openssl`, initialises a cluster in a temporary directory with scram password
auth on 127.0.0.1 (TLS only), and starts it on a free port of its own.
PostgreSQL refuses to run as root, and the tests run as root in CI, so the
server then runs as the unprivileged ``postgres`` (or ``nobody``) user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"
CLIENT_CERT_DB = "fb_certdb"  # pg_hba asks a client certificate (CN = the user) for this database only
# A password with every character a URL or a key/value string must encode or quote.
SUPERUSER_PASSWORD = "s3cr@t:/?#% 'x\\y"


def server_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL server's bin directory, or None when none is installed."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    found = [p for p in found if (p / "initdb").is_file() and (p / "pg_ctl").is_file()]
    return found[-1] if found else None


def why_unavailable() -> str | None:
    """Why the TLS server cannot start here (a skip reason), or None when it can."""
    if server_bin_dir() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql-15)"
    if shutil.which("openssl") is None:
        return "no `openssl` command to make the test certificates"
    if os.geteuid() == 0 and _run_user() is None:
        return "running as root and neither a `postgres` nor a `nobody` user exists to run the server as"
    return None


def _run_user() -> pwd.struct_passwd | None:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA in `directory`: (certificate, key)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", key.name, "-out", cert.name, cwd=directory)  # fmt: skip
    return cert, key


def make_server_cert(directory: Path, ca: tuple[Path, Path], names: str = "DNS:localhost", cn: str = "localhost",
                     stem: str = "server") -> tuple[Path, Path]:  # fmt: skip
    """A certificate for `names` (CN `cn`) signed by `ca`: (certificate, key)."""
    cert, key, csr, ext = (directory / f"{stem}.{x}" for x in ("crt", "key", "csr", "cnf"))
    ext.write_text(f"subjectAltName={names}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n")
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
             "-keyout", key.name, "-out", csr.name, cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", csr.name, "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-days", "2", "-extfile", ext.name, "-out", cert.name, cwd=directory)  # fmt: skip
    return cert, key


@dataclass
class TlsServer:
    root: Path
    port: int
    ca_cert: Path  # the CA that signed the server's certificate
    wrong_ca_cert: Path  # a CA that did not
    client_cert: Path  # for the superuser, signed by the CA; key next to it (.key)
    socket_dir: Path
    bin_dir: Path
    user: pwd.struct_passwd | None

    def url(self, database: str = "postgres", **params: str) -> str:
        """A TCP URL to `database` as the superuser (password percent-encoded)."""
        from urllib.parse import quote, urlencode

        query = ("?" + urlencode(params, quote_via=quote)) if params else ""
        return f"postgresql://{SUPERUSER}:{quote(SUPERUSER_PASSWORD, safe='')}@localhost:{self.port}/{database}{query}"

    def admin_url(self, database: str = "postgres") -> str:
        """The Unix-socket URL, trusted locally: for setting up databases and roles."""
        from urllib.parse import quote

        return f"postgresql://{SUPERUSER}@localhost/{database}?host={quote(str(self.socket_dir))}&port={self.port}"

    def stop(self) -> None:
        self._as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "pgdata"), "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _as_server_user_or_fail(self, cmd: list[str]) -> None:
        done = self._as_server_user(cmd, check=False)
        if done.returncode != 0:
            shutil.rmtree(self.root, ignore_errors=True)
            raise RuntimeError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")

    def _as_server_user(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        if self.user is not None:
            cmd = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--clear-groups", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)


def start_tls_server() -> TlsServer:
    """initdb + TLS certificates + pg_ctl start in a fresh temporary directory; returns the running server."""
    bin_dir = server_bin_dir()
    assert bin_dir is not None, why_unavailable()
    user = _run_user() if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="fb-pgtls-"))
    root.chmod(0o755)
    certs = root / "certs"
    certs.mkdir()
    ca = make_ca(certs, "fb-test-ca")
    wrong_ca = make_ca(certs, "fb-other-ca")
    server_cert, server_key = make_server_cert(certs, ca)
    client_cert, client_key = make_server_cert(certs, ca, names=f"DNS:{SUPERUSER}", cn=SUPERUSER, stem="client")
    for path in certs.iterdir():
        path.chmod(0o644)
    server_key.chmod(0o600)
    client_key.chmod(0o600)  # libpq refuses a key others can read
    socket_dir, pgdata = root / "sock", root / "pgdata"
    socket_dir.mkdir()
    pgdata.mkdir(mode=0o700)
    pwfile = root / "pwfile"
    pwfile.write_text(SUPERUSER_PASSWORD + "\n")
    if user is not None:
        for path in (socket_dir, pgdata, pwfile, server_key, server_cert):
            os.chown(path, user.pw_uid, user.pw_gid)
    server = TlsServer(root, free_port(), ca[0], wrong_ca[0], client_cert, socket_dir, bin_dir, user)
    server._as_server_user_or_fail([
        str(bin_dir / "initdb"), "-D", str(pgdata), "-U", SUPERUSER, f"--pwfile={pwfile}", "--encoding=UTF8",
        "--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions",
    ])  # fmt: skip
    pwfile.unlink()
    with open(pgdata / "postgresql.conf", "a") as conf:
        conf.write(
            f"\nport = {server.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\n"
            f"ssl = on\nssl_cert_file = '{server_cert}'\nssl_key_file = '{server_key}'\nssl_ca_file = '{ca[0]}'\n"
            "password_encryption = 'scram-sha-256'\nfsync = off\nmax_connections = 60\n"
        )
    # TCP only over TLS: a connection that silently fell back to plain text would fail, not pass.
    (pgdata / "pg_hba.conf").write_text(
        "local all all trust\n"
        f"hostssl {CLIENT_CERT_DB} all 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n"
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
        "hostnossl all all 0.0.0.0/0 reject\n"
    )
    if user is not None:
        os.chown(pgdata / "pg_hba.conf", user.pw_uid, user.pw_gid)
    started = server._as_server_user(
        [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "server.log"), "-w", "-t", "60", "start"], check=False
    )
    if started.returncode != 0:
        log = (pgdata / "server.log").read_text() if (pgdata / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"the TLS test server did not start: {started.stderr}\n{log[-2000:]}")
    deadline = time.monotonic() + 30
    while not (socket_dir / f".s.PGSQL.{server.port}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return server
