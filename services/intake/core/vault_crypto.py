"""Envelope encryption of personal data: AES-256-GCM with a data key per case, wrapped by the master key.

Crypto-shredding: destroying a case's data key makes its ciphertext unreadable forever. The data keys
live in a key store outside intake's database (services/intake/adapters/keystore.py), so a backup of the
database never holds a key next to its ciphertext. Rows written before the key store (`wrapped_key` in
the vault row) are still read, and move to the key store when the case's personal data is next written.
Pure functions, no I/O.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32


class VaultError(Exception):
    """A ciphertext or wrapped key could not be opened (wrong key, tampered, or shredded)."""


@dataclass(frozen=True)
class SealedRecord:
    wrapped_key: bytes  # nonce || AES-GCM(master key, data key)
    ciphertext: bytes  # nonce || AES-GCM(data key, JSON of the personal data)


def _aad(region: str, case_id: str, purpose: str) -> bytes:
    # Binding the ciphertext to its row stops a copied ciphertext from decrypting as another case.
    return f"wijkmatch.intake.vault.v1|{purpose}|{region}|{case_id}".encode()


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) <= NONCE_BYTES:
        raise VaultError("sealed value too short")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise VaultError("authentication failed") from exc


def new_wrapped_data_key(master_key: bytes, region: str, case_id: str) -> bytes:
    """A fresh random data key for one case, wrapped (encrypted) under the master key."""
    return _seal(master_key, AESGCM.generate_key(bit_length=KEY_BYTES * 8), _aad(region, case_id, "key"))


def wrap_data_key(master_key: bytes, data_key: bytes, region: str, case_id: str) -> bytes:
    """An existing data key wrapped under (another) master key: master-key rotation re-wraps with it."""
    return _seal(master_key, data_key, _aad(region, case_id, "key"))


def unwrap_data_key(master_key: bytes, wrapped_key: bytes, region: str, case_id: str) -> bytes:
    return _open(master_key, wrapped_key, _aad(region, case_id, "key"))


def encrypt_personal(
    master_key: bytes, wrapped_key: bytes, region: str, case_id: str, personal: dict[str, Any]
) -> bytes:
    data_key = unwrap_data_key(master_key, wrapped_key, region, case_id)
    plaintext = json.dumps(personal, sort_keys=True, separators=(",", ":"), default=str).encode()
    return _seal(data_key, plaintext, _aad(region, case_id, "data"))


def decrypt_personal(
    master_key: bytes, wrapped_key: bytes | None, ciphertext: bytes, region: str, case_id: str
) -> dict[str, Any]:
    if wrapped_key is None:
        raise VaultError("data key destroyed (erased)")
    data_key = unwrap_data_key(master_key, wrapped_key, region, case_id)
    return json.loads(_open(data_key, ciphertext, _aad(region, case_id, "data")))


def seal_personal(
    master_key: bytes, region: str, case_id: str, personal: dict[str, Any], wrapped_key: bytes | None = None
) -> SealedRecord:
    """Encrypt a case's personal data, reusing its wrapped data key when it has one."""
    key = wrapped_key if wrapped_key is not None else new_wrapped_data_key(master_key, region, case_id)
    return SealedRecord(key, encrypt_personal(master_key, key, region, case_id, personal))


def encrypt_with_data_key(data_key: bytes, region: str, case_id: str, personal: dict[str, Any]) -> bytes:
    """Seal a case's personal data under its data key (from the key store)."""
    plaintext = json.dumps(personal, sort_keys=True, separators=(",", ":"), default=str).encode()
    return _seal(data_key, plaintext, _aad(region, case_id, "data"))


def decrypt_with_data_key(
    data_key: bytes | None, ciphertext: bytes, region: str, case_id: str
) -> dict[str, Any]:
    if data_key is None:
        raise VaultError("data key destroyed (erased) or never stored")
    return json.loads(_open(data_key, ciphertext, _aad(region, case_id, "data")))
