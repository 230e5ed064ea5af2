"""`python -m image_operator_dev.emulator`: the same as `image-operator emulator`."""

from image_operator_dev.emulator.server import main

raise SystemExit(main())
