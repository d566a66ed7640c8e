"""Development PKIs for tests: made once per test process in a private temporary directory.

:func:`session_pki` is the federation's PKI (the CA both sides trust, the gateway's client certificate
and assertion key, a server certificate for every test council); :func:`foreign_pki` is a second,
unrelated PKI with the same file names, whose certificates and keys no one in the federation trusts
(for refusal tests). Both are real X.509 / JWK files from :func:`familyctx.trust.pki.generate_dev_pki`;
the directories are removed when the process exits.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from familyctx.trust.pki import DevPki, generate_dev_pki

__all__ = ["ASSERTION_ISSUER", "TEST_COUNCILS", "foreign_pki", "session_pki"]

#: The ``iss`` of the test gateway's assertions (fake councils expect exactly this).
ASSERTION_ISSUER = "https://gateway.familyctx.test"

#: Every council a test federation may hold: the three scenario councils (Stockport, Leeds,
#: Manchester), then Bolton (sleeping), Bury (unreachable), Wigan (broken) and Bradford (spare).
TEST_COUNCILS = ("E08000007", "E08000035", "E08000003", "E08000001", "E08000002", "E08000010", "E08000032")


def _make(prefix: str) -> DevPki:
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return generate_dev_pki(directory / "pki", councils=TEST_COUNCILS, days=2)


@functools.cache
def session_pki() -> DevPki:
    """The federation's development PKI for this test process (made on first use)."""
    return _make("familyctx-test-pki-")


@functools.cache
def foreign_pki() -> DevPki:
    """Another CA's PKI for this test process: nothing in the federation trusts its files."""
    return _make("familyctx-foreign-pki-")
