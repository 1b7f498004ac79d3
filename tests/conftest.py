"""Shared fixtures. The sandbox and sshd fixtures live in their own modules so that each
test file can rely on them without importing anything from ../shared."""

from fixtures_sandbox import *  # noqa: F403
from fixtures_sshd import *  # noqa: F403
