"""The topology fixtures, imported by name (``pytest_plugins`` works only in the root conftest)."""

from tests.support.topology_fixtures import (  # noqa: F401
    redis_cluster,
    redis_cluster_session,
    redis_sentinels,
    redis_sentinels_auth,
    redis_sentinels_auth_session,
    redis_sentinels_session,
    redis_tls,
    redis_tls_optional,
)
