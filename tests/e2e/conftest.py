"""Every process kind of the platform, started for one test on its own topics and databases."""
import pytest

from tests.support.platform import Platform


@pytest.fixture
def platform(isolated):
    plat = Platform(isolated["tmp"])
    try:
        plat.start()
        yield plat
    finally:
        plat.stop()
