"""The ``leadscore`` command line: thin Typer commands over :mod:`leadscore.services`."""
