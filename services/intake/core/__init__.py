"""Intake's pure core: entity ownership, changes, the vault's crypto.

Admission (guards, registry, validation, rejections) is shared: services/platform/admission; the
"later version wins" rule too: services/platform/versioning.py.
"""
