import sys

from semi3lib.book.generated import main

sys.exit(main())
