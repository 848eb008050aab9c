"""`python -m homeport` is the `homeport` command."""

from homeport.cli import main

main()
