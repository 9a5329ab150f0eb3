"""argon2id in the process's kept block: verifies that answer as argon2-cffi does, new hashes it
reads, no page faults after the first use, the block wiped after each, and the usual way
whenever the block can't serve."""

import mmap
import os
import re
import resource

import pytest
from argon2 import PasswordHasher, Type

from freshcom_customers.services import argon2_memory, passwords

KEPT = 8192  # KiB: 2,048 pages, enough for a fresh block's faults to show


def hashed(password: str, memory_cost=KEPT, time_cost=1, parallelism=1, type=Type.ID) -> str:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=type)
    return hasher.hash(password)


@pytest.mark.parametrize("password", ["correct horse battery", "pässwörd✓", "a\x00b", "", "x" * 5000])
def test_answers_what_argon2_cffi_answers(password):
    encoded = hashed(password, time_cost=2)
    assert argon2_memory.verify(password, encoded, KEPT) is True
    assert argon2_memory.verify(password + "!", encoded, KEPT) is False


def test_a_salt_and_digest_of_other_sizes_verify():
    hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, hash_len=4, salt_len=8)
    encoded = hasher.hash("short")
    assert argon2_memory.verify("short", encoded, KEPT) is True
    assert argon2_memory.verify("shorT", encoded, KEPT) is False


@pytest.mark.parametrize(
    "encoded",
    [
        hashed("pw", type=Type.I),  # another variant
        hashed("pw", parallelism=2),  # two lanes
        hashed("pw", memory_cost=2 * KEPT),  # more than the block
        hashed("pw").replace("v=19", "v=16"),  # another version
        hashed("pw")[:-1] + "=",  # not unpadded base64
        hashed("pw").rsplit("$", 1)[0] + "$A",  # a digest too short to be one
        "$2b$12$" + "a" * 53,  # not argon2 at all
    ],
)
def test_a_hash_the_block_cannot_serve_is_left_to_the_caller(encoded):
    assert argon2_memory.verify("pw", encoded, KEPT) is None


def test_parameters_argon2_refuses_are_left_to_the_caller():
    encoded = hashed("pw").replace("m=8192,t=1", "m=4,t=1")  # under argon2's 8 KiB a lane
    assert argon2_memory.verify("pw", encoded, KEPT) is None


def test_a_lone_surrogate_raises_as_argon2_cffi_does():
    with pytest.raises(UnicodeEncodeError):
        argon2_memory.verify("\ud800abc", hashed("pw"), KEPT)


def test_the_block_is_kept_and_wiped_so_a_verify_after_the_first_faults_no_page_in():
    encoded = hashed("pw")
    argon2_memory.verify("pw", encoded, KEPT)
    block = argon2_memory._block
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        assert argon2_memory.verify("pw", encoded, KEPT) is True
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert argon2_memory._block is block
    assert faults < KEPT // 4 // 4  # three fresh blocks would be 6,144 faults
    assert not any(bytes(argon2_memory.ffi.buffer(block)))  # nothing of the password's blocks left


# Python built with MADV_HUGEPAGE, and a kernel built with transparent huge pages.
THP = hasattr(mmap, "MADV_HUGEPAGE") and os.path.exists("/sys/kernel/mm/transparent_hugepage/enabled")


def _vm_flags(address: int) -> list[str]:
    """The VmFlags /proc/self/smaps gives for the mapping holding address."""
    with open("/proc/self/smaps") as smaps:
        mappings = re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps.read())
    for mapping in mappings:
        start, end = (int(bound, 16) for bound in mapping.split(" ", 1)[0].split("-"))
        if start <= address < end:
            return re.search(r"^VmFlags:(.*)$", mapping, re.MULTILINE)[1].split()
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.skipif(not THP, reason="no transparent huge pages to ask for")
def test_a_block_starts_on_a_huge_page_and_asks_for_huge_pages():
    block = argon2_memory._mapped(KEPT * 1024)
    address = int(argon2_memory.ffi.cast("uintptr_t", block))
    assert len(block) == KEPT * 1024
    assert address % argon2_memory.HUGE_PAGE == 0
    flags = _vm_flags(address)
    assert "hg" in flags  # MADV_HUGEPAGE: huge pages wherever the kernel's THP mode allows
    assert "sh" not in flags  # private: a forked worker gets its own copy


@pytest.mark.skipif(not THP, reason="no transparent huge pages to ask for")
def test_the_kept_block_is_such_a_block():
    argon2_memory.verify("pw", hashed("pw"), KEPT)
    address = int(argon2_memory.ffi.cast("uintptr_t", argon2_memory._block))
    assert address % argon2_memory.HUGE_PAGE == 0  # not an ffi.new array: those are not aligned so
    assert "hg" in _vm_flags(address)


def test_another_thread_holding_the_block_means_the_usual_way():
    encoded = hashed("pw")
    with argon2_memory._lent:
        assert argon2_memory.verify("pw", encoded, KEPT) is None
    assert argon2_memory.verify("pw", encoded, KEPT) is True


# passwords.verify: the kept block first, passlib for anything it cannot serve


@pytest.fixture
def kept_app(app, monkeypatch):
    monkeypatch.setitem(app.extensions, "freshcom_passwords", passwords.build_context(f"m={KEPT},t=1,p=1"))
    with app.app_context():
        yield app


@pytest.fixture
def served(monkeypatch):
    """The answers argon2_memory.verify gave: True, False, or None for the usual way."""
    answers, verify_in_block = [], argon2_memory.verify

    def verify(*args):
        answers.append(verify_in_block(*args))
        return answers[-1]

    monkeypatch.setattr(argon2_memory, "verify", verify)
    return answers


def test_a_login_and_an_unknown_user_both_verify_in_the_block(kept_app, served):
    encoded = passwords.hash_password("ann-password-1")
    assert passwords.verify("ann-password-1", encoded) == (True, None)
    assert passwords.verify("ann-password-2", encoded) == (False, None)
    passwords.dummy_verify()
    assert served == [True, False, True]  # the dummy hash has the configured cost: a real verify


def test_a_hash_of_a_lower_cost_verified_in_the_block_is_still_rehashed(kept_app, served):
    ok, new_hash = passwords.verify("ann-password-1", hashed("ann-password-1", memory_cost=KEPT // 2))
    assert (ok, served) == (True, [True])
    assert new_hash.startswith(f"$argon2id$v=19$m={KEPT},t=1,p=1$")


def test_a_hash_the_block_cannot_serve_is_verified_and_rehashed_by_passlib(kept_app, served):
    ok, new_hash = passwords.verify("ann-password-1", hashed("ann-password-1", memory_cost=2 * KEPT))
    assert (ok, served) == (True, [None])
    assert new_hash.startswith(f"$argon2id$v=19$m={KEPT},t=1,p=1$")
    assert passwords.verify("ann-password-2", hashed("ann-password-1", memory_cost=2 * KEPT)) == (False, None)


def test_a_user_without_a_password_is_refused_after_one_verify_in_the_block(kept_app, served):
    assert passwords.verify("anything-at-all", None) == (False, None)
    assert served == [True]  # the dummy hash, verified in the block


# New hashes, made in the same block


def test_a_new_hash_is_argon2_cffis_format_and_verifies_both_ways():
    encoded = argon2_memory.new_hash("pässwörd✓", 2, KEPT)
    assert encoded.startswith(f"$argon2id$v=19$m={KEPT},t=2,p=1$")
    salt, digest = encoded.split("$")[-2:]
    assert (len(salt), len(digest)) == (22, 43)  # 16 and 32 bytes, unpadded base64
    assert PasswordHasher().verify(encoded, "pässwörd✓")
    assert argon2_memory.verify("pässwörd✓", encoded, KEPT) is True
    assert argon2_memory.verify("passwörd✓", encoded, KEPT) is False
    assert argon2_memory.new_hash("pässwörd✓", 2, KEPT) != encoded  # a fresh salt each time


def test_a_new_hash_and_a_verify_share_the_block_faulting_no_page_in():
    argon2_memory.verify("pw", hashed("pw"), KEPT)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    encoded = argon2_memory.new_hash("pw", 1, KEPT)
    assert argon2_memory.verify("pw", encoded, KEPT) is True
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < KEPT // 4 // 4


def test_a_new_hash_while_the_block_is_lent_is_left_to_the_caller():
    with argon2_memory._lent:
        assert argon2_memory.new_hash("pw", 1, KEPT) is None


def test_hash_password_makes_the_configured_hash_in_the_block(kept_app, monkeypatch):
    made = []
    new_hash = argon2_memory.new_hash
    monkeypatch.setattr(argon2_memory, "new_hash", lambda *args: made.append(new_hash(*args)) or made[-1])
    encoded = passwords.hash_password("ann-password-1")
    assert made == [encoded]
    context = kept_app.extensions["freshcom_passwords"]
    assert context.verify("ann-password-1", encoded)  # passlib reads it as its own
    assert not context.needs_update(encoded)
