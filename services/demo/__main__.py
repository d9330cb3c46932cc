"""python -m services.demo seed [--if-empty] [--members N] [--seed S] [--base-url-membership URL] ..."""
import sys

from .seed import main

if __name__ == "__main__":
    sys.exit(main())
