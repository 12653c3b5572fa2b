"""Launch Creative Studio: `python main.py [project.csproj]` (or a CLI sub-command)."""

import sys

from creative_studio.app import main

if __name__ == "__main__":
    sys.exit(main())
