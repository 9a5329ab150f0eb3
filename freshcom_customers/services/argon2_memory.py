"""argon2id in one block of memory a process keeps, instead of fresh memory each time.

argon2-cffi lets argon2 malloc its memory on every verify: 46 MiB with the default
parameters. glibc serves so large a block with a fresh mapping and unmaps it after, so
every verify faults in and zeroes 11,776 pages: a third to half of its time, spent in the
kernel (docs/benchmarks.md, "argon2id in memory each worker keeps"). Here argon2's own
allocation callbacks lend it a block the process keeps: a verify costs its hashing alone.
argon2 wipes the block before it hands it back (its free_memory clears the memory before
calling free_cbk), so nothing derived from a password stays in it between verifies.

One block per process, of the configured memory cost, lent to one verify or new hash at a
time: a thread that finds it lent, or a hash that needs more memory or another shape (more
lanes, another version or variant), is not served here, and the caller verifies or hashes
the usual way. The block costs a process that memory for its life, and no more: a worker
that verifies and hashes does both in it. The first use faults it in, each later one
reuses it.

The block is mapped on its own, starting on a 2 MiB boundary, and the kernel is asked to
back it with transparent huge pages (MADV_HUGEPAGE, honoured where THP is in "madvise" or
"always" mode): argon2 reads the blocks it mixes in from anywhere in the 46 MiB, so with
4 KiB pages nearly every such read also walks the page tables. A verify took 5-16% less
time so, alone and two at once (docs/benchmarks.md, "argon2id's block on huge pages").
Where the kernel gives none, it is the same block on small pages.
"""

import base64
import binascii
import hmac
import mmap
import os
import re
import threading
from contextlib import suppress

from _argon2_cffi_bindings import ffi, lib

KIB = 1024
HUGE_PAGE = 2 * KIB * KIB

# Only the shape this service hashes with: argon2id, version 0x13, one lane.
_ENCODED = re.compile(
    r"\$argon2id\$v=19\$m=(?P<m>[1-9]\d{0,8}),t=(?P<t>[1-9]\d{0,8}),p=1"
    r"\$(?P<salt>[A-Za-z0-9+/]{11,})\$(?P<digest>[A-Za-z0-9+/]{6,})"
)

_lent = threading.Lock()
_block = None  # the process's block (a cdata uint8_t[]), made by its first verify or hash


@ffi.callback("int(uint8_t **, size_t)")
def _lend(memory, size):
    # argon2 reads a NULL pointer, not this return value, as a failed allocation.
    memory[0] = _block if _block is not None and size <= len(_block) else ffi.NULL
    return lib.ARGON2_OK


@ffi.callback("void(uint8_t *, size_t)")
def _take_back(memory, size):
    """argon2 has wiped the block already; the process keeps it for the next verify or hash."""


def verify(password: str, encoded: str, kept_kib: int) -> bool | None:
    """Whether password is the one encoded hashes, with the kept block of kept_kib KiB.

    None when this function cannot verify it in the kept block: the hash is not argon2id of
    this shape, needs more than kept_kib, is malformed, or another thread holds the block.
    The caller then verifies it the usual way, at the usual cost and with its errors.
    """
    match = _ENCODED.fullmatch(encoded)
    if match is None or int(match["m"]) > kept_kib:
        return None
    try:
        salt, digest = _unpadded_b64(match["salt"]), _unpadded_b64(match["digest"])
    except binascii.Error:
        return None
    secret = password.encode("utf-8")  # argon2-cffi's encoding, and its error for a lone surrogate
    computed = _hash(secret, salt, len(digest), int(match["t"]), int(match["m"]), kept_kib)
    return None if computed is None else hmac.compare_digest(computed, digest)


def new_hash(password: str, t: int, m: int, salt_size: int = 16, digest_size: int = 32) -> str | None:
    """password's argon2id hash (one lane, version 0x13) in PHC form, made in the kept block.

    None when another thread holds the block: the caller hashes it the usual way.
    """
    salt = os.urandom(salt_size)
    digest = _hash(password.encode("utf-8"), salt, digest_size, t, m, m)
    if digest is None:
        return None
    return f"$argon2id$v=19$m={m},t={t},p=1${_unpadded(salt)}${_unpadded(digest)}"


def _keep(kib: int) -> None:
    """Make the process's block, or a bigger one when the configured cost has grown."""
    global _block
    if _block is None or len(_block) < kib * KIB:
        _block = _mapped(kib * KIB)


def _mapped(size: int):
    """size bytes (a uint8_t[]) of private memory of their own, from a huge page boundary,
    the kernel asked to back them with huge pages; the mapping lives as long as the array.

    Private, so a process forked after making it has its own copy, as with malloc's.
    """
    region = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        with suppress(OSError):  # a kernel built without transparent huge pages: small pages
            region.madvise(mmap.MADV_HUGEPAGE)
    start = -int(ffi.cast("uintptr_t", ffi.from_buffer(region))) % HUGE_PAGE
    return ffi.from_buffer("uint8_t[]", memoryview(region)[start : start + size])


def _hash(secret: bytes, salt: bytes, length: int, t: int, m: int, block_kib: int) -> bytes | None:
    """argon2id's raw digest in the process's block of block_kib KiB; None when another thread
    holds the block or argon2 refuses the parameters."""
    if not _lent.acquire(blocking=False):
        return None
    try:
        _keep(block_kib)
        return _argon2id(secret, salt, length, t, m)
    finally:
        _lent.release()


def _argon2id(secret: bytes, salt: bytes, length: int, t: int, m: int) -> bytes | None:
    out = ffi.new("uint8_t[]", length)
    password = ffi.new("uint8_t[]", secret)
    salt_buffer = ffi.new("uint8_t[]", salt)
    context = ffi.new(
        "argon2_context *",
        {
            "out": out,
            "outlen": length,
            "pwd": password,
            "pwdlen": len(secret),
            "salt": salt_buffer,
            "saltlen": len(salt),
            "secret": ffi.NULL,
            "secretlen": 0,
            "ad": ffi.NULL,
            "adlen": 0,
            "t_cost": t,
            "m_cost": m,
            "lanes": 1,
            "threads": 1,
            "version": lib.ARGON2_VERSION_13,
            "allocate_cbk": _lend,
            "free_cbk": _take_back,
            "flags": lib.ARGON2_FLAG_CLEAR_PASSWORD,
        },
    )
    error = lib.argon2_ctx(context, lib.Argon2_id)
    return bytes(ffi.buffer(out, length)) if error == lib.ARGON2_OK else None


def _unpadded_b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _unpadded(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")
