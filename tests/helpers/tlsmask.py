"""A stand-in mask site: a real TLS server (Python's ssl, OpenSSL underneath) with a throwaway certificate.

TLSSite(domain) makes a CA and a certificate for `domain` (cryptography), serves TLS 1.2/1.3 on
127.0.0.1, and answers any HTTP request over it with a small page and a Date header (date_offset
seconds off the real time, to play a site whose clock is wrong). .ca_file is the CA to trust.
Loopback only.
"""

import datetime
import email.utils
import ssl
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers.origin import ThreadedTCP, read_head

PAGE = b"<html><body>a small site</body></html>\n"


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(domain, directory):
    """-> (cert chain file, key file, CA file) for domain, signed by a throwaway CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("throwaway test CA")).issuer_name(_name("throwaway test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(domain)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    d = Path(directory)
    pem = serialization.Encoding.PEM
    (d / "site.pem").write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    (d / "site.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    return str(d / "site.pem"), str(d / "site.key"), str(d / "ca.pem")


class TLSSite(ThreadedTCP):
    def __init__(self, domain, date_offset=0):
        self.domain = domain
        self.date_offset = date_offset
        self.dir = tempfile.TemporaryDirectory(prefix="tlsmask-")
        chain, key, self.ca_file = make_cert(domain, self.dir.name)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(chain, key)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.handshakes = 0
        super().__init__()
        self.start()

    def serve(self, c):
        c.settimeout(3)
        try:
            t = self.ctx.wrap_socket(c, server_side=True)
            self.handshakes += 1
            if read_head(t) is None:
                return
            date = email.utils.formatdate(time.time() + self.date_offset, usegmt=True).encode()
            t.sendall(b"HTTP/1.1 200 OK\r\nDate: " + date + b"\r\nContent-Type: text/html\r\nContent-Length: "
                      + str(len(PAGE)).encode() + b"\r\nConnection: close\r\n\r\n" + PAGE)
            t.close()
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        return ctx

    def close(self):
        super().close()
        self.dir.cleanup()
