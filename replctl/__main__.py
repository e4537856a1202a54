"""`python -m replctl` runs the CLI."""

from replctl.cli import main

main()
