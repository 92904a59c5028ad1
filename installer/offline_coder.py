"""The bundle's entry point (build.spec): the same ``main`` as ``python -m app``. (Its name is the
script name PyInstaller shows if the app ever fails to start.)"""

import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
