"""Envelope encryption of personal data: round trip, binding to the case, crypto-shredding."""

from __future__ import annotations

import os

import pytest

from services.intake.core.vault_crypto import (
    VaultError,
    decrypt_personal,
    new_wrapped_data_key,
    seal_personal,
    unwrap_data_key,
)

MASTER = os.urandom(32)
PERSONAL = {"name": "Test Persoon", "email": "t@example.org", "birth_date": "1970-01-01"}


def test_sealed_personal_data_decrypts_with_the_master_key() -> None:
    sealed = seal_personal(MASTER, "r1", "C1", PERSONAL)
    assert decrypt_personal(MASTER, sealed.wrapped_key, sealed.ciphertext, "r1", "C1") == PERSONAL
    assert b"Test Persoon" not in sealed.ciphertext and b"Test Persoon" not in sealed.wrapped_key


def test_a_new_seal_with_the_same_case_key_reuses_it_with_a_fresh_nonce() -> None:
    first = seal_personal(MASTER, "r1", "C1", PERSONAL)
    second = seal_personal(MASTER, "r1", "C1", PERSONAL, first.wrapped_key)
    assert second.wrapped_key == first.wrapped_key
    assert second.ciphertext != first.ciphertext


def test_each_case_gets_its_own_data_key() -> None:
    a = unwrap_data_key(MASTER, new_wrapped_data_key(MASTER, "r1", "C1"), "r1", "C1")
    b = unwrap_data_key(MASTER, new_wrapped_data_key(MASTER, "r1", "C1"), "r1", "C1")
    assert a != b and len(a) == 32


def test_a_ciphertext_copied_to_another_case_does_not_open() -> None:
    sealed = seal_personal(MASTER, "r1", "C1", PERSONAL)
    with pytest.raises(VaultError):
        decrypt_personal(MASTER, sealed.wrapped_key, sealed.ciphertext, "r1", "C2")
    with pytest.raises(VaultError):
        decrypt_personal(MASTER, sealed.wrapped_key, sealed.ciphertext, "r2", "C1")


def test_a_wrong_master_key_or_tampering_is_detected() -> None:
    sealed = seal_personal(MASTER, "r1", "C1", PERSONAL)
    with pytest.raises(VaultError):
        decrypt_personal(os.urandom(32), sealed.wrapped_key, sealed.ciphertext, "r1", "C1")
    tampered = sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1])
    with pytest.raises(VaultError):
        decrypt_personal(MASTER, sealed.wrapped_key, tampered, "r1", "C1")


def test_without_its_wrapped_key_a_ciphertext_is_unreadable() -> None:
    sealed = seal_personal(MASTER, "r1", "C1", PERSONAL)
    with pytest.raises(VaultError):
        decrypt_personal(MASTER, None, sealed.ciphertext, "r1", "C1")
