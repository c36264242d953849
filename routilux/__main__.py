"""``python -m routilux``: the command line."""

from routilux.cli.main import main

main()
