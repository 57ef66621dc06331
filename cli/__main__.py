"""`python -m cli` is the same as the `egis` console script."""

from cli.main import main

main()
