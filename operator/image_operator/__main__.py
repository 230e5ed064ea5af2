"""`python -m image_operator` is the `image-operator` command."""

from image_operator.cli import main

raise SystemExit(main())
