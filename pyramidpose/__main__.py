"""``python -m pyramidpose`` runs the same command as the ``pyramidpose`` console script."""

import sys

from pyramidpose.cli import main

sys.exit(main())
