"""`python -m image_operator.emulator`: the same as `image-operator emulator`."""

from image_operator.emulator.server import main

raise SystemExit(main())
