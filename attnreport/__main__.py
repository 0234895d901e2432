import sys

from attnreport.cli import main

sys.exit(main())
