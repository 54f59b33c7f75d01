"""The eval's real run uses the same stack fixtures as the integration tests."""

from tests.integration.conftest import running_stack, settings

__all__ = ["running_stack", "settings"]
