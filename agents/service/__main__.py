"""``python -m agents.service`` = ``lewis-serve``."""

from agents.service.cli import main

if __name__ == "__main__":
    main()
