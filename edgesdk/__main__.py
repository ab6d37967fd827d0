"""`python -m edgesdk` = the `edgesdk` command."""

from edgesdk.cli import main

main()
