"""``python -m monitor`` runs the ``segmon`` command line."""

from monitor.cli import main

main()
