
import os as _os

# Benchmarks run on a developer's machine with the development signing key (docs/security.md).
_os.environ.setdefault("PLATFORM_ENV", "local")
