"""``python -m monitor`` runs the ``segmon`` command line."""

from monitor.cli.main import main

main()
