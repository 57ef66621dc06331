"""`python -m egis.cli` is the same as the `egis` console script."""

from egis.cli.main import main

main()
