"""Where the views are kept: see generations/ (base.py the logic, mongo.py the collections,
memory.py the rebuild's fold). This module keeps the names older imports use."""
from .generations import *  # noqa: F401,F403
from .generations import __all__  # noqa: F401
