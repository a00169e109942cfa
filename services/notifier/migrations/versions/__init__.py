"""Revisions of schema `notifier`."""
