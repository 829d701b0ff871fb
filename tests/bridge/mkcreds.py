#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Make NATS decentralized-auth material for test_bridge, with the standard
library only: an operator, an account and a user (nkeys, ed25519 JWTs), a
server configuration trusting them, and the user's credentials file.

    mkcreds.py DIR PORT

writes DIR/auth.conf (nats-server -c), DIR/user.creds (a user of the
trusted account) and DIR/stranger.creds (a user signed by an account the
server does not know).  For tests only: the keys come from os.urandom and
are thrown away with DIR.
"""
import base64
import hashlib
import json
import os
import sys
import time

# ---- ed25519 (RFC 8032, section 5.1), slow and plain: a handful of signatures
P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    xx = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P:
        x = x * SQRT_M1 % P
    if x & 1 != sign:
        x = P - x
    return x


_BY = 4 * pow(5, P - 2, P) % P
_BX = _recover_x(_BY, 0)
BASE = (_BX, _BY, 1, _BX * _BY % P)


def _add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    e = (y1 - x1) * (y2 - x2) % P
    f = (y1 + x1) * (y2 + x2) % P
    g = t1 * 2 * D * t2 % P
    h = z1 * 2 * z2 % P
    e, f, g, h = f - e, h - g, h + g, f + e
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, pt):
    acc = (0, 1, 1, 0)
    while s:
        if s & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        s >>= 1
    return acc


def _encode(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _secret(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def public_key(seed):
    return _encode(_mul(_secret(seed)[0], BASE))


def sign(seed, msg):
    a, prefix = _secret(seed)
    pub = _encode(_mul(a, BASE))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % Q
    big_r = _encode(_mul(r, BASE))
    k = int.from_bytes(hashlib.sha512(big_r + pub + msg).digest(), "little") % Q
    return big_r + ((r + k * a) % Q).to_bytes(32, "little")


# ---- nkeys: a prefix byte, the key, a CRC-16 (XMODEM), base32 without padding
PREFIX = {"seed": 18 << 3, "operator": 14 << 3, "account": 0, "user": 20 << 3}


def _crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = (crc << 1 ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def _b32(raw):
    raw += _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode().rstrip("=")


class Key:
    def __init__(self, kind):
        self.kind = kind
        self.seed = os.urandom(32)
        pre = PREFIX[kind]
        self.public = _b32(bytes([pre]) + public_key(self.seed))
        self.seed_text = _b32(bytes([PREFIX["seed"] | pre >> 5, (pre & 31) << 3]) + self.seed)


def _b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jwt(issuer, subject, name, nats):
    claims = {"iat": int(time.time()), "iss": issuer.public, "name": name,
              "sub": subject.public, "nats": nats}
    body = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    claims["jti"] = base64.b32encode(hashlib.sha256(body).digest()).decode().rstrip("=")
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{payload}".encode()
    return f"{head}.{payload}.{_b64(sign(issuer.seed, signing_input))}"


UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
             "wildcards": True, "conn": -1, "leaf": -1}


def creds(user_jwt, user):
    return ("-----BEGIN NATS USER JWT-----\n" + user_jwt + "\n------END NATS USER JWT------\n\n"
            "-----BEGIN USER NKEY SEED-----\n" + user.seed_text +
            "\n------END USER NKEY SEED------\n")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mkcreds.py DIR PORT")
    out, port = sys.argv[1], int(sys.argv[2])
    op, acc, usr = Key("operator"), Key("account"), Key("user")
    other_acc, other_usr = Key("account"), Key("user")
    op_jwt = jwt(op, op, "shmring-test", {"type": "operator", "version": 2})
    acc_nats = {"limits": UNLIMITED, "default_permissions": {"pub": {}, "sub": {}},
                "type": "account", "version": 2}
    acc_jwt = jwt(op, acc, "bridge", acc_nats)
    user_nats = {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                 "type": "user", "version": 2}
    files = {
        "auth.conf": (f"listen: 127.0.0.1:{port}\noperator: {op_jwt}\nresolver: MEMORY\n"
                      f"resolver_preload: {{\n  {acc.public}: {acc_jwt}\n}}\n"),
        "user.creds": creds(jwt(acc, usr, "bridge-user", user_nats), usr),
        "stranger.creds": creds(jwt(other_acc, other_usr, "stranger", user_nats), other_usr),
    }
    for name, text in files.items():
        fd = os.open(os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
