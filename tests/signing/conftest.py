"""Fixtures of the signing tests.

``pki`` -- the whole test PKI (signing.testpki), built once per session (per xdist worker)
"""

from __future__ import annotations

import pytest

from signing.testpki import TestPki, build_test_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """The test PKI, generated for this session (static certificates would expire)."""
    return build_test_pki(tmp_path_factory.mktemp("pki"))
