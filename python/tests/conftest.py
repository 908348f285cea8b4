import sys
from pathlib import Path

import numpy as np
import pytest

# Test the package in this folder (python/infp), not an installed copy, unless
# INFP_TEST_INSTALLED=1 asks for the installed one.
import os
if os.environ.get("INFP_TEST_INSTALLED") != "1":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
