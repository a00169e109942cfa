"""Intake's pure core: versioning, entity ownership, changes, the vault's crypto.

Admission (guards, registry, validation, rejections) is shared: services/platform/admission.
"""
