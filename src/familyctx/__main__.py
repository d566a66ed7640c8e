"""``python -m familyctx``: the same as the ``familyctx`` console script."""

from familyctx.cli import main

main()
