"""``python -m leadscore`` runs the command line."""

from leadscore.cli.app import main

main()
