"""`python -m salescast` runs the command line."""

from salescast.cli.main import main

main()
