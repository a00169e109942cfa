"""The lab's integration tests run the matcher in-process, with the matcher tests' fixtures."""

from tests.integration.matcher.conftest import matcher, matcher_settings, region, registry_path

__all__ = ["matcher", "matcher_settings", "region", "registry_path"]
