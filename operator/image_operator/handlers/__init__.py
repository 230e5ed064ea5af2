"""kopf handlers: thin adapters from Kubernetes events to the reconcilers.

Importing this package registers every handler with kopf.
"""

from image_operator.handlers import image, imageprovider, setup

__all__ = ["image", "imageprovider", "setup"]
