"""The checksums S3 reports, computed locally so a downloaded file can be checked against them.

S3 returns a full-object checksum (``ChecksumSHA256``, ``ChecksumSHA1``, ``ChecksumCRC32``,
``ChecksumCRC32C`` or ``ChecksumCRC64NVME``, base64 of the big-endian digest) when asked with
``ChecksumMode=ENABLED``: the one the writer chose (the audit events are written with SHA-256,
Object Lock requires one) or, for newer objects written without one, CRC64NVME. SHA and CRC32
come from the standard library; CRC32C and CRC64NVME are table-driven here (AWS's CRT is not a
dependency). The ETag is an MD5 only for single-part objects not encrypted with KMS or SSE-C.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

# Strongest first: when S3 reports more than one, the first is checked.
ALGORITHMS: Final = ("SHA256", "SHA1", "CRC64NVME", "CRC32C", "CRC32")
_MD5_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})"?$')


def _reflected_table(polynomial: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ polynomial if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


class _Digest(Protocol):
    def update(self, data: bytes) -> None: ...
    def digest(self) -> bytes: ...


class _ReflectedCrc:
    """A reflected CRC (init and final xor all ones), as CRC32C and CRC64NVME are defined."""

    def __init__(self, table: tuple[int, ...], width: int) -> None:
        self.table = table
        self.width = width
        self.mask = (1 << width) - 1
        self.crc = self.mask

    def update(self, data: bytes) -> None:
        crc, table = self.crc, self.table
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self.crc = crc

    def digest(self) -> bytes:
        return (self.crc ^ self.mask).to_bytes(self.width // 8, "big")


_CRC32C_TABLE: Final = _reflected_table(0x82F63B78)
_CRC64NVME_TABLE: Final = _reflected_table(0x9A6C9329AC4BC9B5)


class _Crc32:
    def __init__(self) -> None:
        self.crc = 0

    def update(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)

    def digest(self) -> bytes:
        return self.crc.to_bytes(4, "big")


def new_digest(algorithm: str) -> _Digest:
    if algorithm == "SHA256":
        return hashlib.sha256()
    if algorithm == "SHA1":
        return hashlib.sha1(usedforsecurity=False)
    if algorithm == "CRC32":
        return _Crc32()
    if algorithm == "CRC32C":
        return _ReflectedCrc(_CRC32C_TABLE, 32)
    if algorithm == "CRC64NVME":
        return _ReflectedCrc(_CRC64NVME_TABLE, 64)
    if algorithm == "MD5":
        return hashlib.md5(usedforsecurity=False)
    raise ValueError(f"unknown checksum algorithm {algorithm!r}")


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Expected:
    """What a downloaded file must match: ``algorithm`` is one of ALGORITHMS or ``MD5`` (ETag)."""

    algorithm: str
    value: str  # base64 for checksums, hex for the ETag's MD5

    @property
    def label(self) -> str:
        return "etag-md5" if self.algorithm == "MD5" else self.algorithm.lower()

    def matches(self, digest: bytes) -> bool:
        if self.algorithm == "MD5":
            return digest.hex() == self.value.lower()
        return b64(digest) == self.value


def expected_from(response: Mapping[str, Any], etag: str | None = None) -> Expected | None:
    """The strongest full-object check a GetObject/HeadObject response (and its ETag) allows."""
    composite = response.get("ChecksumType") == "COMPOSITE"
    for algorithm in ALGORITHMS:
        value = response.get(f"Checksum{algorithm}")
        # "<base64>-<parts>" is a checksum of part checksums: not comparable with the whole file's.
        if value and not composite and "-" not in str(value):
            return Expected(algorithm, str(value))
    tag = etag if etag is not None else response.get("ETag")
    encrypted = response.get("ServerSideEncryption") in ("aws:kms", "aws:kms:dsse") or response.get(
        "SSECustomerAlgorithm"
    )
    match = _MD5_ETAG.match(str(tag or ""))
    if match and not encrypted:
        return Expected("MD5", match.group(1).lower())
    return None


def file_digest(path: Any, algorithm: str, chunk: int = 1 << 20) -> bytes:
    digest = new_digest(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.digest()
