import sys

from jobglass.cli import main

sys.exit(main())
