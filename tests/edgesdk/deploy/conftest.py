"""The real-sshd fixtures (tests/sshd_fixture.py) for the deploy tests."""

from tests.sshd_fixture import ssh_client_env, sshd, sshd_private, trusted_sshd  # noqa: F401
