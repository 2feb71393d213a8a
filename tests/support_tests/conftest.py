"""The topology fixtures come from the root conftest's plugin (tests.support.topology_fixtures)."""
