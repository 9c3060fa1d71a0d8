"""`python -m wastetrack.cli`, as the tests and serve's deliverer supervisor start the command."""

from wastetrack.cli import app

if __name__ == "__main__":
    app()
