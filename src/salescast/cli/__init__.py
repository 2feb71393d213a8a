"""The `salescast` command line."""
