import sys

from kip_runner.cli import main

sys.exit(main())
