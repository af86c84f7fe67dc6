#!/usr/bin/env python3
# make-sealed.py - writes the sealed (encrypted repository) vectors of
# tests/golden with an implementation independent of ferry's (Python's
# cryptography and hashlib), from docs/format.md "Encryption".  Run once;
# test_seal.c checks that ferry opens them.  Never regenerate: the nonces
# are fixed here only so the files are reproducible.
import hashlib, os, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

d = os.path.dirname(os.path.abspath(__file__))
ENC = bytes(range(0, 32))          # sealing key
IDK = bytes(range(32, 64))         # chunk-id key
REPO_ID = "00112233445566778899aabbccddeeff"
PASS = b"correct horse battery staple"
SALT = bytes(range(100, 132))

def crc32c(b):
    crc = 0xffffffff
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xffffffff

def le32(v): return struct.pack("<I", v)

# A sealed raw chunk: 300 bytes, byte i = (i * 7 + 3) & 255.
plain = bytes(((i * 7 + 3) & 255) for i in range(300))
nonce = bytes(range(200, 212))
hdr = b"FCE1" + bytes([0, 0, 0, 0]) + le32(len(plain)) + le32(len(plain) + 16) + nonce
ct = AESGCM(ENC).encrypt(nonce, plain, hdr)
hdr += le32(crc32c(ct))
hdr += le32(crc32c(hdr))
open(os.path.join(d, "chunk-sealed.fce"), "wb").write(hdr + ct)
import hmac
print("chunk id", hmac.new(IDK, plain, hashlib.sha256).hexdigest())
print("chunk sha256", hashlib.sha256(plain).hexdigest())

# The key lines: scrypt N=2^10, r=8, p=1.
kek = hashlib.scrypt(PASS, salt=SALT, n=1024, r=8, p=1, dklen=32, maxmem=64 << 20)
wn = bytes(range(50, 62))
aad = ("ferry-key-1 %s scrypt 10 8 1" % REPO_ID).encode()
wrapped = wn + AESGCM(kek).encrypt(wn, ENC + IDK, aad)
open(os.path.join(d, "key-lines.conf"), "w").write(
    "encryption = aes-256-gcm\nkdf = scrypt\nkdf_log_n = 10\nkdf_r = 8\nkdf_p = 1\n"
    "kdf_salt = %s\nkey = %s\n" % (SALT.hex(), wrapped.hex()))
print("kek", kek.hex())

# The sealed form of manifest-v1.fman (one segment).
man = open(os.path.join(d, "manifest-v1.fman"), "rb").read()
pid = man[40:48]
base = bytes(range(70, 82))
fh = b"FMAE" + le32(1) + le32(65536) + pid + base
out = fh
seg = 65536
n = (len(man) + seg - 1) // seg
for i in range(n):
    part = man[i * seg:(i + 1) * seg]
    nn = bytearray(base)
    for k in range(8):
        nn[4 + k] ^= (i >> (8 * k)) & 255
    aad = fh + struct.pack("<Q", i) + bytes([1 if i == n - 1 else 0])
    out += AESGCM(ENC).encrypt(bytes(nn), part, aad)
open(os.path.join(d, "manifest-sealed.fmae"), "wb").write(out)
print("manifest id", pid.hex(), "sealed bytes", len(out))
