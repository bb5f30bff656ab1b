"""``python -m pyg_recsys.cli``: the ``pyg-recsys`` command."""
import sys

from pyg_recsys.cli import main

sys.exit(main())
