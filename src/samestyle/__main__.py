import sys

from samestyle.cli import main

sys.exit(main())
