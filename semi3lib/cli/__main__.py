import sys

from semi3lib.cli import main

sys.exit(main())
