"""``python -m refbench`` runs the command line."""

from refbench.cli import main

main()
