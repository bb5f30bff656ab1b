"""``python -m pyg_recsys``: the ``pyg-recsys`` command (the entry point
``torchrun -m pyg_recsys train ...`` runs in every process)."""
import sys

from pyg_recsys.cli import main

sys.exit(main())
