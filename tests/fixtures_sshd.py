"""Fixtures that start a real OpenSSH sshd (filled in by the SSH work)."""
