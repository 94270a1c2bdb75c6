#!/usr/bin/env python3
"""Cross-check `portcullis verify --compat cursive` against the real cursive.

Runs the same cases through OpenStack cursive 0.3.1 (in this process, with a
key manager that mimics Barbican over testdata/certs) and through the
portcullis binary, and compares verdicts and, for rejections, cursive's
message with the `cursive_message` portcullis reports.

Needs a Python with cursive installed (it is not a test dependency):
    python3 -m venv /tmp/venv-cursive && /tmp/venv-cursive/bin/pip install cursive==0.3.1
    cargo build --release
    /tmp/venv-cursive/bin/python benches/verify-crosscheck.py [path/to/portcullis]
Both sides use the real clock (cursive reads it itself). Exit status 1 when
an unexpected difference is found. Expected differences are listed as such:
binary curves (cursive 0.3.1 with cryptography >= 47 lacks them; portcullis
accepts them as cursive did before) and cases where cursive crashes or hangs
(portcullis rejects).
"""

import base64
import json
import os
import re
import subprocess
import sys
import uuid

from castellan.common import exception as castellan_exception
from castellan.common.objects import x_509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import cursive.signature_utils as signature_utils
import cursive.certificate_utils as certificate_utils

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TD = os.path.join(ROOT, "testdata")
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/portcullis")
INDEX = dict(line.split() for line in open(os.path.join(TD, "certs/INDEX")))
DATA = os.path.join(TD, "signatures/data.bin")


class Secret:
    """What castellan hands back for a non-certificate secret."""

    def __init__(self, fmt):
        self.format = fmt

    def get_encoded(self):
        return b""


class BarbicanLikeKeyManager:
    """castellan + barbicanclient semantics over testdata/certs (see the reference, section 7)."""

    def get(self, context, managed_object_id, metadata_only=False):
        if not managed_object_id:
            raise castellan_exception.KeyManagerError("empty id")
        uuid.UUID(managed_object_id.rstrip("/").rsplit("/", 1)[-1])  # ValueError as barbicanclient
        name = str(uuid.UUID(managed_object_id.rsplit("/", 1)[-1]))
        base = os.path.join(TD, "certs", name)
        if os.path.exists(base + ".der"):
            return x_509.X509(open(base + ".der", "rb").read())
        if not os.path.exists(base + ".pem"):
            raise castellan_exception.ManagedObjectNotFoundError(uuid=managed_object_id)
        data = open(base + ".pem", "rb").read()
        match = re.search(rb"-----BEGIN ([A-Z0-9 ]+)-----", data)
        label = match.group(1).decode() if match else ""
        if label == "CERTIFICATE":
            cert = x509.load_pem_x509_certificate(data)  # ValueError on garbage, as castellan
            return x_509.X509(cert.public_bytes(serialization.Encoding.DER))
        if label.endswith("PRIVATE KEY"):
            return Secret("PKCS8")
        if label.endswith("PUBLIC KEY"):
            return Secret("SubjectPublicKeyInfo")
        if label:
            return Secret("Opaque")
        raise ValueError("not PEM")


class FakeApi:
    def __call__(self, *args, **kwargs):
        return BarbicanLikeKeyManager()


signature_utils.key_manager.API = FakeApi()


def cursive_verdict(sig, hash_method, key_type, cert_id, data, trusted):
    """Returns ("ok", None) or ("reject", message)."""
    try:
        verifier = signature_utils.get_verifier(
            context=None,
            img_signature_certificate_uuid=cert_id,
            img_signature_hash_method=hash_method,
            img_signature=sig,
            img_signature_key_type=key_type,
        )
        if trusted is not None:
            certificate_utils.verify_certificate(
                context=None,
                certificate_uuid=cert_id,
                trusted_certificate_uuids=trusted,
            )
        verifier.update(open(data, "rb").read())
        verifier.verify()
        return "ok", None
    except signature_utils.exception.SignatureVerificationError as err:
        return "reject", str(err)
    except Exception as err:  # InvalidSignature, ValueError, TypeError: cursive's crash classes
        if type(err).__name__ == "InvalidSignature":
            return "reject", "Signature verification failed"
        return "crash", f"{type(err).__name__}: {err}"


def portcullis_verdict(sig, hash_method, key_type, cert_id, data, trusted):
    cmd = [BIN, "verify", data, "--cert-dir", os.path.join(TD, "certs"), "--compat", "cursive",
           "--format", "json", "--signature", sig, "--hash-method", hash_method,
           "--key-type", key_type, "--cert-uuid", cert_id]
    for t in trusted or []:
        cmd += ["--trusted-cert", t]
    if trusted == []:
        cmd += ["--trusted-list", "/dev/null"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    out = json.loads(subprocess.run(cmd, capture_output=True, env=env).stdout)
    if out["verified"]:
        return "ok", None
    return "reject", out["error"].get("cursive_message") or f"[{out['error']['kind']}] {out['error']['message']}"


def sig(name):
    return open(os.path.join(TD, f"signatures/{name}.b64")).read().strip()


def b64(data):
    return base64.b64encode(data).decode()


CASES = []


def case(label, signature, hash_method, key_type, cert, trusted=None, expect_difference=None):
    cert_id = INDEX.get(cert, cert)
    trusted_ids = None if trusted is None else [INDEX.get(t, t) for t in trusted]
    CASES.append((label, signature, hash_method, key_type, cert_id, trusted_ids, expect_difference))


for h in ["sha224", "sha256", "sha384", "sha512"]:
    m = "SHA-" + h[3:]
    case(f"rsa2048 {m}", sig(f"rsa2048.{h}"), m, "RSA-PSS", "cert-rsa2048")
    case(f"p384 {m}", sig(f"p384.{h}"), m, "ECC_SECP384R1", "cert-p384")
    case(f"p521 {m}", sig(f"p521.{h}"), m, "ECC_SECP521R1", "cert-p521")
    case(f"dsa2048 {m}", sig(f"dsa2048.{h}"), m, "DSA", "cert-dsa2048")
    case(f"sect571k1 {m}", sig(f"sect571k1.{h}"), m, "ECC_SECT571K1", "cert-sect571k1",
         expect_difference="binary curves: cursive 0.3.1 + cryptography >= 47 lacks them")
for k in ["rsa4096", "rsa1024", "rsa512", "rsa2049", "rsa2048e3", "rsapss2048"]:
    case(k, sig(f"{k}.sha256"), "SHA-256", "RSA-PSS", f"cert-{k}")
case("dsa1024", sig("dsa1024.sha256"), "SHA-256", "DSA", "cert-dsa1024")
case("dsa3072", sig("dsa3072.sha256"), "SHA-256", "DSA", "cert-dsa3072")
case("p256 as ECC_SECP384R1", sig("p256.sha256"), "SHA-256", "ECC_SECP384R1", "cert-p256")
case("p384 as ECC_SECP521R1", sig("p384.sha256"), "SHA-256", "ECC_SECP521R1", "cert-p384")
for salt in [0, 1, 20, 32, 221]:
    case(f"pss salt {salt}", sig(f"rsa2048.sha256.salt{salt}"), "SHA-256", "RSA-PSS", "cert-rsa2048")
case("pss mgf1 sha1", sig("rsa2048.sha256.mgf1sha1"), "SHA-256", "RSA-PSS", "cert-rsa2048")
case("pkcs1 v1.5", sig("rsa2048.sha256.pkcs1"), "SHA-256", "RSA-PSS", "cert-rsa2048")
lz = base64.b64decode(sig("rsa2048.sha256.leadingzero"))
case("short rsa signature", b64(lz[1:]), "SHA-256", "RSA-PSS", "cert-rsa2048")
case("long rsa signature", b64(b"\0" + lz), "SHA-256", "RSA-PSS", "cert-rsa2048")
der = base64.b64decode(sig("p384.sha256"))
case("ecdsa trailing byte", b64(der + b"\0"), "SHA-256", "ECC_SECP384R1", "cert-p384")
s = sig("rsa2048.sha256")
case("base64 with garbage", s[:10] + "!*" + s[10:], "SHA-256", "RSA-PSS", "cert-rsa2048")
case("base64 after padding", s + "QUJD", "SHA-256", "RSA-PSS", "cert-rsa2048")
case("base64 wrapped", "\n".join(s[i:i + 64] for i in range(0, len(s), 64)), "SHA-256", "RSA-PSS", "cert-rsa2048")
case("base64 url-safe", s.replace("+", "-").replace("/", "_"), "SHA-256", "RSA-PSS", "cert-rsa2048")
case("base64 truncated", s[:-3], "SHA-256", "RSA-PSS", "cert-rsa2048")
case("non-ascii", s + "\u00e9", "SHA-256", "RSA-PSS", "cert-rsa2048", expect_difference="cursive crashes (ValueError)")
case("empty signature", "", "SHA-256", "RSA-PSS", "cert-rsa2048")
case("padding only", "====", "SHA-256", "RSA-PSS", "cert-rsa2048")
case("empty signature, unknown cert", "", "SHA-256", "RSA-PSS", "00000000-0000-4000-8000-000000000000")
case("hash sha256", s, "sha256", "RSA-PSS", "cert-rsa2048")
case("key type RSA", s, "SHA-256", "RSA", "cert-rsa2048")
case("key type ECC_SECP256R1", s, "SHA-256", "ECC_SECP256R1", "cert-rsa2048")
case("rsa cert as DSA", s, "SHA-256", "DSA", "cert-rsa2048")
case("ed25519 cert", s, "SHA-256", "RSA-PSS", "cert-ed25519")
case("unknown cert", s, "SHA-256", "RSA-PSS", "00000000-0000-4000-8000-000000000000")
case("non-uuid cert", s, "SHA-256", "RSA-PSS", "not-a-uuid", expect_difference="cursive crashes (ValueError)")
case("href cert id", s, "SHA-256", "RSA-PSS", "https://kms/v1/secrets/" + INDEX["cert-rsa2048"])
for name in ["store-private-key", "store-public-key", "store-ec-params", "store-leading-text", "store-bundle", "store-der"]:
    case(name, s, "SHA-256", "RSA-PSS", name)
case("store-garbage", s, "SHA-256", "RSA-PSS", "store-garbage", expect_difference="cursive crashes (ValueError)")
case("expired cert, no chain", s, "SHA-256", "RSA-PSS", "cert-rsa2048-expired")
c = sig("chainleaf.sha256")
chains = [
    ("chain", "chain-leaf", ["root-ca", "inter-ca"], None),
    ("chain reversed list", "chain-leaf", ["inter-ca", "root-ca"], None),
    ("intermediate only", "chain-leaf", ["inter-ca"], None),
    ("nothing trusted", "chain-leaf", [], None),
    ("expired leaf", "chain-leaf-expired", ["root-ca"], None),
    ("future leaf", "chain-leaf-future", ["root-ca"], None),
    ("expired intermediate", "chain-leaf-under-expired", ["root-ca", "inter-expired"], None),
    ("pathlen", "chain-leaf-pl", ["root-pl0", "inter-pl"], None),
    ("ca without keyUsage", "chain-leaf-noku", ["root-noku"], None),
    ("ca without keyCertSign", "chain-leaf-nocertsign", ["root-nocertsign"], None),
    ("leaf keyEncipherment", "chain-leaf-keyenc", ["root-ca"], None),
    ("sha1-signed leaf", "chain-leaf-sha1", ["root-ca"], None),
    ("pss-signed", "chain-leaf-pss", ["root-pss"], None),
    ("ed25519 issuer", "chain-leaf-ed25519", ["root-ed25519"], "cursive crashes (TypeError)"),
    ("ec issuer", "chain-leaf-ec", ["root-ec"], None),
    ("backtracking needed", "chain-leaf-bt", ["inter-bt-orphan", "inter-bt", "root-bt"], None),
    ("printable vs utf8 names", "chain-leaf-direct", ["root-ca-printable"], None),
    ("name case", "chain-leaf-direct", ["root-ca-lowercase"], None),
    ("self-signed anchor", "chain-selfsigned-ca", ["chain-selfsigned-ca"], None),
    ("unknown trusted entry", "chain-leaf", ["root-ca", "00000000-0000-4000-8000-000000000000", "inter-ca"], None),
    ("private-key trusted entry", "chain-leaf", ["root-ca", "store-private-key", "inter-ca"], None),
    ("non-uuid trusted entry", "chain-leaf", ["root-ca", "not-a-uuid", "inter-ca"], "cursive crashes (ValueError)"),
    ("garbage trusted entry", "chain-leaf", ["root-ca", "store-garbage", "inter-ca"], "cursive crashes (ValueError)"),
]
for label, cert, trusted, diff in chains:
    case(label, c, "SHA-256", "RSA-PSS", cert, trusted, diff)
# Loops hang cursive (it would never return), so that case is run on portcullis only.
LOOP = ("loop", c, "SHA-256", "RSA-PSS", INDEX["chain-leaf-loop"], [INDEX["loop-a"], INDEX["loop-b"]])


def main():
    unexpected = 0
    for label, signature, hash_method, key_type, cert_id, trusted, diff in CASES:
        theirs = cursive_verdict(signature, hash_method, key_type, cert_id, DATA, trusted)
        ours = portcullis_verdict(signature, hash_method, key_type, cert_id, DATA, trusted)
        if theirs[0] == "crash":
            same = ours[0] == "reject"
        else:
            same = theirs == ours
        status = "same" if same else ("expected difference" if diff else "DIFFERENT")
        if not same and not diff:
            unexpected += 1
        print(f"{status:20} {label:32} cursive: {theirs[0]:7} {theirs[1] or '':.70}")
        if not same:
            print(f"{'':20} {'':32} portcullis: {ours[0]:7} {ours[1] or '':.70}" + (f"  ({diff})" if diff else ""))
    label, signature, hash_method, key_type, cert_id, trusted = LOOP
    ours = portcullis_verdict(signature, hash_method, key_type, cert_id, DATA, trusted)
    print(f"{'cursive hangs':20} {label:32} portcullis: {ours[0]} {ours[1]:.70}")
    print(f"{len(CASES)} cases, {unexpected} unexpected difference(s)")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
