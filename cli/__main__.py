"""python -m padlens.cli"""
import sys

from padlens.cli.main import main

sys.exit(main())
